package sqlite

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Idempotency keys.
//
// A send's (room, author, client_id) must find its original message however much later it is
// retried, so every keyed message needs an index entry. A b-tree on random keys costs one scattered
// page per message in every commit (written to the WAL, checksummed, copied again by the
// checkpoint); with the UNIQUE index on messages that was most of the committer's work. So:
//
//   - client_keys holds (key, room, seq), key being 64 bits of SHA-256 of the full key, for every
//     keyed message up to its room's keys_seq;
//   - keyed messages after keys_seq are indexed in memory (recentKeys), which Open rebuilds from
//     the messages table;
//   - the committer moves the memory into client_keys one hash range (bucket) at a time, inside
//     its batches: a bucket's entries go in sorted and share the same few pages, so one full pass
//     (a sweep) writes each page of client_keys about once rather than once per message.
//
// Every lookup checks the batch itself, recentKeys and client_keys, and compares the full key with
// the stored message, so a hash collision costs a read and never a wrong answer.

// Sweep pacing: one bucket moves to client_keys per keyBucketEvery committed messages, so a sweep
// takes keyBuckets*keyBucketEvery messages (131,072). A key waits in memory until the sweep reaches
// its bucket, at most one sweep: about 50 bytes a key, 7 MB when every message has a client_id.
// After a restart the tail since keys_seq (at most two sweeps) is read back and moved by the next
// sweep. A sweep writes each page of client_keys about once (about 160 keys a page), so the index
// costs pages/131,072 page writes per message instead of one.
const (
	keyBuckets     = 256
	keyBucketEvery = 512
	// maxMergesPerBatch bounds the sweep work one batch takes on when it falls behind.
	maxMergesPerBatch = 4
)

