package sqlite

import (
	"context"

	"natter"
)

// BanUser bars ban.User from posting in room (natter.ModerationStore): a row of room_bans.
// Banning again replaces the row. Errors: EINVALID (a bad user name), ENOTFOUND (no such room).
func (s *Store) BanUser(ctx context.Context, room string, ban natter.Ban) error {
	if !natter.ValidUserName(ban.User) {
		return natter.Errorf(natter.EINVALID, "user name %q is not valid: a ban needs a user's name", ban.User)
	}
	if err := s.roomExists(ctx, room); err != nil {
		return err
	}
	var until int64
	if !ban.Until.IsZero() {
		until = toNanos(ban.Until)
	}
	if _, err := s.stmts.insertBan.ExecContext(ctx, room, ban.User, ban.By, toNanos(s.now()), until, ban.Reason); err != nil {
		return natter.Internal("sqlite: ban user", err)
	}
	return s.syncWrite()
}

// UnbanUser lifts user's ban in room (natter.ModerationStore); not being banned is no error.
// ENOTFOUND if room does not exist.
func (s *Store) UnbanUser(ctx context.Context, room, user string) error {
	if err := s.roomExists(ctx, room); err != nil {
		return err
	}
	if _, err := s.stmts.deleteBan.ExecContext(ctx, room, user); err != nil {
		return natter.Internal("sqlite: unban user", err)
	}
	return s.syncWrite()
}

// Bans lists room's active bans ordered by user name (natter.ModerationStore); empty, not nil,
// for none.
func (s *Store) Bans(ctx context.Context, room string) ([]natter.Ban, error) {
	if s.isDeleted(room) {
		return []natter.Ban{}, nil // its rows may wait for the purger
	}
	rows, err := s.stmts.readBans.QueryContext(ctx, room, toNanos(s.now()))
	if err != nil {
		return nil, natter.Internal("sqlite: bans", err)
	}
	defer rows.Close()
	bans := []natter.Ban{}
	for rows.Next() {
		var b natter.Ban
		var at, until int64
		if err := rows.Scan(&b.User, &b.By, &at, &until, &b.Reason); err != nil {
			return nil, natter.Internal("sqlite: bans", err)
		}
		b.At = fromNanos(at)
		if until != 0 {
			b.Until = fromNanos(until)
		}
		bans = append(bans, b)
	}
	if err := rows.Err(); err != nil {
		return nil, natter.Internal("sqlite: bans", err)
	}
	return bans, nil
}

// SetSuspended suspends or reinstates an account (natter.ModerationStore). ENOTFOUND if there is
// no such account.
func (s *Store) SetSuspended(ctx context.Context, name string, suspended bool) error {
	res, err := s.stmts.updateSuspend.ExecContext(ctx, suspended, name)
	if err != nil {
		return natter.Internal("sqlite: set suspended", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return natter.Internal("sqlite: set suspended", err)
	} else if n == 0 {
		return natter.Errorf(natter.ENOTFOUND, "user %q does not exist", name)
	}
	return s.syncWrite()
}

// Suspended lists the suspended accounts by name (natter.ModerationStore); empty, not nil, for
// none. Few accounts are suspended: the scan of users reads one column.
func (s *Store) Suspended(ctx context.Context) ([]string, error) {
	rows, err := s.stmts.readSuspended.QueryContext(ctx)
	if err != nil {
		return nil, natter.Internal("sqlite: suspended", err)
	}
	defer rows.Close()
	names := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, natter.Internal("sqlite: suspended", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, natter.Internal("sqlite: suspended", err)
	}
	return names, nil
}
