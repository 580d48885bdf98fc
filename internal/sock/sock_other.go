//go:build !unix

package sock

import (
	"errors"
	"net"
	"syscall"
)

// Raw returns nil here: natter's raw socket calls are for Unix, and every caller falls back to
// the net.Conn's own methods without them.
func Raw(c net.Conn) syscall.RawConn { return nil }

// IovMax is the most buffers one writev takes.
const IovMax = 1024

// Iovec is one buffer of a writev; unused here.
type Iovec struct{}

// WouldBlock reports false: nothing here is non-blocking.
func WouldBlock(err error) bool { return false }

// Writev is not available here.
func Writev(fd int, bufs [][]byte, iov *[]Iovec) (int, error) { return 0, errors.ErrUnsupported }

// Reader is not available here: NewReader returns nil.
type Reader struct{}

// NewReader returns nil here.
func NewReader(c net.Conn) *Reader { return nil }

func (r *Reader) Read(p []byte) (int, error) { return 0, errors.ErrUnsupported }

// ReadEach is not available here (Raw returns nil, so no caller gets this far).
func ReadEach(rc syscall.RawConn, space func() []byte, got func(n int) error, wait func()) error {
	return errors.ErrUnsupported
}

// ReadWhile is not available here.
func ReadWhile(rc syscall.RawConn, space func() []byte, got func(n int) error, keep func() bool) error {
	return errors.ErrUnsupported
}

// ReadReady is not available here.
func ReadReady(rc syscall.RawConn, space func() []byte, got func(n int) error) error {
	return errors.ErrUnsupported
}

// WaitReadable is not available here.
func WaitReadable(rc syscall.RawConn) error { return errors.ErrUnsupported }
