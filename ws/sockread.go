package ws

import (
	"io"
	"net"

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
