package hub

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
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

// Outbox is one connection's output: a byte-bounded queue drained by a writer goroutine that runs
// only while there is something to write, and writes everything queued in one writev. An idle
// connection therefore costs no goroutine and no buffer here.
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
	limit   int
	onClose func()

	mu      sync.Mutex
	drained chan struct{} // made by a waiting SendWait, closed when the queue drains or closes
	delayed *time.Timer   // the coalescing wait before the next write, while one is pending
	queue   [][]byte
	queued  int
	writing bool
	closed  bool
	final   []byte // written after the queue, then the connection is closed

	lastWrite  atomic.Int64  // unix nanoseconds of the last successful write, for keepalives
	writeStart atomic.Int64  // unix nanoseconds when the write in progress began; 0 when none
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
	o := &Outbox{conn: conn, limit: limit, onClose: onClose}
	o.lastWrite.Store(time.Now().UnixNano())
	return o
}

// Send queues b without blocking. It reports false if the queue would exceed its bound (the caller
// then closes the connection as slow) or the outbox is closed. b must not be modified afterwards:
// the same bytes are shared by every subscriber.
func (o *Outbox) Send(b []byte) bool {
	o.mu.Lock()
	if o.closed || o.final != nil {
		o.mu.Unlock()
		return false
	}
	if o.queued+len(b) > o.limit {
		o.mu.Unlock()
		return false
	}
	o.enqueueLocked(b)
	o.mu.Unlock()
	return true
}

// SendNow queues b like Send but writes it without the coalescing wait, together with whatever
// is queued: for answers a client is waiting on (acks, errors), whose delay would slow every
// sender that waits for its ack.
func (o *Outbox) SendNow(b []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.final != nil || o.queued+len(b) > o.limit {
		return false
	}
	o.queue = append(o.queue, b)
	o.queued += len(b)
	switch {
	case !o.writing:
		o.writing = true
		go o.writeLoop()
	case o.delayed != nil && o.delayed.Stop():
		o.delayed = nil
		go o.writeLoop()
	}
	return true
}

// SendWait queues b, waiting while the queue is over half its bound. It is for backlog replay,
// which is paced by the client's reading speed instead of counting as slowness.
func (o *Outbox) SendWait(ctx context.Context, b []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for !o.closed && o.final == nil && o.queued > 0 && o.queued+len(b) > o.limit/2 {
		if o.drained == nil {
			o.drained = make(chan struct{})
		}
		drained := o.drained
		o.mu.Unlock()
		select {
		case <-drained:
		case <-ctx.Done():
			o.mu.Lock()
			return ctx.Err()
		}
		o.mu.Lock()
	}
	if o.closed || o.final != nil {
		return net.ErrClosed
	}
	o.enqueueLocked(b)
	return nil
}

func (o *Outbox) enqueueLocked(b []byte) {
	o.queue = append(o.queue, b)
	o.queued += len(b)
	switch {
	case !o.writing:
		o.writing = true
		o.startWriter()
	case o.delayed != nil && o.queued >= coalesceMaxBytes && o.delayed.Stop():
		// Enough to fill a write already: waiting longer would only let a busy room push a
		// prompt reader over its queue bound.
		o.delayed = nil
		go o.writeLoop()
	}
}

// startWriter runs the writer now, or once Coalesce has passed since the last write.
func (o *Outbox) startWriter() {
	if o.Coalesce > 0 {
		if wait := o.Coalesce - time.Duration(time.Now().UnixNano()-o.lastFlush.Load()); wait > 0 {
			o.delayed = time.AfterFunc(wait, o.writeLoop)
			return
		}
	}
	go o.writeLoop()
}

// CloseWith drops anything still queued if drop is set, writes final (e.g. a WebSocket close frame)
// and closes the connection. It does not block.
func (o *Outbox) CloseWith(final []byte, drop bool) {
	o.mu.Lock()
	if o.closed || o.final != nil {
		o.mu.Unlock()
		return
	}
	if final == nil {
		final = []byte{}
	}
	o.final = final
	if drop {
		o.queue, o.queued = nil, 0
		if o.writing {
			// A write may be stuck on a peer that reads nothing: give it a moment to finish,
			// so the final frame can follow it, rather than the full write timeout.
			o.conn.SetWriteDeadline(time.Now().Add(closeGrace))
		}
	}
	if !o.writing {
		o.writing = true
		go o.writeLoop()
	}
	o.wakeSendersLocked()
	o.mu.Unlock()
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
func (o *Outbox) CloseSlow() { o.CloseWith(o.SlowFinal, true) }

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
	o.queue, o.queued = nil, 0
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

// writeLoop drains the queue; it exits when the queue is empty, so idle connections hold no
// goroutine.
func (o *Outbox) writeLoop() {
	var bufs net.Buffers
	for {
		o.mu.Lock()
		o.delayed = nil // this is the writer the timer started, or the one that replaced it
		if o.closed {
			o.writing = false
			o.mu.Unlock()
			return
		}
		if len(o.queue) == 0 {
			if o.final != nil {
				final := o.final
				o.mu.Unlock()
				if len(final) > 0 {
					o.conn.SetWriteDeadline(time.Now().Add(closeGrace))
					o.conn.Write(final)
				}
				o.shutdown()
				return
			}
			o.writing = false
			o.queue = nil // an idle connection keeps no array
			o.mu.Unlock()
			return
		}
		bufs = append(bufs[:0], o.queue...)
		clear(o.queue)
		o.queue = o.queue[:0]
		o.queued = 0
		o.wakeSendersLocked()
		o.mu.Unlock()

		o.writeStart.Store(time.Now().UnixNano())
		base := bufs
		_, err := bufs.WriteTo(o.conn) // consumes bufs; base keeps the array for reuse
		clear(base)
		bufs = base[:0]
		o.writeStart.Store(0)
		if err != nil {
			o.shutdown()
			return
		}
		now := time.Now().UnixNano()
		o.lastWrite.Store(now)
		o.lastFlush.Store(now)
	}
}
