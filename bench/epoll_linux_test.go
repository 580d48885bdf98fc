package bench

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"natter/ws"
)

// TestPollLoop runs sockets through a read loop on real loopback connections: frames written in
// any pieces reach the handler whole and in order, a peer's close ends its socket with io.EOF,
// stop ends one with net.ErrClosed, and closing the loop ends the rest.
func TestPollLoop(t *testing.T) {
	l, err := newPollLoop()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type sock struct {
		pc   *pollConn
		peer net.Conn // the server's end
		got  chan string
	}
	open := func() *sock {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peer, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { peer.Close() })
		fd, pending, err := detach(c)
		if err != nil || len(pending) != 0 {
			t.Fatalf("detach: %v, %d bytes pending", err, len(pending))
		}
		s := &sock{peer: peer, got: make(chan string, 100)}
		fr := newFrameReader()
		fr.fn = func(op ws.Opcode, p []byte) error {
			s.got <- string(p)
			return nil
		}
		s.pc = &pollConn{fd: fd, fr: fr, ended: make(chan error, 1)}
		if err := l.add(s.pc); err != nil {
			t.Fatal(err)
		}
		return s
	}
	ended := func(s *sock) error {
		t.Helper()
		select {
		case err := <-s.pc.ended:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("the loop never ended the socket")
			return nil
		}
	}

	a, b, c := open(), open(), open()
	var stream []byte
	for i := range 50 {
		stream = ws.AppendFrame(stream, ws.OpText, []byte{'m', byte('0' + i%10)})
	}
	stream = ws.AppendFrame(stream, ws.OpText, make([]byte, 3*frameBufSize)) // bigger than a read
	for i := 0; i < len(stream); i += 7 {
		if _, err := a.peer.Write(stream[i:min(i+7, len(stream))]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		if m := <-a.got; m != string([]byte{'m', byte('0' + i%10)}) {
			t.Fatalf("message %d is %q", i, m)
		}
	}
	if m := <-a.got; len(m) != 3*frameBufSize {
		t.Fatalf("the big message has %d bytes", len(m))
	}

	b.peer.Close()
	if err := ended(b); err != io.EOF {
		t.Errorf("peer closed: ended with %v, want io.EOF", err)
	}
	a.pc.stop()
	if err := ended(a); !errors.Is(err, net.ErrClosed) {
		t.Errorf("stopped: ended with %v, want net.ErrClosed", err)
	}
	l.close()
	if err := ended(c); !errors.Is(err, net.ErrClosed) {
		t.Errorf("loop closed: ended with %v, want net.ErrClosed", err)
	}
	// A socket handed over after the loop ended is refused, not registered with a closed
	// epoll descriptor (whose number may belong to something else by now).
	late := &pollConn{fd: -1, fr: newFrameReader(), ended: make(chan error, 1)}
	if err := l.add(late); !errors.Is(err, net.ErrClosed) {
		t.Errorf("add after the loop ended: %v, want net.ErrClosed", err)
	}
	// A stop that comes late (a context's AfterFunc) must not touch the closed eventfd, whose
	// number a new file may have: one of these, which take the numbers the loop gave back.
	var files []*os.File
	for range 2 {
		f, err := os.CreateTemp(t.TempDir(), "reused")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	c.pc.stop()
	for _, f := range files {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != 0 {
			t.Fatalf("a stop after the loop ended wrote %d bytes to another file", fi.Size())
		}
	}
}
