package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"natter"
)

// expireScript erases the words of what is expired among the next entries of a room's stream, as
// a deletion erases them (the append script's erase): a message's or an edit's entry leaves the
// stream for the hash of erased entries, without its body. Each room's log is in time order, so
// it stops at the first entry stored at or after the cutoff; the hash of expiry marks keeps, per
// room, the seq up to which nothing is left to expire, for the next call (on any node).
// KEYS: the room's stream, its erased entries, the expiry marks hash. ARGV: room, cutoff (Redis
// clock nanoseconds, as the entries' ts), count. It returns {erased, more} ("1": call again).
var expireScript = redis.NewScript(`
local from = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
local es = redis.call('XRANGE', KEYS[1], (from + 1) .. '-0', '+', 'COUNT', ARGV[3])
local cutoff = tonumber(ARGV[2])
local n, last, reached = 0, from, false
for _, e in ipairs(es) do
  local f = e[2]
  local m = {}
  for i = 1, #f, 2 do if f[i] ~= 'body' then m[f[i]] = f[i + 1] end end
  if tonumber(m.ts) >= cutoff then reached = true break end
  last = tonumber(string.match(e[1], '^(%d+)'))
  local kind = m.kind or ''
  if kind == '' or kind == 'edit' then
    redis.call('HSET', KEYS[2], last, cjson.encode(m))
    redis.call('XDEL', KEYS[1], e[1])
    n = n + 1
  end
end
if last > from then redis.call('HSET', KEYS[3], ARGV[1], last) end
local more = '0'
if not reached and #es == tonumber(ARGV[3]) then more = '1' end
return {tostring(n), more}`)

// expireChunk bounds the entries one expiry script examines (it holds Redis while it runs).
const expireChunk = 500

// ExpireBefore erases the words of the messages and edits stored before before, in every room
// (natter.MessageStore). Several nodes may run it at once: each step is one script, and a step
// repeated finds nothing left to erase.
func (s *Store) ExpireBefore(ctx context.Context, before time.Time) (int64, error) {
	names, err := s.rdb.HKeys(ctx, s.key("rooms")).Result()
	if err != nil {
		return 0, unavailable("expire messages", err)
	}
	cutoff := strconv.FormatInt(before.UnixNano(), 10)
	var total int64
	for _, room := range names {
		for {
			res, err := expireScript.Run(ctx, s.rdb, []string{s.key("log", room), s.key("gone", room), s.key("expired")}, room, cutoff, expireChunk).StringSlice()
			if err != nil {
				return total, unavailable("expire messages", err)
			}
			if len(res) != 2 {
				return total, natter.Internal("redis: expire messages", fmt.Errorf("unexpected answer %q", res))
			}
			n, _ := strconv.ParseInt(res[0], 10, 64)
			total += n
			if res[1] != "1" {
				break
			}
		}
	}
	return total, nil
}
