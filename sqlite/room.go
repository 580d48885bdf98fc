package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"natter"
)

// CreateRoom stores a new room with a fresh random epoch and LastSeq 0. An empty title becomes the
// name. Errors: EINVALID (bad name or title), ECONFLICT (the room exists).
func (s *Store) CreateRoom(ctx context.Context, room natter.Room) (natter.Room, error) {
	room, err := natter.ValidateRoom(room)
	if err != nil {
		return natter.Room{}, err
	}
	epoch, err := newEpoch()
	if err != nil {
		return natter.Room{}, natter.Internal("sqlite: new epoch", err)
	}
	created := toNanos(s.now())
	res, err := s.stmts.insertRoom.ExecContext(ctx, room.Name, room.Title, epoch, room.CreatedBy, created)
	if err != nil {
		return natter.Room{}, natter.Internal("sqlite: create room", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return natter.Room{}, natter.Internal("sqlite: create room", err)
	} else if n == 0 {
		return natter.Room{}, natter.Errorf(natter.ECONFLICT, "room %q already exists", room.Name)
	}
	if err := s.syncWrite(); err != nil {
		return natter.Room{}, err
	}
	return natter.Room{
		Name:      room.Name,
		Title:     room.Title,
		Epoch:     epoch,
		CreatedBy: room.CreatedBy,
		CreatedAt: fromNanos(created),
	}, nil
}

// Room returns one room with its current LastSeq. ENOTFOUND if absent.
func (s *Store) Room(ctx context.Context, name string) (natter.Room, error) {
	r, err := scanRoom(s.stmts.readRoom.QueryRowContext(ctx, name))
	if errors.Is(err, sql.ErrNoRows) {
		return natter.Room{}, natter.Errorf(natter.ENOTFOUND, "room %q does not exist", name)
	}
	if err != nil {
		return natter.Room{}, natter.Internal("sqlite: room", err)
	}
	r.LastSeq = min(r.LastSeq, s.visibleSeq(r.Name))
	return r, nil
}

// SetRoomTitle gives a room a new title (natter.RoomStore).
func (s *Store) SetRoomTitle(ctx context.Context, name, title string) (natter.Room, error) {
	valid, err := natter.ValidateRoom(natter.Room{Name: name, Title: title})
	if err != nil {
		return natter.Room{}, err
	}
	res, err := s.stmts.updateTitle.ExecContext(ctx, valid.Title, name)
	if err != nil {
		return natter.Room{}, natter.Internal("sqlite: set room title", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return natter.Room{}, natter.Internal("sqlite: set room title", err)
	} else if n == 0 {
		return natter.Room{}, natter.Errorf(natter.ENOTFOUND, "room %q does not exist", name)
	}
	if err := s.syncWrite(); err != nil {
		return natter.Room{}, err
	}
	return s.Room(ctx, name)
}

// Rooms lists every room by name.
func (s *Store) Rooms(ctx context.Context) ([]natter.Room, error) {
	rows, err := s.stmts.readRooms.QueryContext(ctx)
	if err != nil {
		return nil, natter.Internal("sqlite: rooms", err)
	}
	defer rows.Close()
	var rooms []natter.Room
	for rows.Next() {
		r, err := scanRoom(rows)
		if err != nil {
			return nil, natter.Internal("sqlite: rooms", err)
		}
		r.LastSeq = min(r.LastSeq, s.visibleSeq(r.Name))
		rooms = append(rooms, r)
	}
	if err := rows.Err(); err != nil {
		return nil, natter.Internal("sqlite: rooms", err)
	}
	return rooms, nil
}

func scanRoom(r rowScanner) (natter.Room, error) {
	var room natter.Room
	var created int64
	if err := r.Scan(&room.Name, &room.Title, &room.Epoch, &room.LastSeq, &room.CreatedBy, &created, &room.Changes); err != nil {
		return natter.Room{}, err
	}
	room.CreatedAt = fromNanos(created)
	return room, nil
}
