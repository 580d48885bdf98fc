package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"natter"
)

// eraseRangeScript erases the words of some of the next entries of a room's stream, as a deletion
// erases them (the append script's erase): a message's or an edit's entry leaves the stream for
// the hash of erased entries, without its body. It reads the entries after seq from, at most
// count; with a cutoff it stops at the first entry stored at or after it (each log is in time
// order) and erases those before; with an author it erases only that author's.
// KEYS: the room's stream, its erased entries. ARGV: from, count, cutoff (Redis clock
// nanoseconds, as the entries' ts; "" for none), author ("" for any).
// It returns {erased, last, more}: how many it erased, the last seq it went past, and "1" if the
// stream may hold more to look at after it.
var eraseRangeScript = redis.NewScript(`
local from = tonumber(ARGV[1])
local es = redis.call('XRANGE', KEYS[1], (from + 1) .. '-0', '+', 'COUNT', ARGV[2])
local cutoff = tonumber(ARGV[3])
local n, last, reached = 0, from, false
for _, e in ipairs(es) do
  local f = e[2]
  local m = {}
  for i = 1, #f, 2 do if f[i] ~= 'body' then m[f[i]] = f[i + 1] end end
  if cutoff and tonumber(m.ts) >= cutoff then reached = true break end
  last = tonumber(string.match(e[1], '^(%d+)'))
  local kind = m.kind or ''
  if (kind == '' or kind == 'edit') and (ARGV[4] == '' or m.author == ARGV[4]) then
    redis.call('HSET', KEYS[2], last, cjson.encode(m))
    redis.call('XDEL', KEYS[1], e[1])
    n = n + 1
  end
end
local more = '0'
if not reached and #es == tonumber(ARGV[2]) then more = '1' end
return {tostring(n), tostring(last), more}`)

// eraseChunk bounds the entries one erasing script examines (it holds Redis while it runs).
const eraseChunk = 500

// eraseRange runs eraseRangeScript over room's stream from seq from until it says there is no
// more (or, with a cutoff, it reaches it). It returns how many entries it erased and the last
// seq it went past.
func (s *Store) eraseRange(ctx context.Context, room string, from int64, cutoff, author string) (int64, int64, error) {
	var total int64
	for {
		res, err := eraseRangeScript.Run(ctx, s.rdb, []string{s.key("log", room), s.key("gone", room)}, from, eraseChunk, cutoff, author).StringSlice()
		if err != nil {
			return total, from, unavailable("erase messages", err)
		}
		if len(res) != 3 {
			return total, from, natter.Internal("redis: erase messages", fmt.Errorf("unexpected answer %q", res))
		}
		n, _ := strconv.ParseInt(res[0], 10, 64)
		from, _ = strconv.ParseInt(res[1], 10, 64)
		total += n
		if res[2] != "1" {
			return total, from, nil
		}
	}
}

// ExpireBefore erases the words of the messages and edits stored before before, in every room
// (natter.MessageStore). The hash of expiry marks keeps, per room, the seq up to which nothing is
// left to expire, for the next call on any node. Several nodes may run it at once: each step is
// one script, and a step repeated finds nothing left to erase.
func (s *Store) ExpireBefore(ctx context.Context, before time.Time) (int64, error) {
	names, err := s.rdb.HKeys(ctx, s.key("rooms")).Result()
	if err != nil {
		return 0, unavailable("expire messages", err)
	}
	marks, err := s.rdb.HGetAll(ctx, s.key("expired")).Result()
	if err != nil {
		return 0, unavailable("expire messages", err)
	}
	cutoff := strconv.FormatInt(before.UnixNano(), 10)
	var total int64
	for _, room := range names {
		from, _ := strconv.ParseInt(marks[room], 10, 64)
		n, last, err := s.eraseRange(ctx, room, from, cutoff, "")
		total += n
		if err != nil {
			return total, err
		}
		if last > from {
			if err := s.rdb.HSet(ctx, s.key("expired"), room, last).Err(); err != nil {
				return total, unavailable("expire messages", err)
			}
		}
	}
	return total, nil
}

// EraseAuthor erases the words of every message and edit author wrote, in every room
// (natter.MessageStore).
func (s *Store) EraseAuthor(ctx context.Context, author string) (int64, error) {
	names, err := s.rdb.HKeys(ctx, s.key("rooms")).Result()
	if err != nil {
		return 0, unavailable("erase messages", err)
	}
	var total int64
	for _, room := range names {
		n, _, err := s.eraseRange(ctx, room, 0, "", author)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
