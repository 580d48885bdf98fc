package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

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
	tx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return natter.Room{}, natter.Internal("sqlite: create room", err)
	}
	defer tx.Rollback()
	res, err := tx.StmtContext(ctx, s.stmts.insertRoom).ExecContext(ctx, room.Name, room.Title, epoch, room.CreatedBy, created, room.Private, strings.Join(room.Direct, " "))
	if err != nil {
		return natter.Room{}, natter.Internal("sqlite: create room", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return natter.Room{}, natter.Internal("sqlite: create room", err)
	} else if n == 0 {
		if s.isDeleted(room.Name) {
			return natter.Room{}, natter.DeletedRoomError(room.Name)
		}
		return natter.Room{}, natter.Errorf(natter.ECONFLICT, "room %q already exists", room.Name)
	}
	for _, m := range room.FirstMembers() {
		if _, err := tx.StmtContext(ctx, s.stmts.insertMember).ExecContext(ctx, room.Name, m, room.CreatedBy, created); err != nil {
			return natter.Room{}, natter.Internal("sqlite: create room", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return natter.Room{}, natter.Internal("sqlite: create room", err)
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
		Private:   room.Private,
		Direct:    room.Direct,
	}, nil
}

// AddMember makes user a member of room (natter.RoomStore).
func (s *Store) AddMember(ctx context.Context, room, user, addedBy string) error {
	if err := s.roomExists(ctx, room); err != nil {
		return err
	}
	if _, err := s.stmts.insertMember.ExecContext(ctx, room, user, addedBy, toNanos(s.now())); err != nil {
		return natter.Internal("sqlite: add member", err)
	}
	return s.syncWrite()
}

// RemoveMember takes user out of room's members (natter.RoomStore).
func (s *Store) RemoveMember(ctx context.Context, room, user string) error {
	if err := s.roomExists(ctx, room); err != nil {
		return err
	}
	if _, err := s.stmts.deleteMember.ExecContext(ctx, room, user); err != nil {
		return natter.Internal("sqlite: remove member", err)
	}
	return s.syncWrite()
}

// IsMember reports whether user is a member of room (natter.RoomStore).
func (s *Store) IsMember(ctx context.Context, room, user string) (bool, error) {
	if s.isDeleted(room) {
		return false, nil // its rows may wait for the purger
	}
	var one int
	err := s.stmts.readMember.QueryRowContext(ctx, room, user).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, natter.Internal("sqlite: is member", err)
	}
	return true, nil
}

// Members lists room's members by name (natter.RoomStore).
func (s *Store) Members(ctx context.Context, room string) ([]string, error) {
	if s.isDeleted(room) {
		return []string{}, nil // its rows may wait for the purger
	}
	rows, err := s.stmts.readMembers.QueryContext(ctx, room)
	if err != nil {
		return nil, natter.Internal("sqlite: members", err)
	}
	defer rows.Close()
	names := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, natter.Internal("sqlite: members", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, natter.Internal("sqlite: members", err)
	}
	return names, nil
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
	title, err := natter.RoomTitle(name, title)
	if err != nil {
		return natter.Room{}, err
	}
	return s.updateRoom(ctx, s.stmts.updateTitle, name, title)
}

// SetRoomTopic gives a room a new topic (natter.RoomStore).
func (s *Store) SetRoomTopic(ctx context.Context, name, topic string) (natter.Room, error) {
	if err := natter.RoomTopic(topic); err != nil {
		return natter.Room{}, err
	}
	return s.updateRoom(ctx, s.stmts.updateTopic, name, topic)
}

// updateRoom runs stmt, which sets one column of room name to value, and returns the room.
func (s *Store) updateRoom(ctx context.Context, stmt *sql.Stmt, name, value string) (natter.Room, error) {
	res, err := stmt.ExecContext(ctx, value, name)
	if err != nil {
		return natter.Room{}, natter.Internal("sqlite: change room", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return natter.Room{}, natter.Internal("sqlite: change room", err)
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
	var direct string
	if err := r.Scan(&room.Name, &room.Title, &room.Epoch, &room.LastSeq, &room.CreatedBy, &created, &room.Changes, &room.Private, &direct, &room.Topic); err != nil {
		return natter.Room{}, err
	}
	if direct != "" {
		room.Direct = strings.Fields(direct)
	}
	room.CreatedAt = fromNanos(created)
	return room, nil
}
