//go:build unix

package sock

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"natter/internal/loopback"
)

// writevAll runs Writev on c's raw socket.
func writevAll(t *testing.T, c net.Conn, bufs [][]byte) (int, error) {
	t.Helper()
	rc := Raw(c)
	if rc == nil {
		t.Fatal("a TCP connection has no raw socket")
	}
	var iov []unix.Iovec
	var n int
	var werr error
	if err := rc.Write(func(fd uintptr) bool {
		n, werr = Writev(int(fd), bufs, &iov)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return n, werr
}

// TestWritevMoreThanIovMax: more buffers than one writev takes, some empty, arrive whole and in
// order.
func TestWritevMoreThanIovMax(t *testing.T) {
	w, r := loopback.Pair(t)
	var bufs [][]byte
	var want bytes.Buffer
	for i := range 2*IovMax + 100 {
		b := []byte(fmt.Sprintf("%d,", i))
		if i%7 == 0 {
			b = nil
		}
		bufs = append(bufs, b)
		want.Write(b)
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	n, err := writevAll(t, w, bufs)
	if err != nil || n != want.Len() {
		t.Fatalf("Writev = %d, %v; want %d, nil", n, err, want.Len())
	}
	w.Close()
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("read %d bytes that differ from the %d written", len(b), want.Len())
	}
}

// TestWritevStopsWhenFull: a socket whose peer doesn't read takes part, then EAGAIN.
func TestWritevStopsWhenFull(t *testing.T) {
	w, _ := loopback.Pair(t)
	big := make([]byte, 64<<20)
	n, err := writevAll(t, w, [][]byte{big})
	if !errors.Is(err, unix.EAGAIN) || n <= 0 || n >= len(big) {
		t.Fatalf("Writev of 64 MiB to a peer that doesn't read = %d, %v; want part, EAGAIN", n, err)
	}
}

func TestRawOfAPipeIsNil(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Raw(a) != nil || NewReader(a) != nil {
		t.Fatal("a pipe has a raw socket")
	}
}

// TestReadEachReadsOncePerArrival: a message that arrives alone costs one read(2), not a second
// that finds the socket empty. space is called before every read, so it counts them.
func TestReadEachReadsOncePerArrival(t *testing.T) {
	w, r := loopback.Pair(t)
	buf := make([]byte, 64)
	reads := 0
	space := func() []byte { reads++; return buf }
	const n = 5
	var got []string
	next := make(chan struct{})
	go func() {
		for i := range n {
			fmt.Fprintf(w, "m%d", i)
			<-next // one arrival at a time
		}
		w.Close()
	}()
	err := ReadEach(Raw(r), space, func(k int) error {
		got = append(got, string(buf[:k]))
		next <- struct{}{}
		return nil
	}, nil)
	if err != io.EOF {
		t.Fatalf("ReadEach = %v, want io.EOF", err)
	}
	if fmt.Sprint(got) != "[m0 m1 m2 m3 m4]" {
		t.Fatalf("read %q", got)
	}
	// A read per message and one for the close, give or take a wake-up for an event already
	// read: not the 2n+1 of reading each time until EAGAIN.
	if reads > n+3 {
		t.Fatalf("%d reads for %d messages and the close, want at most %d", reads, n, n+3)
	}
}

// TestReadEachMissesNothingBetweenReadAndWait: bytes that arrive after a short read, before
// ReadEach waits for the poller, are still read (the poller keeps the event for the wait).
func TestReadEachMissesNothingBetweenReadAndWait(t *testing.T) {
	w, r := loopback.Pair(t)
	buf := make([]byte, 64)
	var got bytes.Buffer
	const n = 200
	fmt.Fprint(w, "start;")
	err := ReadEach(Raw(r), func() []byte { return buf }, func(k int) error {
		got.Write(buf[:k])
		if c := bytes.Count(got.Bytes(), []byte(";")); c <= n {
			// Written while ReadEach is between its short read and its wait.
			fmt.Fprintf(w, "%d;", c)
			return nil
		}
		return io.ErrShortWrite // any error: stop
	}, nil)
	if err != io.ErrShortWrite {
		t.Fatalf("ReadEach = %v, want got's error", err)
	}
	if c := bytes.Count(got.Bytes(), []byte(";")); c != n+1 {
		t.Fatalf("read %d messages, want %d", c, n+1)
	}
}

// TestReadEachLargeRead: a read that fills the space offered reads again at once; the bytes
// come in order.
func TestReadEachLargeRead(t *testing.T) {
	w, r := loopback.Pair(t)
	want := bytes.Repeat([]byte("0123456789"), 10000)
	go func() {
		w.Write(want)
		w.Close()
	}()
	buf := make([]byte, 1000)
	var got bytes.Buffer
	err := ReadEach(Raw(r), func() []byte { return buf }, func(k int) error {
		got.Write(buf[:k])
		return nil
	}, nil)
	if err != io.EOF || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("ReadEach = %v after %d of %d bytes", err, got.Len(), len(want))
	}
}

// TestReadEachUnblocksOnClose: closing the connection ends a ReadEach that waits.
func TestReadEachUnblocksOnClose(t *testing.T) {
	_, r := loopback.Pair(t)
	rc := Raw(r)
	done := make(chan error, 1)
	go func() {
		done <- ReadEach(rc, func() []byte { return make([]byte, 8) }, func(int) error { return nil }, nil)
	}()
	r.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadEach on a closed connection = %v, want net.ErrClosed", err)
	}
}

// TestWaitReadable: WaitReadable returns once bytes come, leaving them to be read; on the peer's
// hang-up; with the deadline's error when nothing comes; and with net.ErrClosed once closed.
func TestWaitReadable(t *testing.T) {
	w, r := loopback.Pair(t)
	rc := Raw(r)
	done := make(chan error, 1)
	go func() { done <- WaitReadable(rc) }()
	if _, err := w.Write([]byte("GET")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitReadable after a write = %v", err)
	}
	b := make([]byte, 8)
	if n, err := r.Read(b); err != nil || string(b[:n]) != "GET" {
		t.Fatalf("read after WaitReadable = %q, %v: the bytes must still be there", b[:n], err)
	}

	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if err := WaitReadable(rc); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WaitReadable with nothing sent = %v, want the deadline's error", err)
	}
	r.SetReadDeadline(time.Time{})

	w.Close()
	if err := WaitReadable(rc); err != nil {
		t.Fatalf("WaitReadable after the peer hung up = %v", err)
	}
	r.Close()
	if err := WaitReadable(rc); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WaitReadable on a closed connection = %v, want net.ErrClosed", err)
	}
}
