package server_test

import "syscall"

// shrinkReceive gives a client socket a 4 KiB receive buffer (dialSlowWS); Windows has no
// TCP_MAXSEG.
func shrinkReceive(fd uintptr) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
}
