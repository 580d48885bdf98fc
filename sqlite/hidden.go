package sqlite

import (
	"context"

	"natter"
)

// Rooms an account closed (natter.ReadMarkStore): a row of hidden_rooms per account and room.
// They are rare, so unlike read marks they are written at once, each in its own transaction.

// HideRoom records that user closed at.Room when its log ended at at.Seq in epoch at.Epoch
// (natter.ReadMarkStore); hiding again replaces the row. Errors: EINVALID (a bad user or room
// name, a seq below 0), ENOTFOUND (no such room).
func (s *Store) HideRoom(ctx context.Context, user string, at natter.ReadMark) error {
	if err := natter.CheckHide(user, at); err != nil {
		return err
	}
	if err := s.roomExists(ctx, at.Room); err != nil {
		return err
	}
	if _, err := s.stmts.upsertHidden.ExecContext(ctx, user, at.Room, at.Epoch, at.Seq, toNanos(s.now())); err != nil {
		return natter.Internal("sqlite: hide room", err)
	}
	return s.syncWrite()
}

// ShowRoom forgets user's HideRoom of room (natter.ReadMarkStore); none, or no such room, is no
// error.
func (s *Store) ShowRoom(ctx context.Context, user, room string) error {
	if _, err := s.stmts.deleteHidden.ExecContext(ctx, user, room); err != nil {
		return natter.Internal("sqlite: show room", err)
	}
	// Synced even when there was no row: another call's write may not be yet.
	return s.syncWrite()
}

// HiddenRooms returns user's HideRoom records by room name (natter.ReadMarkStore); empty, not
// nil, for none.
func (s *Store) HiddenRooms(ctx context.Context, user string) ([]natter.ReadMark, error) {
	rows, err := s.stmts.readHidden.QueryContext(ctx, user)
	if err != nil {
		return nil, natter.Internal("sqlite: hidden rooms", err)
	}
	defer rows.Close()
	hidden := []natter.ReadMark{}
	for rows.Next() {
		var m natter.ReadMark
		if err := rows.Scan(&m.Room, &m.Epoch, &m.Seq); err != nil {
			return nil, natter.Internal("sqlite: hidden rooms", err)
		}
		hidden = append(hidden, m)
	}
	if err := rows.Err(); err != nil {
		return nil, natter.Internal("sqlite: hidden rooms", err)
	}
	return hidden, nil
}

// MuteRoom records or forgets that user muted room (natter.ReadMarkStore): a row of muted_rooms.
func (s *Store) MuteRoom(ctx context.Context, user, room string, muted bool) error {
	if err := natter.CheckMute(user, room); err != nil {
		return err
	}
	var err error
	if muted {
		if err := s.roomExists(ctx, room); err != nil {
			return err
		}
		_, err = s.writeDB.ExecContext(ctx, `INSERT INTO muted_rooms (user_name, room, muted_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, user, room, toNanos(s.now()))
	} else {
		_, err = s.writeDB.ExecContext(ctx, `DELETE FROM muted_rooms WHERE user_name = ? AND room = ?`, user, room)
	}
	if err != nil {
		return natter.Internal("sqlite: mute room", err)
	}
	return s.syncWrite()
}

// MutedRooms returns the rooms user muted, by name (natter.ReadMarkStore).
func (s *Store) MutedRooms(ctx context.Context, user string) ([]string, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT room FROM muted_rooms WHERE user_name = ? ORDER BY room`, user)
	if err != nil {
		return nil, natter.Internal("sqlite: muted rooms", err)
	}
	defer rows.Close()
	muted := []string{}
	for rows.Next() {
		var room string
		if err := rows.Scan(&room); err != nil {
			return nil, natter.Internal("sqlite: muted rooms", err)
		}
		muted = append(muted, room)
	}
	if err := rows.Err(); err != nil {
		return nil, natter.Internal("sqlite: muted rooms", err)
	}
	return muted, nil
}
