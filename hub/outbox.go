package hub

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"natter/internal/sock"
)

// Defaults for an Outbox, documented together because they trade memory against tolerance of slow
// readers.
const (
	// DefaultQueueBytes bounds what may wait in one connection's queue. A subscriber over it is
	// disconnected as slow rather than slowing its room; it resumes with `after` and loses nothing.
	DefaultQueueBytes = 1 << 20
	// DefaultWriteWait bounds one write to the socket: a peer that accepts nothing for this long is
	// dead or hopelessly slow. Writes carry no deadline of their own (setting one costs a timer
	// update per write); CloseIfStuck, called by a periodic sweep, enforces it.
	DefaultWriteWait = 10 * time.Second
	// closeGrace bounds the final write (a close frame) and a write in flight when a slow
	// connection is dropped.
	closeGrace = time.Second
	// coalesceMaxBytes ends a coalescing wait early: a queue this large already makes one
	// efficient write.
	coalesceMaxBytes = 64 << 10
)

// Outbox is one connection's output: a byte-bounded queue, written by a flush worker with one
// writev of everything queued (see flusher.go). A connection gets a goroutine of its own only
// while its peer is too slow to take a write at once, so an idle or prompt connection costs no
// goroutine and no buffer here.
type Outbox struct {
	// SlowFinal is written before closing when the queue overflows: a WebSocket close frame with
	// code 4008 "slow", or nothing for SSE (the stream just ends). Set it before first use.
	SlowFinal []byte
	// Coalesce is the shortest time between two writes to the connection. Frames queued sooner
	// wait and go out together in one writev: under a fast stream of messages that turns one
	// system call per message into one per interval, at the cost of at most Coalesce of latency;
	// a connection that gets a message now and then is written to at once. Zero: no waiting.
	Coalesce time.Duration

	conn    net.Conn
	raw     syscall.RawConn // nil if conn is no socket: writes then run in a goroutine
	limit   int
	onClose func()

	mu       sync.Mutex
	drained  chan struct{} // made by a waiting SendWait, closed when the queue drains or closes
	q        *queueBuf     // the queued frames; nil while none
	queued   int
	writing  bool   // a write is scheduled or running: waiting in the wheel, in the workers' queue, or writing
	delayed  bool   // the scheduled write is a coalescing wait in the wheel
	urgent   bool   // something queued must not wait for coalescing (SendNow)
	wheelSeq uint32 // numbers coalescing waits, so a wait cut short is ignored when it ends
	closed   bool
	final    []byte // written after the queue, then the connection is closed

	lastWrite  atomic.Int64  // unix nanoseconds of the last successful write, for keepalives
	writeStart atomic.Int64  // unix nanoseconds when a blocking write began; 0 when none
	lastFlush  atomic.Int64  // unix nanoseconds of the last write's end, for Coalesce; 0 before any
	stopping   bool          // shutdown has begun
	finished   bool          // the connection is closed
	done       chan struct{} // made by the first Done call: most connections never need one
}

// NewOutbox wraps conn. limit <= 0 means DefaultQueueBytes. onClose, if set, runs once when the
// outbox closes for any reason (write error, slow, Close).
func NewOutbox(conn net.Conn, limit int, onClose func()) *Outbox {
	if limit <= 0 {
		limit = DefaultQueueBytes
	}
	o := &Outbox{conn: conn, raw: sock.Raw(conn), limit: limit, onClose: onClose}
	o.lastWrite.Store(time.Now().UnixNano())
	return o
}

// Send queues b without blocking. It reports false if the queue would exceed its bound (the caller
// then closes the connection as slow) or the outbox is closed. b must not be modified afterwards:
// the same bytes are shared by every subscriber.
func (o *Outbox) Send(b []byte) bool { return o.send(b, false) }

// SendNow queues b like Send but writes it without the coalescing wait, together with whatever
// is queued: for answers a client is waiting on (acks, errors), whose delay would slow every
// sender that waits for its ack.
func (o *Outbox) SendNow(b []byte) bool { return o.send(b, true) }

func (o *Outbox) send(b []byte, urgent bool) bool {
	o.mu.Lock()
	if o.closed || o.final != nil || o.queued+len(b) > o.limit {
		o.mu.Unlock()
		return false
	}
	o.enqueueLocked(b)
	o.urgent = o.urgent || urgent
	kick := o.kickLocked()
	o.mu.Unlock()
	if kick {
		dispatch(flushJob{o: o})
	}
	return true
}

