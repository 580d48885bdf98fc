//go:build !linux

package bench

import (
	"errors"
	"net"
)

// Without epoll every subscriber reads its own socket (see epoll_linux.go).
type pollLoop struct{}

type pollConn struct {
	fd    int
	fr    *frameReader
	ended chan error
}

var errNoPollLoop = errors.New("no read loop on this system")

func newPollLoop() (*pollLoop, error)      { return nil, errNoPollLoop }
func (l *pollLoop) add(*pollConn) error    { return errNoPollLoop }
func (l *pollLoop) close()                 {}
func (pc *pollConn) stop()                 {}
func detach(net.Conn) (int, []byte, error) { return -1, nil, errNoPollLoop }
func writeFrame(int, []byte) error         { return errNoPollLoop }
func closeFD(int)                          {}
