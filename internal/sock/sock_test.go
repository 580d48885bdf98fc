package sock

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

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
