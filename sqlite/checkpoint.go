package sqlite

import (
	"database/sql"
	"sync/atomic"
)

// checkpointer copies the WAL back into the database file on its own connection, so that the
// committer never pays for it inline (SQLite's automatic checkpoint runs inside the commit that
// crosses the threshold, stalling every sender in that batch).
//
// A checkpoint that runs beside a busy writer never quite catches up, and SQLite only rewinds the
// WAL to its start once everything in it is copied; without that the WAL would grow forever. So
// after each background pass the committer copies the few frames written since, between two
// batches, and its next transaction starts the WAL over.
type checkpointer struct {
	db       *sql.DB
	wake     chan struct{} // capacity 1: a wake-up while a pass runs means one more pass
	done     chan struct{} // closed when checkpointLoop returns
	caughtUp atomic.Bool   // a background pass finished; the committer should finish the job
	every    int           // Config.CheckpointEvery
	since    int           // appends committed since the last wake-up; committer only
}

// checkpointLoop runs background checkpoints until wake is closed.
func (s *Store) checkpointLoop() {
	defer close(s.ckpt.done)
	for range s.ckpt.wake {
		// PASSIVE never blocks the committer or readers; what a reader still needs stays in the
		// WAL for the next pass.
		if _, err := s.ckpt.db.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
			s.log.Warn("sqlite: background checkpoint", "err", err)
			continue
		}
		s.ckpt.caughtUp.Store(true)
	}
}

// noteCommitted counts committed appends and wakes the checkpointer every ckpt.every.
// Committer only.
func (s *Store) noteCommitted(n int) {
	s.ckpt.since += n
	if s.ckpt.since < s.ckpt.every {
		return
	}
	s.ckpt.since = 0
	select {
	case s.ckpt.wake <- struct{}{}:
	default: // a pass is already pending; it will cover these frames too
	}
}

// finishCheckpoint copies the frames committed since the last background pass, so that the next
// transaction rewinds the WAL instead of growing it. Committer only, between batches.
func (s *Store) finishCheckpoint() {
	if !s.ckpt.caughtUp.CompareAndSwap(true, false) {
		return
	}
	if _, err := s.writeDB.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		s.log.Warn("sqlite: checkpoint between batches", "err", err)
	}
}