// SendWait queues b, waiting while the queue is over half its bound. It is for backlog replay,
// which is paced by the client's reading speed instead of counting as slowness.
func (o *Outbox) SendWait(ctx context.Context, b []byte) error {
	o.mu.Lock()
	for !o.closed && o.final == nil && o.queued > 0 && o.queued+len(b) > o.limit/2 {
		if o.drained == nil {
			o.drained = make(chan struct{})
		}
		drained := o.drained
		o.mu.Unlock()
		select {
		case <-drained:
		case <-ctx.Done():
			return ctx.Err()
		}
		o.mu.Lock()
	}
	if o.closed || o.final != nil {
		o.mu.Unlock()
		return net.ErrClosed
	}
	o.enqueueLocked(b)
	kick := o.kickLocked()
	o.mu.Unlock()
	if kick {
		dispatch(flushJob{o: o})
	}
	return nil
}

func (o *Outbox) enqueueLocked(b []byte) {
	if o.q == nil {
		o.q = queuePool.Get().(*queueBuf)
	}
	o.q.b = append(o.q.b, b)
	o.queued += len(b)
}

// releaseQueueLocked returns the (empty) queue's array to the pool: an idle connection keeps none.
func (o *Outbox) releaseQueueLocked() {
	if o.q == nil {
		return
	}
	clear(o.q.b)
	o.q.b = o.q.b[:0]
	if cap(o.q.b) <= maxPooledQueue {
		queuePool.Put(o.q)
	}
	o.q = nil
}

func (o *Outbox) pending() int {
	if o.q == nil {
		return 0
	}
	return len(o.q.b)
}

// kickLocked starts a write for what was just queued, unless one is already on its way. It reports
// whether the caller must dispatch the outbox to a flush worker once it has unlocked.
func (o *Outbox) kickLocked() bool {
	if o.writing {
		// A coalescing wait ends early for an answer a client waits on, for a close, and once
		// the queue is big enough to make one efficient write on its own (waiting longer would
		// only let a busy room push a prompt reader over its bound).
		if o.delayed && (o.urgent || o.final != nil || o.queued >= coalesceMaxBytes) {
			o.delayed = false // the wheel's entry is now stale
			return true
		}
		return false
	}
	o.writing = true
	if o.Coalesce > 0 && !o.urgent && o.final == nil && o.queued < coalesceMaxBytes {
		if wait := o.Coalesce - time.Duration(time.Now().UnixNano()-o.lastFlush.Load()); wait > 0 {
			o.delayLocked(wait)
			return false
		}
	}
	return true
}

// delayLocked puts the outbox's next write in the coalescing wheel.
func (o *Outbox) delayLocked(wait time.Duration) {
	o.delayed = true
	o.wheelSeq++
	if o.wheelSeq == 0 {
		o.wheelSeq = 1
	}
	wheel.add(flushJob{o: o, seq: o.wheelSeq}, wait)
}

// CloseWith drops anything still queued if drop is set, writes final (e.g. a WebSocket close frame)
// and closes the connection. It does not block.
func (o *Outbox) CloseWith(final []byte, drop bool) { o.closeWith(final, drop) }

// closeWith is CloseWith, reporting whether this call began the close.
func (o *Outbox) closeWith(final []byte, drop bool) bool {
	o.mu.Lock()
	if o.closed || o.final != nil {
		o.mu.Unlock()
		return false
	}
	if final == nil {
		final = []byte{}
	}
	o.final = final
	if drop {
		o.releaseQueueLocked()
		o.queued = 0
		if o.writing && !o.delayed {
			// A write may be stuck on a peer that reads nothing: give it a moment to finish,
			// so the final frame can follow it, rather than the full write timeout.
			o.conn.SetWriteDeadline(time.Now().Add(closeGrace))
		}
	}
	kick := o.kickLocked()
	o.wakeSendersLocked()
	o.mu.Unlock()
	if kick {
		dispatch(flushJob{o: o})
	}
	return true
}

// wakeSendersLocked releases SendWait callers to look at the queue again.
func (o *Outbox) wakeSendersLocked() {
	if o.drained != nil {
		close(o.drained)
		o.drained = nil
	}
}

// CloseIfStuck closes the connection if one write has been blocked for longer than the write
// wait: the peer stopped reading (its receive window is full) or vanished.
func (o *Outbox) CloseIfStuck(now time.Time) {
	if start := o.writeStart.Load(); start != 0 && now.UnixNano()-start > int64(DefaultWriteWait) {
		o.Close()
	}
}

// CloseSlow ends a connection that could not keep up: its queue is dropped, SlowFinal is sent.
func (o *Outbox) CloseSlow() {
	if o.closeWith(o.SlowFinal, true) {
		slowCloses.Add(1)
	}
}

// slowCloses counts the connections of this process closed as slow (SlowCloses).
var slowCloses atomic.Int64

// SlowCloses returns how many connections this process has closed for not keeping up (CloseSlow).
func SlowCloses() int64 { return slowCloses.Load() }

// Close closes the connection at once, dropping the queue.
func (o *Outbox) Close() { o.shutdown() }

// Done is closed once the outbox has closed its connection.
func (o *Outbox) Done() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done == nil {
		o.done = make(chan struct{})
		if o.finished {
			close(o.done)
		}
	}
	return o.done
}

