package hub_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"natter/hub"
)

// TestOutboxSlowPeerGetsEverythingInOrder: when the peer reads slower than the server writes,
// the socket takes part of a write; the rest must follow, in order, before anything queued later.
// A small send buffer and a reader that starts late force writes the socket cannot take at once
// (about 1 MB is sent, more than the socket buffers hold).
func TestOutboxSlowPeerGetsEverythingInOrder(t *testing.T) {
	for _, coalesce := range []time.Duration{0, 2 * time.Millisecond} {
		t.Run(fmt.Sprint("coalesce=", coalesce), func(t *testing.T) {
			srv, cli := tcpPair(t)
			srv.(*net.TCPConn).SetWriteBuffer(4096)
			out := hub.NewOutbox(srv, 64<<20, nil)
			out.Coalesce = coalesce

			const frames = 3000
			var want bytes.Buffer
			for i := range frames {
				f := fmt.Appendf(nil, "%06d%s\n", i, bytes.Repeat([]byte{'a' + byte(i%26)}, i%700))
				want.Write(f)
				if !out.Send(f) {
					t.Fatalf("frame %d refused", i)
				}
				if i == frames/2 {
					time.Sleep(50 * time.Millisecond) // let the first half back up in the socket
				}
			}
			out.CloseWith([]byte("END\n"), false)
			want.WriteString("END\n")

			time.Sleep(100 * time.Millisecond) // the reader starts late: the socket fills up
			got, err := io.ReadAll(cli)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				i := 0
				for i < min(len(got), want.Len()) && got[i] == want.Bytes()[i] {
					i++
				}
				t.Fatalf("read %d bytes, want %d; first difference at byte %d", len(got), want.Len(), i)
			}
		})
	}
}

// TestOutboxCoalescingWaitEndsEarly: frames held back by the coalescing interval go out at once
// when an answer that a client waits on follows them (SendNow), and when the connection closes.
// The interval is an hour, so anything that arrives was not waiting for it.
func TestOutboxCoalescingWaitEndsEarly(t *testing.T) {
	srv, cli := tcpPair(t)
	out := hub.NewOutbox(srv, 0, nil)
	out.Coalesce = time.Hour
	read := func(want string) {
		t.Helper()
		cli.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(cli, buf); err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if string(buf) != want {
			t.Fatalf("read %q, want %q", buf, want)
		}
	}
	out.Send([]byte("a")) // the first write after a quiet spell is not delayed
	read("a")
	out.Send([]byte("b")) // within the interval: waits
	out.SendNow([]byte("c"))
	read("bc")
	out.Send([]byte("d")) // waits again, for a new interval
	out.Send([]byte("e"))
	out.CloseWith([]byte("!"), false)
	read("de!")
	select {
	case <-out.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the outbox did not close")
	}
}

// TestOutboxClosesWhenPeerIsGone: a write that fails because the peer reset the connection closes
// the outbox and runs its clean-up (unsubscribe, presence), even though nothing reads from it.
func TestOutboxClosesWhenPeerIsGone(t *testing.T) {
	srv, cli := tcpPair(t)
	cleaned := make(chan struct{})
	out := hub.NewOutbox(srv, 0, func() { close(cleaned) })
	cli.(*net.TCPConn).SetLinger(0) // close with a reset, as a vanished client's host would
	cli.Close()
	deadline := time.Now().Add(20 * time.Second)
	for !out.Closed() {
		if time.Now().After(deadline) {
			t.Fatal("writes to a reset connection did not close the outbox")
		}
		out.Send([]byte("anyone there?"))
		time.Sleep(time.Millisecond)
	}
	select {
	case <-cleaned:
	case <-time.After(20 * time.Second):
		t.Fatal("the outbox closed without its clean-up")
	}
	<-out.Done()
}

// TestSlowClosesCounted: SlowCloses counts each connection closed as slow once, however many
// times CloseSlow is called for it, and not connections closed otherwise.
func TestSlowClosesCounted(t *testing.T) {
	before := hub.SlowCloses()
	srv, cli := tcpPair(t)
	out := hub.NewOutbox(srv, 0, nil)
	out.SlowFinal = []byte("SLOW\n")
	out.CloseSlow()
	out.CloseSlow()
	got, err := io.ReadAll(cli)
	if err != nil || string(got) != "SLOW\n" {
		t.Fatalf("read %q, %v", got, err)
	}
	srv2, _ := tcpPair(t)
	other := hub.NewOutbox(srv2, 0, nil)
	other.CloseWith(nil, true)
	other.CloseSlow() // already closing: not slow
	<-other.Done()
	if n := hub.SlowCloses() - before; n != 1 {
		t.Fatalf("SlowCloses rose by %d, want 1", n)
	}
}
