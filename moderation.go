package natter

import (
	"context"
	"time"
)

// Ban bars a user from posting in one room: no messages, edits, reactions or typing notices
// there. The user may still read the room (a public one, or a private one they are a member
// of) and delete their own messages.
type Ban struct {
	User string    `json:"user"`
	By   string    `json:"by"`
	At   time.Time `json:"at"`
}

// ModerationStore keeps room bans and account suspensions.
type ModerationStore interface {
	// BanUser bars user (a valid user name: an account's or a guest's) from posting in room,
	// recording who banned them and when; banning again keeps the first record and is no error.
	// On a store several nodes share, every node hears of it (natter on Redis: OnRevoke).
	// Errors: EINVALID (a bad user name), ENOTFOUND (no such room).
	BanUser(ctx context.Context, room, user, by string) error
	// UnbanUser lifts user's ban in room (not being banned is no error); every node hears of it
	// as of BanUser. ENOTFOUND if room does not exist.
	UnbanUser(ctx context.Context, room, user string) error
	// Bans lists room's bans ordered by user name (empty, not nil, for none; none for a room
	// that does not exist).
	Bans(ctx context.Context, room string) ([]Ban, error)
	// SetSuspended suspends an account (it may no longer sign in; natter.User.Suspended) or
	// reinstates it. It ends no session: the caller does. ENOTFOUND if there is no such account.
	SetSuspended(ctx context.Context, name string, suspended bool) error
}
