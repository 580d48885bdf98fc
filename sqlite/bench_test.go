package sqlite

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"natter"
)

// BenchmarkAppendParallel measures acknowledged appends per second from about 100 concurrent
// senders with Synchronous FULL, so every acknowledged message is durable. The client_id case is
// what real clients send: each append also lands on a scattered page of the idempotency index,
// which roughly doubles the bytes every commit writes.
func BenchmarkAppendParallel(b *testing.B) {
	b.Run("client_id", func(b *testing.B) { benchmarkAppendParallel(b, true) })
	b.Run("no_client_id", func(b *testing.B) { benchmarkAppendParallel(b, false) })
}

func benchmarkAppendParallel(b *testing.B, withClientID bool) {
	ctx := context.Background()
	var delivered atomic.Int64
	s := mustOpen(b, Config{OnCommit: func(msgs []natter.Message) { delivered.Add(int64(len(msgs))) }})
	rooms := []string{natter.DefaultRoom, "ops", "dev", "random"}
	for _, r := range rooms[1:] {
		if _, err := s.CreateRoom(ctx, natter.Room{Name: r}); err != nil {
			b.Fatal(err)
		}
	}
	const senders = 100
	b.SetParallelism((senders + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var nextSender atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := nextSender.Add(1)
		req := natter.AppendRequest{
			Room:   rooms[int(g)%len(rooms)],
			Author: "user" + strconv.FormatInt(g, 10),
			Body:   "the quick brown fox jumps over the lazy dog",
		}
		for i := 0; pb.Next(); i++ {
			if withClientID {
				req.ClientID = "c-" + strconv.Itoa(i)
			}
			if _, _, err := s.AppendMessage(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if got := delivered.Load(); got != int64(b.N) {
		b.Fatalf("OnCommit saw %d messages, want %d", got, b.N)
	}
}
