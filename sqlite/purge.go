package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"natter"
)

// Deleting a room (natter.RoomStore.DeleteRoom) takes two steps. The committer marks the room's
// row deleted (rooms.deleted_at), in queue order with the appends, and forgets the room's last
// seq, so that from then on the room does not exist for anyone, an append queued behind the
// deletion included. Then the purger deletes what the room held (its messages, their
// idempotency keys, pins, bans, members, invites, read marks, closed-conversation marks) in transactions
// of at most purgeChunk messages, so that deleting a long log never holds the one writer
// connection, and with it every send, for long. The row itself stays: a deleted room's name is
// never used again. A purge that Close or a crash cut short is finished after the next Open.

// purgeChunk bounds the messages one purge transaction deletes.
const purgeChunk = 2000

// purgeKeyRanges splits the deletion of a room's idempotency keys, whose table is ordered by
// key hash, not by room, into this many transactions, each a scan of that share of the table.
const purgeKeyRanges = 32

// purger deletes deleted rooms' contents in the background.
type purger struct {
	deleted sync.Map // the names of deleted rooms; reads answer ENOTFOUND for them at once
	wake    chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
	purged  func(room string) // for tests: called when a room's purge is complete
}

// DeleteRoom deletes a room (natter.RoomStore): the committer marks it deleted, in order with
// the appends queued before and after it, and the purger empties it afterwards.
func (s *Store) DeleteRoom(ctx context.Context, name, by string) error {
	if !natter.ValidRoomName(name) {
		return natter.Errorf(natter.ENOTFOUND, "room %q does not exist", name)
	}
	c := &appendCall{ctx: ctx, req: natter.AppendRequest{Room: name, Author: by}, drop: true, done: make(chan struct{}, 1)}
	if err := s.enqueue(ctx, c); err != nil {
		return err
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return canceled(ctx) // the deletion may still be made: the committer holds it
	}
}

// dropRoom carries out a deletion the committer took from its queue, between two batches.
// Committer only.
func (s *Store) dropRoom(c *appendCall) {
	c.err = s.storeDrop(c.req.Room, c.req.Author)
	answer([]*appendCall{c})
}

func (s *Store) storeDrop(room, by string) error {
	if err := s.storeFailed(); err != nil {
		return err
	}
	// Not the caller's context: once taken, the deletion is made even if the caller leaves.
	res, err := s.stmts.dropRoom.ExecContext(context.Background(), toNanos(s.now()), by, room)
	if err != nil {
		return natter.Internal("sqlite: delete room", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return natter.Internal("sqlite: delete room", err)
	} else if n == 0 {
		return natter.Errorf(natter.ENOTFOUND, "room %q does not exist", room)
	}
	s.purge.deleted.Store(room, struct{}{})
	delete(s.lastSeq, room) // the next append to it reads rooms and finds no such room
	if err := s.syncWrite(); err != nil {
		return err
	}
	select {
	case s.purge.wake <- struct{}{}:
	default: // already woken
	}
	return nil
}

// isDeleted reports whether room was deleted, for the reads that would otherwise find its
// messages until the purger has deleted them.
func (s *Store) isDeleted(room string) bool {
	_, ok := s.purge.deleted.Load(room)
	return ok
}

// loadDeletedRooms reads the names of the deleted rooms, for isDeleted.
func (s *Store) loadDeletedRooms(ctx context.Context) error {
	rows, err := s.writeDB.QueryContext(ctx, `SELECT name FROM rooms WHERE deleted_at != 0`)
	if err != nil {
		return fmt.Errorf("sqlite: deleted rooms: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("sqlite: deleted rooms: %w", err)
		}
		s.purge.deleted.Store(name, struct{}{})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: deleted rooms: %w", err)
	}
	return nil
}

// startPurger starts the purger, which first finishes what an earlier run left.
func (s *Store) startPurger() {
	pctx, cancel := context.WithCancel(context.Background())
	s.purge.stop, s.purge.done = cancel, make(chan struct{})
	s.purge.wake = make(chan struct{}, 1)
	s.purge.wake <- struct{}{} // whatever was left
	go s.purgeLoop(pctx)
}

func (s *Store) stopPurger() {
	s.purge.stop()
	<-s.purge.done
}

func (s *Store) purgeLoop(ctx context.Context) {
	defer close(s.purge.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.purge.wake:
		}
		for {
			room, err := s.nextPurge(ctx)
			if err == nil && room == "" {
				break // nothing left
			}
			if err == nil {
				start := time.Now()
				var n int64
				if n, err = s.purgeRoom(ctx, room); err == nil {
					s.log.Info("sqlite: purged a deleted room", "room", room, "messages", n, "took", time.Since(start).Round(time.Millisecond))
					if s.purge.purged != nil {
						s.purge.purged(room)
					}
					continue
				}
			}
			if ctx.Err() != nil {
				return
			}
			// A failing disk, most likely: try again later, and at the next Open.
			s.log.Warn("sqlite: purging a deleted room", "room", room, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
		}
	}
}

// nextPurge returns a deleted room that still holds something, or "".
func (s *Store) nextPurge(ctx context.Context) (string, error) {
	var name string
	err := s.writeDB.QueryRowContext(ctx, `SELECT name FROM rooms WHERE deleted_at != 0 AND purged = 0 LIMIT 1`).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return name, err
}

// purgeRoom deletes everything a deleted room held, in small transactions, and then marks its row
// purged. It returns how many messages it deleted.
func (s *Store) purgeRoom(ctx context.Context, room string) (int64, error) {
	var total int64
	for {
		res, err := s.writeDB.ExecContext(ctx, `DELETE FROM messages WHERE room = ?1 AND seq IN
			(SELECT seq FROM messages WHERE room = ?1 ORDER BY seq LIMIT ?2)`, room, purgeChunk)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < purgeChunk {
			break
		}
	}
	step := uint64(math.MaxUint64/purgeKeyRanges) + 1
	for i := range uint64(purgeKeyRanges) {
		lo, hi := int64(i*step), int64(i*step+step-1) // as the signed keys are stored
		if _, err := s.writeDB.ExecContext(ctx, `DELETE FROM client_keys WHERE key BETWEEN min(?1, ?2) AND max(?1, ?2) AND room = ?3`, lo, hi, room); err != nil {
			return total, err
		}
	}
	tx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return total, err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM room_pins WHERE room = ?`,
		`DELETE FROM room_bans WHERE room = ?`,
		`DELETE FROM room_members WHERE room = ?`,
		`DELETE FROM room_invites WHERE room = ?`,
		`DELETE FROM read_marks WHERE room = ?`,
		`DELETE FROM hidden_rooms WHERE room = ?`,
		`DELETE FROM muted_rooms WHERE room = ?`,
		`UPDATE rooms SET purged = 1, title = name, topic = '' WHERE name = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, room); err != nil {
			return total, err
		}
	}
	return total, tx.Commit()
}
