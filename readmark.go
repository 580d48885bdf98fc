package natter

import "context"

// ReadMark is how far an account has read a room's log: every message up to Seq, in the log that
// Epoch names. A mark of another epoch than the room's says nothing about its log now.
type ReadMark struct {
	Room  string `json:"room"`
	Epoch string `json:"epoch"`
	Seq   int64  `json:"seq"`
}

// ReadMarkStore keeps each account's read marks, so that every device of the account shows what
// is new in each room.
type ReadMarkStore interface {
	// SetReadMark moves user's mark in mark.Room up to mark.Seq. A mark of the same epoch that is
	// already as far stays as it is (marks never move back); one of another epoch is replaced.
	// Errors: EINVALID (a bad user or room name, a seq below 0 or past the room's last seq),
	// ENOTFOUND (no such room), ECONFLICT (mark.Epoch is not the room's), EUNAVAILABLE,
	// EINTERNAL. A store may hold the newest marks in memory for a moment before it writes them
	// (ReadMarks sees them at once; a crash may lose them: a mark is a convenience, not a
	// message).
	SetReadMark(ctx context.Context, user string, mark ReadMark) error
	// ReadMarks returns user's marks, of any epoch, one per room, by room name.
	ReadMarks(ctx context.Context, user string) ([]ReadMark, error)
	// ChangesAfter returns how many of room's entries after seq after are edits or deletions, so
	// that a count of unread messages can leave them out (0 for a room that does not exist).
	ChangesAfter(ctx context.Context, room string, after int64) (int64, error)
	// HideRoom records that user closed room when its log ended at at.Seq in epoch at.Epoch
	// (at.Room names the room): lists leave it out for user until the log grows past that
	// (natter.Hidden). Hiding again replaces the record. Errors: EINVALID (a bad user or room
	// name, a seq below 0), ENOTFOUND (no such room).
	HideRoom(ctx context.Context, user string, at ReadMark) error
	// ShowRoom forgets user's HideRoom of room (none is no error).
	ShowRoom(ctx context.Context, user, room string) error
	// HiddenRooms returns user's HideRoom records, one per room, by room name.
	HiddenRooms(ctx context.Context, user string) ([]ReadMark, error)
	// MuteRoom records that user muted room (muted) or forgets it (!muted): its new messages
	// stay out of user's counts and notifications but for those that name user. Again is no
	// error. Errors: EINVALID (a bad user or room name), ENOTFOUND (muting a room that does not
	// exist; unmuting one is no error).
	MuteRoom(ctx context.Context, user, room string, muted bool) error
	// MutedRooms returns the names of the rooms user muted, in order; empty, not nil, for none.
	// A deleted room may stay among them (its name is never used again).
	MutedRooms(ctx context.Context, user string) ([]string, error)
}

// CheckMute validates a MuteRoom call's arguments as every store does.
func CheckMute(user, room string) error {
	if !ValidUserName(user) {
		return Errorf(EINVALID, "user name %q is not valid", user)
	}
	if !ValidRoomName(room) {
		return Errorf(EINVALID, "room name %q is not valid", room)
	}
	return nil
}

// CheckHide validates a HideRoom call's arguments as every store does: EINVALID for a bad user or
// room name or a seq below 0.
func CheckHide(user string, at ReadMark) error {
	if !ValidUserName(user) {
		return Errorf(EINVALID, "user name %q is not valid", user)
	}
	if !ValidRoomName(at.Room) {
		return Errorf(EINVALID, "room name %q is not valid", at.Room)
	}
	if at.Seq < 0 {
		return Errorf(EINVALID, "seq %d of hidden room %q is below 0", at.Seq, at.Room)
	}
	return nil
}

// Hidden reports whether a room closed at at (HideRoom) stays out of lists: nothing was added to
// the same log since.
func Hidden(room Room, at ReadMark) bool {
	return at.Room == room.Name && at.Epoch == room.Epoch && room.LastSeq <= at.Seq
}

// CheckReadMark validates mark against room as every store does: the room's epoch, and a seq from
// 0 to the room's last seq. EINVALID or ECONFLICT.
func CheckReadMark(room Room, mark ReadMark) error {
	if mark.Epoch != room.Epoch {
		return Errorf(ECONFLICT, "room %q has epoch %q, not %q: reload the room", room.Name, room.Epoch, mark.Epoch)
	}
	if mark.Seq < 0 || mark.Seq > room.LastSeq {
		return Errorf(EINVALID, "read mark %d is outside room %q's log (seqs 1 to %d)", mark.Seq, room.Name, room.LastSeq)
	}
	return nil
}