// clientKey hashes a full idempotency key; client_keys stores it, so it must never change. The
// fields are length-prefixed so that no two keys share an input. SHA-256 rather than a faster
// hash because clients choose their keys: nobody can pile up keys on one value, which would make
// every lookup of that value read all of their messages.
func clientKey(room, author, clientID string) int64 {
	var buf [256]byte
	b := buf[:0]
	for _, f := range [...]string{room, author, clientID} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	sum := sha256.Sum256(b)
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// keyLoc says where a keyed message is stored.
type keyLoc struct {
	seq  int64
	room uint32 // index into recentKeys.roomNames
}

type keyEntry struct {
	key int64
	loc keyLoc
}

// keyBucket is one hash range of recentKeys.
type keyBucket struct {
	m map[int64]keyLoc
	// extra holds entries whose key m already holds for another message: different full keys
	// with the same 64-bit hash. Practically never used.
	extra []keyEntry
}

// recentKeys indexes, in memory, the keyed messages that client_keys may not hold yet. Committer
// only (and Open, before the committer starts).
type recentKeys struct {
	buckets   []keyBucket
	n         int // entries in all buckets
	roomNames []string
	roomIDs   map[string]uint32
}

func newRecentKeys(buckets int) recentKeys {
	r := recentKeys{buckets: make([]keyBucket, buckets), roomIDs: map[string]uint32{}}
	for i := range r.buckets {
		r.buckets[i].m = map[int64]keyLoc{}
	}
	return r
}

// bucketOf maps key to its bucket such that each bucket is one contiguous range of client_keys'
// (signed) key order.
func (r *recentKeys) bucketOf(key int64) int {
	u := uint64(key) ^ (1 << 63) // signed order as unsigned order
	hi, _ := bits.Mul64(u, uint64(len(r.buckets)))
	return int(hi)
}

func (r *recentKeys) add(key int64, room string, seq int64) {
	id, ok := r.roomIDs[room]
	if !ok {
		id = uint32(len(r.roomNames))
		r.roomIDs[room] = id
		r.roomNames = append(r.roomNames, room)
	}
	loc := keyLoc{seq: seq, room: id}
	b := &r.buckets[r.bucketOf(key)]
	if old, taken := b.m[key]; !taken {
		b.m[key] = loc
	} else if old != loc {
		b.extra = append(b.extra, keyEntry{key, loc})
	} else {
		return
	}
	r.n++
}

// lookup appends the seqs in room of the messages whose key hashes to key.
func (r *recentKeys) lookup(key int64, room string, dst []int64) []int64 {
	id, ok := r.roomIDs[room]
	if !ok {
		return dst
	}
	b := &r.buckets[r.bucketOf(key)]
	if loc, ok := b.m[key]; ok {
		if loc.room == id {
			dst = append(dst, loc.seq)
		}
		for _, e := range b.extra {
			if e.key == key && e.loc.room == id {
				dst = append(dst, e.loc.seq)
			}
		}
	}
	return dst
}

// entries appends bucket i's entries in key order.
func (r *recentKeys) entries(i int, dst []keyEntry) []keyEntry {
	b := &r.buckets[i]
	start := len(dst)
	for k, loc := range b.m {
		dst = append(dst, keyEntry{k, loc})
	}
	dst = append(dst, b.extra...)
	slices.SortFunc(dst[start:], func(a, b keyEntry) int { return cmp.Compare(a.key, b.key) })
	return dst
}

// drop empties bucket i once its entries are committed to client_keys.
func (r *recentKeys) drop(i int) {
	b := &r.buckets[i]
	r.n -= len(b.m) + len(b.extra)
	if len(b.m) > 0 {
		b.m = map[int64]keyLoc{} // a fresh map gives the memory back; clear would keep it
	}
	b.extra = nil
}

// keySweep is the committer's progress through the buckets.
type keySweep struct {
	every int // messages per bucket merge
	next  int // the next bucket to merge
	debt  int // committed messages not yet paid for with bucket merges
	// snap is each room's committed last_seq when the current sweep began (its first bucket
	// merge committed): once every bucket has been merged since, the room's keys_seq can move
	// there. Nil between sweeps.
	snap map[string]int64
	// dirty is each room's committed last_seq not yet covered by a snapshot.
	dirty map[string]int64
}

// sweepPlan is what one batch's transaction does of the sweep; it takes effect only if the
// transaction commits.
type sweepPlan struct {
	first, n int              // buckets first .. first+n-1
	starts   bool             // this transaction begins a sweep: dirty becomes snap
	finishes map[string]int64 // this transaction ends a sweep: keys_seq moves to these
}

// planSweep decides which buckets the next transaction merges.
func (s *Store) planSweep() sweepPlan {
	w := &s.sweep
	n := min(w.debt/w.every, maxMergesPerBatch, len(s.keys.buckets)-w.next)
	p := sweepPlan{first: w.next, n: n}
	if n == 0 {
		return p
	}
	snap := w.snap
	if w.next == 0 {
		p.starts = true
		snap = w.dirty
	}
	if w.next+n == len(s.keys.buckets) {
		p.finishes = snap
	}
	return p
}

// runSweep writes the plan's buckets, and at the end of a sweep the rooms' keys_seq, in tx.
func (s *Store) runSweep(ctx context.Context, tx *sql.Tx, p sweepPlan) error {
	for i := p.first; i < p.first+p.n; i++ {
		ents := s.keys.entries(i, s.scratch.entries[:0])
		s.scratch.entries = ents
		args := s.scratch.args[:0]
		for _, e := range ents {
			room := s.keys.roomNames[e.loc.room]
			if s.isDeleted(room) {
				continue // its purge may have run already: leave nothing of it behind
			}
			args = append(args, e.key, room, e.loc.seq)
			s.filterAdd(e.key) // before the commit: a key the filter has but client_keys not yet is harmless
		}
		s.scratch.args = args
		if err := execRows(ctx, tx, &s.stmts.insertKeys, len(args)/3, 3, args); err != nil {
			return fmt.Errorf("index client_ids: %w", err)
		}
	}
	if p.finishes != nil {
		stmt := tx.StmtContext(ctx, s.stmts.updateKeysSeq)
		for room, seq := range p.finishes {
			if _, err := stmt.ExecContext(ctx, seq, room); err != nil {
				return fmt.Errorf("update %s keys_seq: %w", room, err)
			}
		}
	}
	return nil
}

// sweepCommitted applies p once its transaction has committed.
func (s *Store) sweepCommitted(p sweepPlan) {
	w := &s.sweep
	if p.n == 0 {
		return
	}
	if p.starts {
		w.snap, w.dirty = w.dirty, map[string]int64{}
	}
	for i := p.first; i < p.first+p.n; i++ {
		s.keys.drop(i)
	}
	w.debt -= p.n * w.every
	w.next += p.n
	s.growFilter()
	if w.next == len(s.keys.buckets) {
		w.next, w.snap = 0, nil
	}
}

// loadRecentKeys fills recentKeys with the keyed messages after each room's keys_seq. Open calls
// it before the committer starts.
func (s *Store) loadRecentKeys(ctx context.Context) error {
	rows, err := s.writeDB.QueryContext(ctx, `SELECT name, keys_seq, last_seq FROM rooms WHERE last_seq > keys_seq AND deleted_at = 0`)
	if err != nil {
		return err
	}
	type span struct {
		room      string
		from, end int64
	}
	var spans []span
	for rows.Next() {
		var sp span
		if err := rows.Scan(&sp.room, &sp.from, &sp.end); err != nil {
			rows.Close()
			return err
		}
		spans = append(spans, sp)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, sp := range spans {
		rows, err := s.writeDB.QueryContext(ctx, `SELECT seq, author, client_id FROM messages
			WHERE room = ? AND seq > ? AND client_id != ''`, sp.room, sp.from)
		if err != nil {
			return err
		}
		for rows.Next() {
			var seq int64
			var author, clientID string
			if err := rows.Scan(&seq, &author, &clientID); err != nil {
				rows.Close()
				return err
			}
			s.keys.add(s.keyOf(sp.room, author, clientID), sp.room, seq)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// The next sweep moves these keys too, at the usual pace: rushing them would slow the
		// first batches after a restart for the sake of memory that a sweep gives back anyway.
		s.sweep.dirty[sp.room] = sp.end
	}
	return nil
}

// backfillClientKeys is the Go half of migration 2: it indexes the existing keyed messages.
func backfillClientKeys(ctx context.Context, tx *sql.Tx) error {
	type row struct {
		key  int64
		room string
		seq  int64
	}
	const page = 8192
	var (
		room string // where the previous page ended: ("", 0) sorts before every message
		seq  int64
		rs   []row
		args []any
	)
	for {
		rows, err := tx.QueryContext(ctx, `SELECT room, seq, author, client_id FROM messages
			WHERE (room, seq) > (?, ?) AND client_id != '' ORDER BY room, seq LIMIT ?`, room, seq, page)
		if err != nil {
			return err
		}
		rs = rs[:0]
		for rows.Next() {
			var author, clientID string
			if err := rows.Scan(&room, &seq, &author, &clientID); err != nil {
				rows.Close()
				return err
			}
			rs = append(rs, row{clientKey(room, author, clientID), room, seq})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// In key order, so that the inserts walk client_keys once.
		slices.SortFunc(rs, func(a, b row) int { return cmp.Compare(a.key, b.key) })
		for chunk := range slices.Chunk(rs, 256) {
			args = args[:0]
			for _, r := range chunk {
				args = append(args, r.key, r.room, r.seq)
			}
			q := "INSERT OR IGNORE INTO client_keys (key, room, seq) VALUES (?, ?, ?)" + strings.Repeat(", (?, ?, ?)", len(chunk)-1)
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		if len(rs) < page {
			break
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE rooms SET keys_seq = last_seq`)
	return err
}
