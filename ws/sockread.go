package ws

import (
	"io"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SocketReader returns a reader of c's incoming bytes that reads the socket with raw system calls
// when c is a socket (as Upgrade and Dial return them, with any bytes read ahead), and c itself
// otherwise. Once it is used, nothing else may read c.
//
// A raw read is not announced to the Go runtime as a system call. A read of a non-blocking socket
// never waits (when there is nothing to read, the goroutine parks on the runtime's poller as
// usual), so that is safe, and it is cheaper: told of a system call, the runtime's monitor may
// hand the goroutine's P to another thread while it runs, and with thousands of short reads a
// second that churn of threads is a measurable share of a server's CPU (docs/benchmarks.md).
// Deadlines and Close work as with c.Read; errors from the socket are returned as they are, not
// wrapped in a *net.OpError.
func SocketReader(c net.Conn) io.Reader {
	if rc, ok := c.(*replayConn); ok {
		if r := newRawReader(rc.Conn); r != nil {
			rc.src = r
		}
		return rc
	}
	if r := newRawReader(c); r != nil {
		return r
	}
	return c
}

// rawReader reads one socket through its syscall.RawConn. fn is bound once, so a read allocates
// nothing.
type rawReader struct {
	rc  syscall.RawConn
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func newRawReader(c net.Conn) *rawReader {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawReader{rc: rc}
	r.fn = r.read
	return r
}

func (r *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err = p, 0, nil
	err := r.rc.Read(r.fn)
	r.p = nil
	if err != nil {
		return 0, err // closed, or past the read deadline
	}
	return r.n, r.err
}

// read is one read(2) of the non-blocking socket; false asks RawConn.Read to wait for data.
func (r *rawReader) read(fd uintptr) bool {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)))
		switch errno {
		case 0:
			r.n = int(n)
			if n == 0 {
				r.err = io.EOF
			}
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.err = errno
			return true
		}
	}
}
