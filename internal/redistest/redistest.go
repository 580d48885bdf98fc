// Package redistest gives tests a real Redis: the one at NATTER_TEST_REDIS, or the local default
// (redis://127.0.0.1:6379/0), with a key prefix of their own that is deleted when they end. A test
// skips when there is no Redis, except with CI=true, when it fails.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is the Redis tests use when NATTER_TEST_REDIS is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns the Redis to test against, skipping (or, with CI=true, failing) t when none answers.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("NATTER_TEST_REDIS")
	if u == "" {
		u = DefaultURL
	}
	if err := reachable(u); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no Redis answers at %s: %v", u, err)
		}
		t.Skipf("no Redis at %s (%v): skipping; install and start redis-server, or set NATTER_TEST_REDIS", u, err)
	}
	return u
}

var (
	pingMu sync.Mutex
	pinged = map[string]error{} // a URL's first ping, for the whole test binary
)

// reachable pings url once per test binary, without retries.
func reachable(url string) error {
	pingMu.Lock()
	defer pingMu.Unlock()
	if err, ok := pinged[url]; ok {
		return err
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("NATTER_TEST_REDIS=%q: %w", url, err)
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = c.Ping(ctx).Err()
	pinged[url] = err
	return err
}

// Prefix returns a key prefix that no other test uses; its keys are deleted when t ends.
func Prefix(t testing.TB, url string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	prefix := "natter-test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		opt, _ := redis.ParseURL(url)
		c := redis.NewClient(opt)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return prefix
}

// Client returns a client of url, closed when t ends.
func Client(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}
