package hub

import (
	"net"
	"runtime"
	"slices"
	"sync"
	"time"

	"natter/internal/sock"
)

// The flusher writes connections' queues from a few long-lived worker goroutines, one per CPU.
// A due outbox is handed to a worker, which writes everything queued with one non-blocking
// writev on the raw socket. Only when the socket cannot take it all (the peer reads slowly) does
// the connection get a goroutine of its own, which waits for the peer with a blocking write.
//
// This replaced a goroutine per write and a timer per coalescing wait: in a fan-out to
// thousands of connections, creating, scheduling and retiring those goroutines and timers cost
// a measurable share of the server's CPU beside the writes themselves (docs/benchmarks.md).
//
// Coalescing waits are kept by one wheel: outboxes whose next write is due at the same
// millisecond share a slot, and one timer fires for the earliest slot.

// flushJob asks a worker to write one outbox's queue. seq is non-zero when the job is the end of
// a coalescing wait; the outbox ignores it if that wait was cut short (and perhaps another begun)
// since.
type flushJob struct {
	o   *Outbox
	seq uint32
}

var (
	flushOnce sync.Once
	flushCh   chan flushJob
	wheel     coalesceWheel
)

// flushQueue bounds jobs waiting for a worker. Whoever dispatches blocks while it is full, which
// paces a huge fan-out to the speed of the workers; workers themselves never dispatch.
const flushQueue = 4096

// dispatch hands o to a flush worker. The caller must not hold o.mu (a full queue blocks).
func dispatch(j flushJob) {
	flushOnce.Do(func() {
		flushCh = make(chan flushJob, flushQueue)
		for range runtime.GOMAXPROCS(0) {
			go flushWorker()
		}
	})
	flushCh <- j
}

func flushWorker() {
	w := &flushWriter{}
	w.fn = w.write
	for j := range flushCh {
		j.o.flush(w, j.seq)
	}
}

// flushWriter is one worker's reusable state for a non-blocking writev through a
// syscall.RawConn (fn is bound once, so a write allocates nothing).
type flushWriter struct {
	bufs [][]byte
	iov  []sock.Iovec // scratch for writev
	n    int
	err  error
	fn   func(fd uintptr) bool
}

func (w *flushWriter) write(fd uintptr) bool {
	w.n, w.err = sock.Writev(int(fd), w.bufs, &w.iov)
	return true // never wait for the socket here; a connection's own goroutine does that
}

// wouldBlock reports whether a non-blocking write failed only for want of room (or a signal):
// the rest is for a blocking writer to finish.
func wouldBlock(err error) bool {
	return sock.WouldBlock(err)
}

// unwritten returns what is left of bufs after n bytes, in a new slice.
func unwritten(bufs [][]byte, n int) net.Buffers {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	rest := slices.Clone(bufs)
	if len(rest) > 0 {
		rest[0] = rest[0][n:]
	}
	return rest
}

// queueBuf holds a connection's queued frames while it has any; it returns to a pool when the
// queue empties, so idle connections hold no array and busy ones do not allocate one per write.
type queueBuf struct{ b [][]byte }

var queuePool = sync.Pool{New: func() any { return new(queueBuf) }}

// maxPooledQueue keeps queues that grew huge (a slow reader's backlog) out of the pool.
const maxPooledQueue = 1024

// coalesceWheel holds outboxes waiting out their coalescing interval, in slots of one
// millisecond, with one timer armed for the earliest slot.
type coalesceWheel struct {
	mu    sync.Mutex
	base  time.Time // slot numbers count milliseconds since base (monotonic)
	slots []wheelSlot
	timer *time.Timer
	armed int64 // the slot the timer fires for; 0 when disarmed
}

type wheelSlot struct {
	at   int64
	jobs []flushJob
}

// add schedules j to be dispatched after wait.
func (w *coalesceWheel) add(j flushJob, wait time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.base.IsZero() {
		w.base = time.Now()
		w.timer = time.AfterFunc(time.Hour, w.fire)
		w.timer.Stop()
	}
	at := int64((time.Since(w.base)+wait)/time.Millisecond) + 1 // never early
	i, found := slices.BinarySearchFunc(w.slots, at, func(s wheelSlot, at int64) int {
		switch {
		case s.at < at:
			return -1
		case s.at > at:
			return 1
		}
		return 0
	})
	if !found {
		w.slots = slices.Insert(w.slots, i, wheelSlot{at: at})
	}
	w.slots[i].jobs = append(w.slots[i].jobs, j)
	if w.armed == 0 || at < w.armed {
		w.armLocked(at)
	}
}

func (w *coalesceWheel) armLocked(at int64) {
	w.armed = at
	w.timer.Reset(time.Duration(at)*time.Millisecond - time.Since(w.base))
}

// fire dispatches every job whose slot has come, then arms the timer for the next slot.
func (w *coalesceWheel) fire() {
	w.mu.Lock()
	now := int64(time.Since(w.base) / time.Millisecond)
	var due []flushJob
	k := 0
	for k < len(w.slots) && w.slots[k].at <= now {
		due = append(due, w.slots[k].jobs...)
		k++
	}
	w.slots = slices.Delete(w.slots, 0, k)
	w.armed = 0
	if len(w.slots) > 0 {
		w.armLocked(w.slots[0].at)
	}
	w.mu.Unlock()
	for _, j := range due {
		dispatch(j)
	}
}
