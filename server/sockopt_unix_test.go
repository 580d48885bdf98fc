//go:build unix

package server_test

import "syscall"

// shrinkReceive gives a client socket a 4 KiB receive buffer and 1 KiB segments (dialSlowWS).
func shrinkReceive(fd uintptr) error {
	if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096); err != nil {
		return err
	}
	return syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 1024)
}
