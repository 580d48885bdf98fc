package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"natter"
)

// Invites to private rooms (natter.InviteStore), in room_invites (migration 18). Each call is one
// short transaction on the writer connection: a use checks and counts the invite and adds the
// member in one step, so that a one-use invite lets exactly one account in.

const inviteColumns = `id, room, created_by, created_at, expires_at, max_uses, uses`

func scanInvite(row interface{ Scan(...any) error }) (natter.Invite, error) {
	var inv natter.Invite
	var created, expires int64
	err := row.Scan(&inv.ID, &inv.Room, &inv.CreatedBy, &created, &expires, &inv.MaxUses, &inv.Uses)
	inv.CreatedAt, inv.ExpiresAt = fromNanos(created), fromNanos(expires)
	return inv, err
}

// liveInvite is the SQL condition of an invite that still works at ?now.
const liveInvite = `expires_at > :now AND (max_uses = 0 OR uses < max_uses)`

// inviteRoomExists is roomExists inside tx.
func inviteRoomExists(ctx context.Context, tx *sql.Tx, room string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM rooms WHERE name = ? AND deleted_at = 0`, room).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return natter.Errorf(natter.ENOTFOUND, "no room named %q", room)
	}
	if err != nil {
		return natter.Internal("sqlite: invites: read room", err)
	}
	return nil
}

// inviteTx runs fn in a transaction of the writer connection, and makes it durable.
func (s *Store) inviteTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	if err := s.storeFailed(); err != nil {
		return err
	}
	tx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return natter.Internal("sqlite: "+what, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		var ne *natter.Error
		if errors.As(err, &ne) {
			return err
		}
		return natter.Internal("sqlite: "+what, err)
	}
	if err := tx.Commit(); err != nil {
		return natter.Internal("sqlite: "+what, err)
	}
	return s.syncWrite()
}

// CreateInvite stores a new invite, dropping the room's invites that no longer work
// (natter.InviteStore).
func (s *Store) CreateInvite(ctx context.Context, inv natter.Invite, hash string) error {
	return s.inviteTx(ctx, "create invite", func(tx *sql.Tx) error {
		if err := inviteRoomExists(ctx, tx, inv.Room); err != nil {
			return err
		}
		now := sql.Named("now", toNanos(inv.CreatedAt))
		if _, err := tx.ExecContext(ctx, `DELETE FROM room_invites WHERE room = :room AND NOT (`+liveInvite+`)`, sql.Named("room", inv.Room), now); err != nil {
			return err
		}
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM room_invites WHERE room = ?`, inv.Room).Scan(&live); err != nil {
			return err
		}
		if live >= natter.MaxRoomInvites {
			return natter.Errorf(natter.ECONFLICT, "room %q holds %d invites, the most it may: revoke one first", inv.Room, natter.MaxRoomInvites)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO room_invites (room, id, hash, created_by, created_at, expires_at, max_uses, uses) VALUES (?, ?, ?, ?, ?, ?, ?, 0)`,
			inv.Room, inv.ID, hash, inv.CreatedBy, toNanos(inv.CreatedAt), toNanos(inv.ExpiresAt), inv.MaxUses)
		return err
	})
}

// Invites lists the room's invites that still work at now, the newest first (natter.InviteStore).
func (s *Store) Invites(ctx context.Context, room string, now time.Time) ([]natter.Invite, error) {
	if err := s.roomExists(ctx, room); err != nil {
		return nil, err
	}
	rows, err := s.readDB.QueryContext(ctx, `SELECT `+inviteColumns+` FROM room_invites WHERE room = :room AND `+liveInvite+`
		ORDER BY created_at DESC, id`, sql.Named("room", room), sql.Named("now", toNanos(now)))
	if err != nil {
		return nil, natter.Internal("sqlite: invites", err)
	}
	defer rows.Close()
	out := []natter.Invite{}
	for rows.Next() {
		inv, err := scanInvite(rows)
		if err != nil {
			return nil, natter.Internal("sqlite: invites", err)
		}
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, natter.Internal("sqlite: invites", err)
	}
	return out, nil
}

// RevokeInvite deletes the room's invite id (natter.InviteStore).
func (s *Store) RevokeInvite(ctx context.Context, room, id string) (natter.Invite, error) {
	var inv natter.Invite
	err := s.inviteTx(ctx, "revoke invite", func(tx *sql.Tx) error {
		if err := inviteRoomExists(ctx, tx, room); err != nil {
			return err
		}
		var err error
		inv, err = scanInvite(tx.QueryRowContext(ctx, `DELETE FROM room_invites WHERE room = ? AND id = ? RETURNING `+inviteColumns, room, id))
		if errors.Is(err, sql.ErrNoRows) {
			return natter.Errorf(natter.ENOTFOUND, "room %q has no invite %q", room, id)
		}
		return err
	})
	return inv, err
}

// UseInvite makes user a member of room by an invite, counting the use, in one transaction
// (natter.InviteStore).
func (s *Store) UseInvite(ctx context.Context, room, hash, user string, now time.Time) (natter.Invite, error) {
	var inv natter.Invite
	err := s.inviteTx(ctx, "use invite", func(tx *sql.Tx) error {
		if err := inviteRoomExists(ctx, tx, room); err != nil {
			return err
		}
		if len(hash) < 12 {
			return noInvite(room)
		}
		var err error
		inv, err = scanInvite(tx.QueryRowContext(ctx, `SELECT `+inviteColumns+` FROM room_invites WHERE room = :room AND id = :id AND hash = :hash AND `+liveInvite,
			sql.Named("room", room), sql.Named("id", natter.InviteID(hash)), sql.Named("hash", hash), sql.Named("now", toNanos(now))))
		if errors.Is(err, sql.ErrNoRows) {
			return noInvite(room)
		}
		if err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, s.stmts.insertMember).ExecContext(ctx, room, user, inv.CreatedBy, toNanos(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // a member already: no use counted
		}
		inv.Uses++
		_, err = tx.ExecContext(ctx, `UPDATE room_invites SET uses = uses + 1 WHERE room = ? AND id = ?`, room, inv.ID)
		return err
	})
	return inv, err
}

func noInvite(room string) error {
	return natter.Errorf(natter.ENOTFOUND, "no invite to room %q works with that code: it may have expired, been used up or revoked", room)
}
