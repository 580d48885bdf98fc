// Package park waits for sockets to have something to read without a goroutine each.
//
// A goroutine blocked in a read keeps its stack (2 KiB at least), and the garbage collector's
// pacing counts stacks too, so every waiting reader costs about twice that in resident memory.
// An idle WebSocket only waits: a Waiter lets its reader goroutine end, and starts a new one when
// the socket becomes readable. One epoll instance and one goroutine blocked in epoll_wait serve
// the whole process (Linux; elsewhere Supported is false and readers keep their goroutines).
package park
