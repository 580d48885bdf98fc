package hub_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"natter"
	"natter/hub"
)

// BenchmarkLoopbackFloor measures what the kernel alone charges for the unit of work of a fan-out
// that cannot coalesce: one small write to a loopback TCP connection whose reader is waiting for
// it. No natter code runs. It reports the writing thread's CPU per write (the sender's TCP path
// and, on loopback, the receiver's softirq processing too) and the whole process's CPU per
// delivery (adding the readers' reads). Those bound what any server on this machine spends per
// delivery, and how soon a fan-out to N connections can finish on its cores:
// N x process-us/delivery / cores. docs/benchmarks.md compares them with natter's figures.
//
// "stream" writes round-robin without pause, so readers and caches stay hot; "burst" writes one
// frame to each of the 1,000 connections after a quiet spell, as a message at a low rate does.
func BenchmarkLoopbackFloor(b *testing.B) {
	const conns = 1000
	frame := make([]byte, 100) // about one chat message as a WebSocket frame
	servers, got := loopbackReaders(b, conns, func(p []byte) int64 { return int64(len(p)) })
	waitRead := func(want int64) { waitCount(got, want) }
	report := func(b *testing.B, writes int64, thread, proc time.Duration) {
		b.ReportMetric(float64(thread.Nanoseconds())/1e3/float64(writes), "writer-us/write")
		b.ReportMetric(float64(proc.Nanoseconds())/1e3/float64(writes), "process-us/delivery")
	}
	b.Run("stream", func(b *testing.B) {
		runtime.LockOSThread() // so that the thread's CPU time is the writing loop's
		defer runtime.UnlockOSThread()
		base := got.Load()
		thread0, proc0 := cpuTime(rusageThread), cpuTime(syscall.RUSAGE_SELF)
		for i := range b.N {
			if _, err := servers[i%conns].Write(frame); err != nil {
				b.Fatal(err)
			}
		}
		waitRead(base + int64(b.N)*int64(len(frame)))
		report(b, int64(b.N), cpuTime(rusageThread)-thread0, cpuTime(syscall.RUSAGE_SELF)-proc0)
	})
	b.Run("burst", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var thread, proc time.Duration
		for range b.N {
			b.StopTimer()
			time.Sleep(50 * time.Millisecond) // readers go back to sleep
			base := got.Load()
			b.StartTimer()
			thread0, proc0 := cpuTime(rusageThread), cpuTime(syscall.RUSAGE_SELF)
			for _, c := range servers {
				if _, err := c.Write(frame); err != nil {
					b.Fatal(err)
				}
			}
			waitRead(base + conns*int64(len(frame)))
			thread += cpuTime(rusageThread) - thread0
			proc += cpuTime(syscall.RUSAGE_SELF) - proc0
		}
		report(b, int64(b.N)*conns, thread, proc)
	})
}

// loopbackReaders makes n loopback connections and returns their server ends; a goroutine reads
// each client end and adds count(what it read) to the returned counter.
func loopbackReaders(b *testing.B, n int, count func([]byte) int64) ([]net.Conn, *atomic.Int64) {
	got := new(atomic.Int64)
	servers := make([]net.Conn, 0, n)
	for range n {
		srv, cli := tcpPair(b)
		servers = append(servers, srv)
		go func() {
			buf := make([]byte, 4096)
			for {
				k, err := cli.Read(buf)
				got.Add(count(buf[:k]))
				if err != nil {
					return
				}
			}
		}()
	}
	return servers, got
}

// waitCount waits until got reaches want, checking often enough not to add delay worth counting.
func waitCount(got *atomic.Int64, want int64) {
	for got.Load() < want {
		time.Sleep(100 * time.Microsecond)
	}
}

// rusageThread is Linux's RUSAGE_THREAD: the calling thread only.
const rusageThread = 1

func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPublishFanoutLoopback is BenchmarkPublishFanout1000 over real loopback sockets, each
// drained by a reader goroutine: the outboxes take the flush workers' non-blocking writev path,
// as in the server. Each iteration publishes one message to 1,000 subscribers and waits until
// every reader has it, so messages never share a write (the low-rate case). process-us/delivery
// compares with BenchmarkLoopbackFloor/burst: the difference is natter's own cost.
func BenchmarkPublishFanoutLoopback(b *testing.B) {
	const subs = 1000
	h, _ := openHub(b)
	frames := []byte("event: message\n")
	conns, got := loopbackReaders(b, subs, func(p []byte) int64 { return int64(bytes.Count(p, frames)) })
	for _, srv := range conns {
		out := hub.NewOutbox(srv, 0, nil)
		b.Cleanup(out.Close)
		if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", User: "u", Out: out, Transport: hub.SSE}); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // subscribed frames and presence are out of the way
	msg := natter.Message{Room: "lobby", Author: "alice", Body: "hello, everyone in the room", TS: time.Now()}
	cpu0 := cpuTime(syscall.RUSAGE_SELF)
	b.ResetTimer()
	for i := range b.N {
		msg.Seq = int64(i + 1)
		h.Publish([]natter.Message{msg})
		waitCount(got, int64(i+1)*subs)
	}
	b.StopTimer()
	cpu := cpuTime(syscall.RUSAGE_SELF) - cpu0
	b.ReportMetric(float64(b.N)*subs/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N*subs), "process-us/delivery")
}

// BenchmarkLoopbackRoundTripFloor is the floor of `natter bench ingest` with one send in flight
// per sender: 100 loopback connections, each a client that writes a 100-byte request and waits
// for a 40-byte answer, and a server goroutine that answers every request at once. Nothing is
// decoded or stored. round-trips/s bounds what any server on this machine can acknowledge to 100
// such senders with the load generator on the same cores; docs/benchmarks.md compares it with
// natter's figures.
func BenchmarkLoopbackRoundTripFloor(b *testing.B) {
	const senders = 100
	request, answer := make([]byte, 100), make([]byte, 40)
	clients := make([]net.Conn, senders)
	for i := range clients {
		srv, cli := tcpPair(b)
		clients[i] = cli
		go func() {
			buf := make([]byte, 4096)
			pending := 0
			for {
				n, err := srv.Read(buf)
				if err != nil {
					return
				}
				for pending += n; pending >= len(request); pending -= len(request) {
					if _, err := srv.Write(answer); err != nil {
						return
					}
				}
			}
		}()
	}
	cpu0 := cpuTime(syscall.RUSAGE_SELF)
	b.ResetTimer()
	done := make(chan error, senders)
	for i, c := range clients {
		n := b.N / senders
		if i < b.N%senders {
			n++
		}
		go func() {
			buf := make([]byte, len(answer))
			for range n {
				if _, err := c.Write(request); err != nil {
					done <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range senders {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := cpuTime(syscall.RUSAGE_SELF) - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "round-trips/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "process-us/round-trip")
}
