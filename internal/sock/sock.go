// Package sock makes the system calls natter's hot paths make on non-blocking sockets: writev
// for the hub's flush workers and read for the load generator and the WebSocket client.
//
// They are raw system calls: the Go runtime is not told that the goroutine entered the kernel.
// That is safe because a call on a non-blocking socket never waits (a reader with nothing to
// read parks on the runtime's poller as usual, through syscall.RawConn), and it is cheaper: told
// of a system call, the runtime's monitor may hand the goroutine's P to another thread while the
// call runs, and with thousands of short calls a second that churn of threads was a tenth of the
// server's CPU in a fan-out (docs/benchmarks.md).
//
// On systems that are not Unix (Windows) Raw returns nil, and every caller uses the net.Conn's
// own methods instead.
package sock
