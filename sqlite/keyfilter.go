package sqlite

import (
	"context"
	"math/bits"
	"sync/atomic"
)

// keyFilter is a Bloom filter over the keys in client_keys. A send with a client_id that is not
// in recent memory must be looked up in client_keys, and almost every such lookup finds nothing
// (a retry is rare): the filter answers "certainly not there" for about 99 % of them without a
// query. It has no false negatives as long as every key that enters client_keys is added, which
// the sweep does (runSweep) and the background fill does for what was there at Open.
//
// Its bits are atomic because the fill runs beside the committer; everything else about it is
// the committer's.
type keyFilter struct {
	bits     []atomic.Uint64
	mask     uint64       // bit count - 1 (a power of two)
	capacity int64        // keys it holds at about 1 % false positives
	n        atomic.Int64 // keys added
	ready    atomic.Bool  // every key of client_keys is in: lookups may trust a miss
}

const (
	// filterBitsPerKey and filterHashes give about 1 % false positives at capacity (and 10 % at
	// twice capacity, when a bigger filter is built).
	filterBitsPerKey = 10
	filterHashes     = 5
	// minFilterKeys is the smallest capacity: 1M keys, 1.25 MB.
	minFilterKeys = 1 << 20
	// maxFilterBits caps a filter at 64 MiB (about 54M keys at 1 %); past that its false
	// positives grow, which costs lookups, never answers.
	maxFilterBits = 1 << 29
	// filterPage is how many keys of client_keys one query of the fill reads.
	filterPage = 8192
)

func newKeyFilter(capacity int64) *keyFilter {
	capacity = max(capacity, 64)
	nbits := min(uint64(1)<<bits.Len64(uint64(capacity*filterBitsPerKey-1)), maxFilterBits)
	return &keyFilter{bits: make([]atomic.Uint64, nbits/64), mask: nbits - 1, capacity: capacity}
}

// probes returns the filter's two base hashes of key; key is already a uniform hash (SHA-256).
func probes(key int64) (h1, h2 uint64) {
	h1 = uint64(key)
	h2 = bits.RotateLeft64(h1*0x9E3779B97F4A7C15, 29) | 1
	return h1, h2
}

func (f *keyFilter) add(key int64) {
	h1, h2 := probes(key)
	for i := range uint64(filterHashes) {
		b := (h1 + i*h2) & f.mask
		f.bits[b/64].Or(1 << (b % 64))
	}
	f.n.Add(1)
}

// mayContain reports false only if key was never added.
func (f *keyFilter) mayContain(key int64) bool {
	h1, h2 := probes(key)
	for i := range uint64(filterHashes) {
		b := (h1 + i*h2) & f.mask
		if f.bits[b/64].Load()&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// full reports whether the filter holds so many keys that a bigger one should replace it.
func (f *keyFilter) full() bool { return f.n.Load() >= 2*f.capacity }

// fill adds every key of client_keys to f, a page at a time (each page its own short read, so the
// checkpointer is never held back for long), then marks f ready. Keys that enter client_keys
// meanwhile are added by the sweep, which also adds to a filter being filled (Store.filling).
func (s *Store) fill(ctx context.Context, f *keyFilter) error {
	// The first page starts at the smallest key; each next one after the last key read (more
	// rows with that same key add nothing to a filter).
	q, after := `SELECT key FROM client_keys WHERE key >= ? ORDER BY key LIMIT ?`, int64(-1<<63)
	for {
		rows, err := s.readDB.QueryContext(ctx, q, after, filterPage)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			if err := rows.Scan(&after); err != nil {
				rows.Close()
				return err
			}
			f.add(after)
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n < filterPage {
			break
		}
		q = `SELECT key FROM client_keys WHERE key > ? ORDER BY key LIMIT ?`
	}
	f.ready.Store(true)
	return nil
}

// startFill fills f in the background; once it is complete, lookups use it. The committer (or
// Open, before it starts) is the only caller, and from then on every key the sweep moves goes
// into f as well, so f misses nothing that was added after the fill began reading.
func (s *Store) startFill(f *keyFilter) {
	s.filling.Store(f)
	s.fillWG.Add(1)
	go func() {
		defer s.fillWG.Done()
		if err := s.fill(s.fillCtx, f); err != nil {
			if s.fillCtx.Err() == nil {
				s.log.Warn("sqlite: client_id filter not built; lookups read client_keys", "err", err)
			}
			return
		}
		s.filter.Store(f)
	}()
}

// filterAdd records a key entering client_keys: in the newest filter (complete or being filled)
// and in the one lookups use, if that is an older one.
func (s *Store) filterAdd(key int64) {
	newest := s.filling.Load()
	if newest != nil {
		newest.add(key)
	}
	if f := s.filter.Load(); f != nil && f != newest {
		f.add(key)
	}
}

// growFilter starts a bigger filter once the newest one is complete and over its capacity.
// Committer only, after a commit (so the fill reads every key swept so far).
func (s *Store) growFilter() {
	if f := s.filling.Load(); f != nil && f.ready.Load() && f.full() && f.mask+1 < maxFilterBits {
		s.startFill(newKeyFilter(4 * f.capacity))
	}
}

// mayBeIndexed reports whether client_keys may hold key: false only when a complete filter says
// it does not.
func (s *Store) mayBeIndexed(key int64) bool {
	f := s.filter.Load()
	return f == nil || !f.ready.Load() || f.mayContain(key)
}
