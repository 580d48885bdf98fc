package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"natter"
)

// takeTokens is a token bucket in one hash (tokens, ts), on Redis's clock so that every node
// agrees. It takes up to ARGV[3] whole tokens (0: only looks) and answers {taken, wait}: wait is
// "0" when there was a token, or the seconds until there will be one. Numbers travel as strings:
// Lua's would be rounded on the way back. KEYS: the bucket. ARGV: rate a second, burst, most to
// take.
var takeTokens = redis.NewScript(`
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

// TakeToken takes one token from the bucket key, shared by every node (natter.SharedLimiter).
func (s *Store) TakeToken(ctx context.Context, key string, rate float64, burst int, take bool) (time.Duration, error) {
	n := 0
	if take {
		n = 1
	}
	_, wait, err := s.takeTokens(ctx, key, rate, burst, n)
	return wait, err
}

// LeaseTokens takes up to n tokens at once from the bucket key, shared by every node
// (natter.SharedLimiter).
func (s *Store) LeaseTokens(ctx context.Context, key string, rate float64, burst, n int) (int, time.Duration, error) {
	return s.takeTokens(ctx, key, rate, burst, max(n, 1))
}

func (s *Store) takeTokens(ctx context.Context, key string, rate float64, burst, n int) (int, time.Duration, error) {
	v, err := takeTokens.Run(ctx, s.rdb, []string{s.key("limit", key)}, rate, burst, n).StringSlice()
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

var _ natter.SharedLimiter = (*Store)(nil)