// Closed reports whether the outbox is closing or closed.
func (o *Outbox) Closed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed || o.final != nil
}

// IdleSince returns when the connection was last written to.
func (o *Outbox) IdleSince() time.Time { return time.Unix(0, o.lastWrite.Load()) }

func (o *Outbox) shutdown() {
	o.mu.Lock()
	if o.stopping {
		o.mu.Unlock()
		return
	}
	o.stopping, o.closed = true, true
	o.releaseQueueLocked()
	o.queued = 0
	o.wakeSendersLocked()
	o.mu.Unlock()
	// Clean up (unsubscribe, presence) before the peer can see the close, so that whoever
	// observes the hang-up also observes its consequences.
	if o.onClose != nil {
		o.onClose()
	}
	o.conn.Close()
	o.mu.Lock()
	o.finished = true
	if o.done != nil {
		close(o.done)
	}
	o.mu.Unlock()
}

// takeLocked moves the queued frames into bufs (reusing its array) and empties the queue.
func (o *Outbox) takeLocked(bufs [][]byte) [][]byte {
	bufs = append(bufs[:0], o.q.b...)
	clear(o.q.b)
	o.q.b = o.q.b[:0]
	o.queued = 0
	o.urgent = false
	o.wakeSendersLocked()
	return bufs
}

// noteWrite records a completed write.
func (o *Outbox) noteWrite() {
	now := time.Now().UnixNano()
	o.lastWrite.Store(now)
	o.lastFlush.Store(now)
}

// flush runs on a flush worker (flusher.go). It writes the queue without blocking until it is
// empty, or until the rest must wait for the coalescing interval (back in the wheel) or for a slow
// peer (in a goroutine of the connection's own). It never blocks and never dispatches, so the
// workers cannot stall each other or whoever fills their queue.
func (o *Outbox) flush(w *flushWriter, seq uint32) {
	o.mu.Lock()
	if seq != 0 && (!o.delayed || o.wheelSeq != seq) {
		o.mu.Unlock() // a wait that was cut short: its write happened, or is on its way
		return
	}
	o.delayed = false
	for {
		if final, done := o.doneLocked(); done {
			if final != nil {
				go o.finish(final)
			}
			return
		}
		w.bufs = o.takeLocked(w.bufs)
		o.mu.Unlock()

		if o.raw == nil {
			go o.writeRest(unwritten(w.bufs, 0))
			clear(w.bufs)
			return
		}
		w.n, w.err = 0, nil
		err := o.raw.Write(w.fn)
		if err == nil {
			err = w.err
		}
		if err != nil && wouldBlock(err) {
			go o.writeRest(unwritten(w.bufs, w.n))
			clear(w.bufs)
			return
		}
		clear(w.bufs)
		if err != nil {
			go o.shutdown() // not here: its clean-up may wait for whoever fills the workers' queue
			return
		}
		o.noteWrite()

		o.mu.Lock()
		if o.pending() > 0 && !o.closed && !o.urgent && o.final == nil && o.Coalesce > 0 && o.queued < coalesceMaxBytes {
			o.delayLocked(o.Coalesce) // queued during the write: it waits like any other
			o.mu.Unlock()
			return
		}
	}
}

// doneLocked is the writer's check, with o.mu held, for the end of its work: if the outbox is
// closed or has nothing queued, it releases the outbox, unlocks, and reports done, with the
// final frame to write before closing if there is one. Otherwise it returns with o.mu held.
func (o *Outbox) doneLocked() (final []byte, done bool) {
	if !o.closed && o.pending() > 0 {
		return nil, false
	}
	if !o.closed {
		o.releaseQueueLocked()
		if o.final != nil {
			final = o.final
			o.mu.Unlock()
			return final, true
		}
	}
	o.writing = false
	o.mu.Unlock()
	return nil, true
}

// finish writes the final frame and closes the connection.
func (o *Outbox) finish(final []byte) {
	if len(final) > 0 {
		o.conn.SetWriteDeadline(time.Now().Add(closeGrace))
		o.conn.Write(final)
	}
	o.shutdown()
}

// writeRest is the connection's own writer while its peer is slow: it finishes a write the
// socket could not take at once, blocking, then drains the queue the same way and exits when it
// is empty.
func (o *Outbox) writeRest(rest net.Buffers) {
	for {
		o.writeStart.Store(time.Now().UnixNano())
		_, err := rest.WriteTo(o.conn)
		o.writeStart.Store(0)
		if err != nil {
			o.shutdown()
			return
		}
		o.noteWrite()

		o.mu.Lock()
		if final, done := o.doneLocked(); done {
			if final != nil {
				o.finish(final)
			}
			return
		}
		rest = o.takeLocked(nil)
		o.mu.Unlock()
	}
}
