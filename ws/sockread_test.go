package ws

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"natter/internal/loopback"
	"natter/internal/sock"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	server, client = loopback.Pair(t)
	return client, server
}

func TestSocketReaderReadsRaw(t *testing.T) {
	client, server := tcpPair(t)
	r := SocketReader(server)
	if _, ok := r.(*sock.Reader); !ok {
		t.Fatalf("SocketReader of a TCP connection is a %T, not a raw reader", r)
	}
	go client.Write([]byte("hello"))
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(r, buf, 5)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read = %d, %v", n, err)
	}

	// A read with nothing to read waits for the deadline.
	server.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline = %v", err)
	}
	var ne net.Error
	if _, err := r.Read(buf); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("deadline error %v is not a net.Error timeout", err)
	}
	server.SetReadDeadline(time.Time{})

	// The peer's close is io.EOF, after the bytes it sent before it.
	client.Write([]byte("bye"))
	client.Close()
	n, err = io.ReadFull(r, buf[:3])
	if err != nil || string(buf[:n]) != "bye" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if _, err := r.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed = %v, want io.EOF", err)
	}
}

func TestSocketReaderUnblocksOnClose(t *testing.T) {
	_, server := tcpPair(t)
	r := SocketReader(server)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the read park (the test passes either way)
	server.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection = %v, want net.ErrClosed", err)
	}
}

func TestSocketReaderKeepsReadAheadBytes(t *testing.T) {
	client, server := tcpPair(t)
	rc := &replayConn{Conn: server, pending: []byte("early ")}
	r := SocketReader(rc)
	if r != io.Reader(rc) || rc.src == nil {
		t.Fatalf("SocketReader of a replayConn = %T with src %T", r, rc.src)
	}
	client.Write([]byte("bird"))
	buf := make([]byte, 10)
	n, err := io.ReadFull(r, buf)
	if err != nil || string(buf[:n]) != "early bird" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

func TestSocketReaderOfAPipeIsThePipe(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if r := SocketReader(a); r != io.Reader(a) {
		t.Fatalf("SocketReader of a pipe = %T", r)
	}
}

// readEachString collects what ReadEach reads from c until it ends, in reads of at most 4 bytes.
func readEachString(c net.Conn) (string, error) {
	buf := make([]byte, 4)
	var got []byte
	err := ReadEach(c, func() []byte { return buf }, func(n int) error {
		got = append(got, buf[:n]...)
		return nil
	}, nil)
	return string(got), err
}

func TestReadEachKeepsReadAheadBytes(t *testing.T) {
	client, server := tcpPair(t)
	rc := &replayConn{Conn: server, pending: []byte("early ")} // more than one read's space
	client.Write([]byte("bird"))
	client.Close()
	got, err := readEachString(rc)
	if got != "early bird" || err != io.EOF {
		t.Fatalf("ReadEach read %q, %v; want \"early bird\", io.EOF", got, err)
	}
}

func TestReadEachOfAPipe(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		b.Write([]byte("no raw socket"))
		b.Close()
	}()
	got, err := readEachString(a)
	if got != "no raw socket" || err != io.EOF {
		t.Fatalf("ReadEach read %q, %v", got, err)
	}
}

func TestReadEachStopsAtGotsError(t *testing.T) {
	client, server := tcpPair(t)
	client.Write([]byte("x"))
	stop := errors.New("stop")
	err := ReadEach(server, func() []byte { return make([]byte, 8) }, func(int) error { return stop }, nil)
	if err != stop {
		t.Fatalf("ReadEach = %v, want got's error", err)
	}
}

// TestDetach: the connection under a replayConn comes back with the bytes read ahead, which the
// replayConn then no longer returns; any other connection comes back as it is.
func TestDetach(t *testing.T) {
	client, server := tcpPair(t)
	rc := &replayConn{Conn: server, pending: []byte("early")}
	under, pending := Detach(rc)
	if under != server || string(pending) != "early" || len(rc.pending) != 0 {
		t.Fatalf("Detach = %v, %q (left %q); want the socket and \"early\"", under, pending, rc.pending)
	}
	if under, pending := Detach(client); under != client || pending != nil {
		t.Fatalf("Detach of a plain connection = %v, %q", under, pending)
	}
}
