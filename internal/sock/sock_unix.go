//go:build unix

package sock

import (
	"errors"
	"io"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Iovec is one buffer of a writev.
type Iovec = unix.Iovec

// WouldBlock reports whether a non-blocking call failed only for want of room or data, or a
// signal: trying again later may succeed.
func WouldBlock(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR)
}

// Raw returns c's raw socket, or nil if it has none (net.Pipe, TLS, test doubles).
func Raw(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// IovMax is the most buffers one writev takes on Linux.
const IovMax = 1024

// Writev writes bufs to the non-blocking socket fd until it has written them all or the socket
// takes no more. It returns how many bytes were written; err is unix.EAGAIN if the socket is
// full. iov is scratch space, kept by the caller so that a write allocates nothing.
func Writev(fd int, bufs [][]byte, iov *[]Iovec) (int, error) {
	total := 0
	for len(bufs) > 0 {
		chunk := bufs[:min(len(bufs), IovMax)]
		want := 0
		v := (*iov)[:0]
		for _, b := range chunk {
			if len(b) == 0 {
				continue
			}
			want += len(b)
			e := unix.Iovec{Base: &b[0]}
			e.SetLen(len(b))
			v = append(v, e)
		}
		*iov = v
		var n int
		var err error
		if len(v) > 0 {
			r, _, errno := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
			n = int(r)
			if errno != 0 {
				n, err = 0, errno
			}
			clear(v) // drop the references to the written buffers
		}
		if n > 0 {
			total += n
		}
		if err != nil {
			return total, err
		}
		if n < want {
			return total, unix.EAGAIN
		}
		bufs = bufs[len(chunk):]
	}
	return total, nil
}

// Reader reads one socket with raw read(2) calls. Deadlines and Close work as with the
// net.Conn's Read; errors from the socket are returned as they are, not wrapped in a
// *net.OpError. A Reader allocates nothing per read.
type Reader struct {
	rc  syscall.RawConn
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // r.read, bound once
}

// NewReader returns a Reader of c, or nil if c has no raw socket.
func NewReader(c net.Conn) *Reader {
	rc := Raw(c)
	if rc == nil {
		return nil
	}
	r := &Reader{rc: rc}
	r.fn = r.read
	return r
}

func (r *Reader) Read(p []byte) (int, error) {
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
func (r *Reader) read(fd uintptr) bool {
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

// ReadEach reads the non-blocking socket rc with raw read(2) calls until got returns an error,
// the peer closes (io.EOF) or a read fails. Each read goes into the slice space returns, which
// must not be empty, and got is told how many bytes it received. wait, if not nil, runs each time
// ReadEach is about to wait for the socket: a reader can let go of its buffer there, so that an
// idle connection holds none.
//
// A read that returns less than it was offered found the socket empty, so the next read waits
// for the runtime's poller first: a socket that gets one message at a time costs one read(2) per
// message instead of two, the second of which would only fail with EAGAIN. That is safe within
// one RawConn.Read: the poller remembers a readiness event that comes in while nobody waits (only
// a new RawConn.Read forgets it, which is why this cannot be done with an io.Reader).
func ReadEach(rc syscall.RawConn, space func() []byte, got func(n int) error, wait func()) error {
	return ReadWhile(rc, space, got, func() bool {
		if wait != nil {
			wait()
		}
		return true
	})
}

// ReadWhile is ReadEach with a way out: each time the socket is found empty, keep says whether
// to wait for more (true) or to return nil at once (false), leaving the socket to be waited for
// some other way (package park).
func ReadWhile(rc syscall.RawConn, space func() []byte, got func(n int) error, keep func() bool) error {
	var err error
	rerr := rc.Read(func(fd uintptr) bool {
		var again bool
		if again, err = readSome(fd, space, got); !again {
			return true // err says why
		}
		return !keep() // false: wait for the runtime's poller, then read again
	})
	if rerr != nil {
		return rerr // closed, or past the read deadline
	}
	return err
}

// ReadReady is ReadEach without the waiting: it reads rc until a read finds the socket empty or
// comes back short, and then returns nil. Its caller waits for more some other way (package
// park). Errors are ReadEach's.
func ReadReady(rc syscall.RawConn, space func() []byte, got func(n int) error) error {
	var err error
	rerr := rc.Read(func(fd uintptr) bool {
		_, err = readSome(fd, space, got)
		return true
	})
	if rerr != nil {
		return rerr
	}
	return err
}

// readSome reads the non-blocking socket fd into space's slices and hands each read to got, until
// a read finds it empty or comes back short (again: the socket may have more later) or fails,
// finds the peer gone (io.EOF) or got fails (err).
func readSome(fd uintptr, space func() []byte, got func(n int) error) (again bool, err error) {
	for {
		p := space()
		n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return true, nil
		default:
			return false, errno
		}
		if n == 0 {
			return false, io.EOF
		}
		if err := got(int(n)); err != nil {
			return false, err
		}
		if int(n) < len(p) {
			return true, nil
		}
	}
}

// WaitReadable blocks until the socket rc has bytes to read, its peer has hung up, or it has
// failed, without reading anything; the goroutine waits in the runtime's poller meanwhile. It
// returns the socket's read deadline error (os.ErrDeadlineExceeded) or net.ErrClosed if one of
// those comes first.
func WaitReadable(rc syscall.RawConn) error {
	return rc.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if err != unix.EINTR {
				return err != unix.EAGAIN
			}
		}
	})
}
