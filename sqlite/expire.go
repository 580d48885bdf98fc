package sqlite

import (
	"context"
	"fmt"
	"sync"
	"time"

	"natter"
)

// Retention (natter.MessageStore.ExpireBefore): the words of old messages and edits are erased in
// place, as a deletion erases them, a chunk of a room's log at a time. Each room's log is in time
// order, so what is expired is a prefix of it: each room's end of that prefix is remembered
// (expirer.done), and the next call goes on from there. After a restart the first call walks
// each room's log from the start once, reading (not writing) what was erased before.

// expireChunk bounds the entries one expiry transaction examines.
const expireChunk = 1000

type expirer struct {
	mu   sync.Mutex       // one ExpireBefore at a time
	done map[string]int64 // room -> the seq up to which nothing is left to expire
}

// ExpireBefore erases the words of the messages and edits stored before before (natter.MessageStore).
func (s *Store) ExpireBefore(ctx context.Context, before time.Time) (int64, error) {
	s.expire.mu.Lock()
	defer s.expire.mu.Unlock()
	if s.expire.done == nil {
		s.expire.done = make(map[string]int64)
	}
	rooms, err := s.Rooms(ctx)
	if err != nil {
		return 0, err
	}
	cutoff := toNanos(before)
	var total int64
	for _, r := range rooms {
		for {
			n, more, err := s.expireChunk(ctx, r.Name, cutoff)
			total += n
			if err != nil {
				return total, natter.Internal("sqlite: expire messages", fmt.Errorf("room %s: %w", r.Name, err))
			}
			if !more {
				break
			}
		}
	}
	if total > 0 {
		if err := s.syncWrite(); err != nil {
			return total, err
		}
	}
	return total, nil
}

// expireChunk erases what is expired among the next expireChunk entries of room's log, and
// reports whether the log may hold more.
func (s *Store) expireChunk(ctx context.Context, room string, cutoff int64) (int64, bool, error) {
	from := s.expire.done[room]
	// The last seq of the chunk that is expired: the chunk's entries in seq order, up to the
	// first stored at or after the cutoff.
	rows, err := s.readDB.QueryContext(ctx, `SELECT seq, ts FROM messages WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?`, room, from, expireChunk)
	if err != nil {
		return 0, false, err
	}
	upTo, seen, reachedNow := from, 0, false
	for rows.Next() {
		var seq, ts int64
		if err := rows.Scan(&seq, &ts); err != nil {
			rows.Close()
			return 0, false, err
		}
		seen++
		if ts >= cutoff {
			reachedNow = true
			break
		}
		upTo = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, false, err
	}
	if upTo == from {
		return 0, false, nil
	}
	res, err := s.writeDB.ExecContext(ctx, `UPDATE messages SET body = '' WHERE room = ? AND seq > ? AND seq <= ?
		AND kind IN ('', 'edit') AND body != ''`, room, from, upTo)
	if err != nil {
		return 0, false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, false, err
	}
	s.expire.done[room] = upTo
	return n, !reachedNow && seen == expireChunk, nil
}

// eraseAuthorSpan bounds the seqs of a room's log one EraseAuthor statement looks through.
const eraseAuthorSpan = 5000

// EraseAuthor erases the words of every message and edit author wrote, in every room
// (natter.MessageStore), a span of each room's log per statement, so that the writer is never
// held for long.
func (s *Store) EraseAuthor(ctx context.Context, author string) (int64, error) {
	rooms, err := s.Rooms(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, r := range rooms {
		for from := int64(0); from < r.LastSeq; from += eraseAuthorSpan {
			res, err := s.writeDB.ExecContext(ctx, `UPDATE messages SET body = '' WHERE room = ? AND seq > ? AND seq <= ?
				AND author = ? AND kind IN ('', 'edit') AND body != ''`, r.Name, from, from+eraseAuthorSpan, author)
			if err != nil {
				return total, natter.Internal("sqlite: erase messages", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, natter.Internal("sqlite: erase messages", err)
			}
			total += n
		}
	}
	if total > 0 {
		if err := s.syncWrite(); err != nil {
			return total, err
		}
	}
	return total, nil
}
