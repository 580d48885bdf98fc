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
// batches, and its next transaction starts the WAL over. The two must not overlap (a checkpoint
// that finds another running gives up), hence the state: the committer starts a pass only from
// ckptIdle and finishes it only in ckptCaughtUp, when the background goroutine is waiting.
type checkpointer struct {
	db    *sql.DB
	wake  chan struct{} // starts one background pass; closed by Close
	done  chan struct{} // closed when checkpointLoop returns
	state atomic.Int32  // ckptIdle, ckptRunning or ckptCaughtUp
	every int           // Config.CheckpointEvery
	since int           // appends committed since the last pass began; committer only
}

// Checkpointer states.
const (
	ckptIdle     = iota // no pass running; the committer may start one
	ckptRunning         // a background pass is copying the WAL
	ckptCaughtUp        // the pass is done; the committer copies the rest and rewinds
)

// checkpointLoop runs background checkpoints until wake is closed.
func (s *Store) checkpointLoop() {
	defer close(s.ckpt.done)
	for range s.ckpt.wake {
		// PASSIVE never blocks the committer or readers; what a reader still needs stays in the
		// WAL for the next pass.
		if _, err := s.ckpt.db.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
			s.log.Warn("sqlite: background checkpoint", "err", err)
			s.ckpt.state.Store(ckptIdle)
			continue
		}
		s.ckpt.state.Store(ckptCaughtUp)
	}
}

// noteCommitted counts committed appends and starts a background pass every ckpt.every of them,
// unless one is still under way. Committer only.
func (s *Store) noteCommitted(n int) {
	s.ckpt.since += n
	if s.ckpt.since < s.ckpt.every || !s.ckpt.state.CompareAndSwap(ckptIdle, ckptRunning) {
		return
	}
	s.ckpt.since = 0
	s.ckpt.wake <- struct{}{} // never blocks: the loop is waiting, or about to, for this one send
}

// finishCheckpoint copies the frames committed since the background pass, so that the next
// transaction rewinds the WAL instead of growing it. Committer only, between batches.
func (s *Store) finishCheckpoint() {
	if s.ckpt.state.Load() != ckptCaughtUp {
		return
	}
	if _, err := s.writeDB.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		s.log.Warn("sqlite: checkpoint between batches", "err", err)
	}
	s.ckpt.state.Store(ckptIdle)
}
