package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"natter"
)

// takeToken is a token bucket in one hash (tokens, ts), on Redis's clock so that every node
// agrees. It answers "0" when there was a token (taken when ARGV[3] is "1"), or the seconds until
// there will be one. Numbers travel as strings: Lua's would be rounded on the way back.
// KEYS: the bucket. ARGV: rate a second, burst, take.
var takeToken = redis.NewScript(`
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
if tokens < 1 then return tostring((1 - tokens) / rate) end
if ARGV[3] == '1' then tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return '0'`)

// TakeToken takes one token from the bucket key, shared by every node (natter.SharedLimiter).
func (s *Store) TakeToken(ctx context.Context, key string, rate float64, burst int, take bool) (time.Duration, error) {
	t := "0"
	if take {
		t = "1"
	}
	v, err := takeToken.Run(ctx, s.rdb, []string{s.key("limit", key)}, rate, burst, t).Text()
	if err != nil {
		return 0, unavailable("rate limit", err)
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, natter.Internal("redis: rate limit", err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

var _ natter.SharedLimiter = (*Store)(nil)

// leaseTokens is takeToken taking up to ARGV[3] tokens at once. It answers {taken, wait}: the
// tokens taken, and when none were, the seconds until there will be one.
var leaseTokens = redis.NewScript(`
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
if tokens < 1 then return {'0', tostring((1 - tokens) / rate)} end
local took = math.min(want, math.floor(tokens))
tokens = tokens - took
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {tostring(took), '0'}`)

// LeaseTokens takes up to n tokens at once from the bucket key, shared by every node
// (natter.SharedLimiter).
func (s *Store) LeaseTokens(ctx context.Context, key string, rate float64, burst, n int) (int, time.Duration, error) {
	v, err := leaseTokens.Run(ctx, s.rdb, []string{s.key("limit", key)}, rate, burst, n).StringSlice()
	if err != nil {
		return 0, 0, unavailable("rate limit", err)
	}
	if len(v) != 2 {
		return 0, 0, natter.Internal("redis: rate limit", fmt.Errorf("unexpected answer %q", v))
	}
	took, err1 := strconv.Atoi(v[0])
	secs, err2 := strconv.ParseFloat(v[1], 64)
	if err1 != nil || err2 != nil {
		return 0, 0, natter.Internal("redis: rate limit", fmt.Errorf("unexpected answer %q", v))
	}
	return took, time.Duration(secs * float64(time.Second)), nil
}
