// Package loopback gives tests real TCP connections on the loopback interface.
package loopback

import (
	"net"
	"testing"
)

// Pair returns both ends of a new loopback TCP connection; both are closed at the end of the
// test.
func Pair(t testing.TB) (accepted, dialed net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	dialed, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted = <-acc
	if accepted == nil {
		dialed.Close()
		t.Fatal("loopback: accept failed")
	}
	t.Cleanup(func() { accepted.Close(); dialed.Close() })
	return accepted, dialed
}
