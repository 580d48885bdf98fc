package hub_test

import (
	"context"
	"net"
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
// deliveries/s is the figure to compare with the fanout goal.
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
