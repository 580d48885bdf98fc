package hub_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"natter"
	"natter/hub"
)

// discardConn is a net.Conn that accepts every write at once: the benchmarks below measure the
// hub's own cost (encode, enqueue, writer scheduling), not the kernel's.
type discardConn struct {
	net.Conn
	written atomic.Int64
	writes  atomic.Int64
}

func (c *discardConn) Write(p []byte) (int, error) {
	c.written.Add(int64(len(p)))
	c.writes.Add(1)
	return len(p), nil
}
func (c *discardConn) Close() error                     { return nil }
func (c *discardConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkPublishFanout1000 publishes one message to a room of 1,000 subscribers per iteration;
// deliveries/s is the figure to compare with the fanout goal. A discardConn is no socket, so its
// writes go through the flush workers to a goroutine per write (the slow-peer path);
// BenchmarkPublishFanoutLoopback measures the socket path.
func BenchmarkPublishFanout1000(b *testing.B) {
	const subs = 1000
	h, _ := openHub(b)
	conns := make([]*discardConn, subs)
	for i := range conns {
		conns[i] = &discardConn{}
		if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", User: "u", Out: hub.NewOutbox(conns[i], 0, nil), Transport: hub.WebSocket}); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the subscriptions finish their (empty) replay
	msg := natter.Message{Room: "lobby", Author: "alice", Body: "hello, everyone in the room", TS: time.Now()}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		msg.Seq = int64(i + 1)
		h.Publish([]natter.Message{msg})
	}
	b.StopTimer()
	var writes int64
	for _, c := range conns {
		writes += c.writes.Load()
	}
	b.ReportMetric(float64(b.N)*subs/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.N)*subs/float64(max(writes, 1)), "msgs/write")
}

// BenchmarkOutboxSend measures queueing one shared frame on one connection.
func BenchmarkOutboxSend(b *testing.B) {
	c := &discardConn{}
	out := hub.NewOutbox(c, 1<<30, nil)
	frame := make([]byte, 120)
	b.ReportAllocs()
	for b.Loop() {
		if !out.Send(frame) {
			b.Fatal("outbox refused a frame")
		}
	}
}

// BenchmarkEncodeMessage is the once-per-message encoding for every transport.
func BenchmarkEncodeMessage(b *testing.B) {
	m := natter.Message{Room: "lobby", Seq: 42, ID: "0123456789abcdef0123456789abcdef", ClientID: "c-7f3a", Author: "alice", Body: "hello, everyone in the room", TS: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		hub.EncodeMessage(m)
	}
}

// TestOutboxCoalescesFastFrames: the first frame after a quiet spell is written at once; frames
// that follow within Coalesce go out together in one write instead of one write each.
func TestOutboxCoalescesFastFrames(t *testing.T) {
	c := &discardConn{}
	out := hub.NewOutbox(c, 0, nil)
	out.Coalesce = time.Hour // nothing after the first write goes out during the test
	out.Send([]byte("first"))
	for deadline := time.Now().Add(20 * time.Second); c.written.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a lone frame was held back")
		}
	}
	for range 20 {
		out.Send([]byte("next"))
		time.Sleep(time.Millisecond)
	}
	if w := c.writes.Load(); w != 1 {
		t.Fatalf("%d writes for frames sent within the coalescing interval, want 1 so far", w)
	}

	// net.Buffers writes a non-socket conn one buffer at a time, so count bursts of writes, not
	// calls: one flush is a burst of back-to-back calls, far closer together than the sends.
	c2 := &burstConn{}
	out2 := hub.NewOutbox(c2, 0, nil)
	out2.Coalesce = 200 * time.Millisecond
	for range 20 {
		out2.Send([]byte("x"))
		time.Sleep(2 * time.Millisecond)
	}
	for deadline := time.Now().Add(20 * time.Second); c2.bytes() < 20; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 20 bytes written", c2.bytes())
		}
	}
	if b := c2.bursts(); b > 4 {
		t.Fatalf("20 frames 2 ms apart took %d flushes; coalescing should need 2", b)
	}
}

// burstConn records when each write happened.
type burstConn struct {
	net.Conn
	mu    sync.Mutex
	times []time.Time
}

func (c *burstConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range p {
		c.times = append(c.times, time.Now())
	}
	return len(p), nil
}

func (c *burstConn) bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.times)
}

// bursts counts groups of writes separated by more than half a millisecond.
func (c *burstConn) bursts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for i, at := range c.times {
		if i == 0 || at.Sub(c.times[i-1]) > 500*time.Microsecond {
			n++
		}
	}
	return n
}
