package park

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"natter/internal/loopback"
)

// guard bounds every wait for something that must happen; nothing is timed.
const guard = 10 * time.Second

// pair returns both ends of a loopback TCP connection, closed at the end of the test.
func pair(t testing.TB) (server, client net.Conn) { return loopback.Pair(t) }

func raw(t testing.TB, c net.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// waitReadable waits until c's socket has bytes to read, without reading them.
func waitReadable(t *testing.T, c net.Conn) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		var n int
		raw(t, c).Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the bytes never arrived")
		}
		time.Sleep(time.Millisecond)
	}
}

func fired(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(guard):
		t.Fatalf("%s: the waiter's function did not run", what)
	}
}

// TestArmRunsOncePerArrival: an armed Waiter runs its function once the socket has bytes, and
// again only once armed again; a socket that is readable already runs it at once.
func TestArmRunsOncePerArrival(t *testing.T) {
	srv, cli := pair(t)
	runs := make(chan struct{}, 10)
	w := NewWaiter(raw(t, srv), func() { runs <- struct{}{} })
	base := Armed()
	for i := range 5 { // the first arming adds the socket, the later ones re-enable it
		if err := w.Arm(); err != nil {
			t.Fatal(err)
		}
		if got := Armed(); got != base+1 { // nothing to read yet: still armed
			t.Fatalf("%d armed, want %d", got, base+1)
		}
		if _, err := cli.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		fired(t, runs, "after a write")
		var b [1]byte
		if _, err := srv.Read(b[:]); err != nil || b[0] != byte(i) {
			t.Fatalf("read %v, %v", b, err)
		}
	}
	// Readable before it is armed: runs at once.
	cli.Write([]byte("y"))
	waitReadable(t, srv)
	if err := w.Arm(); err != nil {
		t.Fatal(err)
	}
	fired(t, runs, "armed on a readable socket")
	if len(runs) != 0 {
		t.Fatalf("the function ran %d more times than armed", len(runs))
	}
	if got := Armed(); got != base {
		t.Fatalf("%d armed after every arming ran, want %d", got, base)
	}
}

// TestPeerCloseRuns: the peer's hang-up runs the function, so the reader sees the end.
func TestPeerCloseRuns(t *testing.T) {
	srv, cli := pair(t)
	runs := make(chan struct{}, 1)
	w := NewWaiter(raw(t, srv), func() { runs <- struct{}{} })
	if err := w.Arm(); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	fired(t, runs, "after the peer closed")
}

// TestCancel: a canceled Waiter is forgotten at once, never runs, and refuses to be armed.
func TestCancel(t *testing.T) {
	srv, cli := pair(t)
	runs := make(chan struct{}, 1)
	w := NewWaiter(raw(t, srv), func() { runs <- struct{}{} })
	base := Armed()
	if err := w.Arm(); err != nil {
		t.Fatal(err)
	}
	w.Cancel()
	w.Cancel() // twice is fine
	if got := Armed(); got != base {
		t.Fatalf("%d armed after Cancel, want %d", got, base)
	}
	if err := w.Arm(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Arm after Cancel: %v, want net.ErrClosed", err)
	}
	// A write now wakes nothing: a second Waiter on another socket, armed after, runs, and by
	// then the loop has handled the first socket's event too (one epoll_wait returns both, or
	// the first came earlier).
	cli.Write([]byte("x"))
	srv2, cli2 := pair(t)
	runs2 := make(chan struct{}, 1)
	w2 := NewWaiter(raw(t, srv2), func() { runs2 <- struct{}{} })
	if err := w2.Arm(); err != nil {
		t.Fatal(err)
	}
	cli2.Write([]byte("x"))
	fired(t, runs2, "the second waiter")
	if len(runs) != 0 {
		t.Fatal("a canceled Waiter ran")
	}
}

// TestArmClosedSocket: arming a closed socket fails and leaves nothing armed.
func TestArmClosedSocket(t *testing.T) {
	srv, _ := pair(t)
	w := NewWaiter(raw(t, srv), func() { t.Error("ran for a closed socket") })
	base := Armed()
	srv.Close()
	if err := w.Arm(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Arm on a closed socket: %v, want net.ErrClosed", err)
	}
	if got := Armed(); got != base {
		t.Fatalf("%d armed, want %d", got, base)
	}
}

// TestReusedDescriptor: a socket closed while armed leaves the epoll set, and a new socket that
// gets its descriptor number is armed and woken as itself, even while the closed one's Waiter
// is still armed and when its owner cancels it only after that: waiters are keyed by arming, not
// by number.
func TestReusedDescriptor(t *testing.T) {
	srv, _ := pair(t)
	old := NewWaiter(raw(t, srv), func() { t.Error("the closed socket's waiter ran") })
	if err := old.Arm(); err != nil {
		t.Fatal(err)
	}
	var oldFD uintptr
	raw(t, srv).Control(func(fd uintptr) { oldFD = fd })

	// A connection waiting to be accepted, so that the accept right after the close takes the
	// lowest free descriptor number: the closed socket's.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli2.Close()
	srv.Close() // old stays armed for now
	srv2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	var fd uintptr
	raw(t, srv2).Control(func(f uintptr) { fd = f })
	if fd != oldFD {
		t.Skipf("the new socket got descriptor %d, not the closed one's %d", fd, oldFD)
	}
	runs := make(chan struct{}, 1)
	w := NewWaiter(raw(t, srv2), func() { runs <- struct{}{} })
	if err := w.Arm(); err != nil { // EPOLL_CTL_ADD: EEXIST if the old socket were still in the set
		t.Fatal(err)
	}
	old.Cancel() // late, as a closed connection's clean-up may be: it must not disarm w
	cli2.Write([]byte("x"))
	fired(t, runs, "the socket on the reused number")
}

// BenchmarkWake is one byte written to a loopback socket, the reader woken and the byte read, two
// ways: a parked Waiter (the poller's thread wakes and starts a goroutine) and a goroutine
// blocked in a read (woken by the runtime's poller). The difference is what parking costs a
// WebSocket per arrival (server.defaultBusyGap).
func BenchmarkWake(b *testing.B) {
	srv, cli := pair(b)
	one := []byte{1}
	buf := make([]byte, 16)

	// One Waiter per socket, as the server has: b.Run may call the function more than once.
	woken := make(chan struct{})
	w := NewWaiter(raw(b, srv), func() { woken <- struct{}{} })
	defer w.Cancel()
	b.Run("parked", func(b *testing.B) {
		for b.Loop() {
			if err := w.Arm(); err != nil {
				b.Fatal(err)
			}
			cli.Write(one)
			<-woken
			srv.Read(buf)
		}
	})
	b.Run("goroutine", func(b *testing.B) {
		read := make(chan struct{})
		stop := make(chan struct{})
		go func() {
			for {
				if _, err := srv.Read(buf); err != nil {
					return
				}
				select {
				case read <- struct{}{}:
				case <-stop:
					return
				}
			}
		}()
		for b.Loop() {
			cli.Write(one)
			<-read
		}
		close(stop)
		cli.Write(one) // lets the reader see stop
	})
}
