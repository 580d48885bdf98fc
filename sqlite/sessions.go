package sqlite

import (
	"context"
	"time"

	"natter"
)

// Expired sessions (and bans that have ended) are deleted in the background, at Open and then every sessionSweepEvery, at
// most sessionSweepBatch rows per statement so that sends never wait long for the writer.
// Without it every sign-in that is not signed out (a browser's, a script's) would stay a row for
// ever.
const (
	sessionSweepEvery = time.Hour
	sessionSweepBatch = 1000
)

// SweepSessions deletes the sessions that have expired and returns how many it deleted. The
// deletions are not fsynced on their own: one lost to a power cut is swept again.
func (s *Store) SweepSessions(ctx context.Context) (int64, error) {
	now := toNanos(s.now())
	var total int64
	for {
		res, err := s.stmts.sweepSessions.ExecContext(ctx, now, sessionSweepBatch)
		if err != nil {
			return total, natter.Internal("sqlite: sweep sessions", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, natter.Internal("sqlite: sweep sessions", err)
		}
		total += n
		if n < sessionSweepBatch {
			return total, nil
		}
	}
}

func (s *Store) startSessionSweeper() {
	ctx, cancel := context.WithCancel(context.Background())
	s.sessStop, s.sessDone = cancel, make(chan struct{})
	go func() {
		defer close(s.sessDone)
		t := time.NewTicker(sessionSweepEvery)
		defer t.Stop()
		for {
			if n, err := s.SweepSessions(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("sqlite: sweeping expired sessions", "err", err)
			} else if n > 0 {
				s.log.Info("sqlite: swept expired sessions", "sessions", n)
			}
			if _, err := s.stmts.sweepBans.ExecContext(ctx, toNanos(s.now())); err != nil && ctx.Err() == nil {
				s.log.Warn("sqlite: sweeping ended bans", "err", err) // Bans leaves them out anyway
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// SetPasswordHash replaces an account's password hash. Errors: EINVALID (an empty hash),
// ENOTFOUND (no such account).
func (s *Store) SetPasswordHash(ctx context.Context, name, passwordHash string) error {
	if passwordHash == "" {
		return natter.Errorf(natter.EINVALID, "password hash is empty")
	}
	res, err := s.stmts.updatePassword.ExecContext(ctx, passwordHash, name)
	if err != nil {
		return natter.Internal("sqlite: set password", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return natter.Internal("sqlite: set password", err)
	} else if n == 0 {
		return natter.Errorf(natter.ENOTFOUND, "user %q does not exist", name)
	}
	return s.syncWrite()
}

// DeleteUserSessions revokes every session of the user name but the one whose token hash is keep
// ("" keeps none) and returns how many it deleted.
func (s *Store) DeleteUserSessions(ctx context.Context, name, keep string) (int64, error) {
	res, err := s.stmts.deleteSessOf.ExecContext(ctx, name, keep)
	if err != nil {
		return 0, natter.Internal("sqlite: delete sessions", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, natter.Internal("sqlite: delete sessions", err)
	}
	if n == 0 {
		return 0, nil // nothing was written
	}
	return n, s.syncWrite()
}
