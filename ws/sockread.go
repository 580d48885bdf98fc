package ws

import (
	"io"
	"net"
	"syscall"

	"natter/internal/sock"
)

// SocketReader returns a reader of c's incoming bytes that reads the socket with raw system calls
// (sock.Reader, which says why) when c is a socket, as Upgrade and Dial return them with any
// bytes read ahead, and c itself otherwise. Once it is used, nothing else may read c.
func SocketReader(c net.Conn) io.Reader {
	if rc, ok := c.(*replayConn); ok {
		if r := sock.NewReader(rc.Conn); r != nil {
			rc.src = r
		}
		return rc
	}
	if r := sock.NewReader(c); r != nil {
		return r
	}
	return c
}

// ReadEach reads c's incoming bytes like SocketReader, but hands them over as they come: each
// read goes into the slice space returns (never empty), then got is told how many bytes it
// received; wait (if not nil) runs before ReadEach waits for more. It returns got's first error,
// or the connection's (io.EOF when the peer closes). On a socket it reads with sock.ReadEach,
// one read(2) per arrival.
func ReadEach(c net.Conn, space func() []byte, got func(n int) error, wait func()) error {
	if rc, ok := c.(*replayConn); ok {
		for len(rc.pending) > 0 {
			n := copy(space(), rc.pending)
			rc.pending = rc.pending[n:]
			if err := got(n); err != nil {
				return err
			}
		}
		rc.pending = nil
		c = rc.Conn
	}
	if r := sock.Raw(c); r != nil {
		return sock.ReadEach(r, space, got, wait)
	}
	for {
		if wait != nil {
			wait() // c.Read may wait; it may also not, which costs only a pooled buffer
		}
		n, err := c.Read(space())
		if n > 0 {
			if gerr := got(n); gerr != nil {
				return gerr
			}
		}
		if err != nil {
			return err
		}
	}
}

// RawSocket returns the raw socket under c, a connection from Dial or Upgrade, or nil if it has
// none (net.Pipe, TLS, test doubles).
func RawSocket(c net.Conn) syscall.RawConn {
	if rc, ok := c.(*replayConn); ok {
		c = rc.Conn
	}
	return sock.Raw(c)
}

// Detach returns the connection under c, a connection from Dial or Upgrade, and the bytes c read
// ahead and has not yet returned, which come before anything read from the returned connection.
// After it, c must not be read.
func Detach(c net.Conn) (net.Conn, []byte) {
	if rc, ok := c.(*replayConn); ok {
		pending := rc.pending
		rc.pending = nil
		return rc.Conn, pending
	}
	return c, nil
}
