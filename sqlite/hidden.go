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
