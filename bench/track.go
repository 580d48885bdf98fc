package bench

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// tracker is one subscriber's exact account of the seqs it received, in the window
// (base, base+span] that its room's publisher fills. It is owned by the subscriber's goroutine.
//
// Definitions (also in docs/benchmarks.md):
//   - a delivery is a message frame of the room with a seq in the window;
//   - duplicated counts deliveries of a seq this subscriber had already received, on any of its
//     connections;
//   - out of order counts deliveries whose seq is lower than the highest seq delivered before on the
//     same connection; a (re)subscribe with after=S starts that connection's highest at S, so the
//     replay after a reconnect is judged like live traffic;
//   - foreign counts message frames outside the window (another writer in a shared room).
type tracker struct {
	base   int64
	span   int64
	seen   []uint64 // bit i: seq base+1+i received
	contig int64    // every seq in (base, contig] was received
	high   int64    // highest seq delivered on the current connection

	deliveries, unique, dups, outOfOrder, foreign int64
}

func newTracker(base, span int64) tracker {
	return tracker{base: base, span: span, seen: make([]uint64, (span+63)/64), contig: base, high: base}
}

// resume starts a new connection, which subscribes with after=t.contig.
func (t *tracker) resume() int64 {
	t.high = t.contig
	return t.contig
}

// add accounts for one delivery of seq and reports whether it was the first of that seq.
func (t *tracker) add(seq int64) bool {
	if seq <= t.base || seq > t.base+t.span {
		t.foreign++
		return false
	}
	t.deliveries++
	if seq < t.high {
		t.outOfOrder++
	} else {
		t.high = seq
	}
	i := seq - t.base - 1
	w, b := i/64, uint64(1)<<(i%64)
	if t.seen[w]&b != 0 {
		t.dups++
		return false
	}
	t.seen[w] |= b
	t.unique++
	for t.contig < t.base+t.span {
		j := t.contig - t.base
		if t.seen[j/64]&(1<<(j%64)) == 0 {
			break
		}
		t.contig++
	}
	return true
}

// missing counts the seqs of acked that t never received.
// missingBelowHighest counts acked seqs not received that lie below the highest seq received:
// gaps, as opposed to a tail still on its way.
func (t *tracker) missingBelowHighest(acked []uint64) int64 {
	top := -1 // index of the highest bit seen
	for i := len(t.seen) - 1; i >= 0 && top < 0; i-- {
		if w := t.seen[i]; w != 0 {
			top = i*64 + 63 - bits.LeadingZeros64(w)
		}
	}
	var n int64
	for i := 0; i*64 <= top && i < len(acked); i++ {
		w := acked[i] &^ t.seen[i]
		if hi := top - i*64; hi < 63 {
			w &= (uint64(1) << (hi + 1)) - 1
		}
		n += int64(bits.OnesCount64(w))
	}
	return n
}

func (t *tracker) missing(acked []uint64) int64 {
	var n int64
	for i, w := range acked {
		n += int64(bits.OnesCount64(w &^ t.seen[i]))
	}
	return n
}

// ackLog records which seqs of a room's window were acknowledged to the publishers.
type ackLog struct {
	base, span int64

	mu     sync.Mutex
	acked  []uint64
	count  int64
	dups   int64 // the same seq acknowledged twice: a server bug
	beyond int64 // acks outside the window (a shared room)
}

func newAckLog(base, span int64) *ackLog {
	return &ackLog{base: base, span: span, acked: make([]uint64, (span+63)/64)}
}

func (a *ackLog) add(seq int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if seq <= a.base || seq > a.base+a.span {
		a.beyond++
		return
	}
	i := seq - a.base - 1
	w, b := i/64, uint64(1)<<(i%64)
	if a.acked[w]&b != 0 {
		a.dups++
		return
	}
	a.acked[w] |= b
	a.count++
}

func (a *ackLog) snapshot() ([]uint64, int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]uint64(nil), a.acked...), a.count
}

func (a *ackLog) acks() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.count
}

// counter is an int64 that many goroutines add to without sharing a cache line.
type counter struct {
	shards [16]struct {
		v atomic.Int64
		_ [56]byte
	}
}

func (c *counter) add(shard int, n int64) { c.shards[shard&15].v.Add(n) }

func (c *counter) load() int64 {
	var n int64
	for i := range c.shards {
		n += c.shards[i].v.Load()
	}
	return n
}
