package natter

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Ban bars a user from posting in one room: no messages, edits, reactions or typing notices
// there. The user may still read the room (a public one, or a private one they are a member
// of) and delete their own messages. A ban lasts until a moderator lifts it or, if Until is set,
// until then; Reason, if given, is shown to the banned user and the room.
type Ban struct {
	User   string    `json:"user"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// Active reports whether the ban bars its user at now: it has no end, or has not reached it.
func (b Ban) Active(now time.Time) bool { return b.Until.IsZero() || now.Before(b.Until) }

// Bounds of a ban's optional parts.
const (
	MaxBanReasonChars = 200
	MinBanFor         = time.Minute
	MaxBanFor         = 366 * 24 * time.Hour
)

// ParseBanFor reads how long a ban lasts: "" for until lifted (0), a Go duration ("30m", "2h")
// or a number of days ("7d"), from MinBanFor to MaxBanFor. EINVALID otherwise.
func ParseBanFor(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := parseSpan(s)
	if err != nil || d < MinBanFor || d > MaxBanFor {
		return 0, Errorf(EINVALID, `a ban lasts from 1m to 366d ("30m", "2h", "7d"), or until lifted (no "for"), not %q`, s)
	}
	return d, nil
}

// CheckBanReason refuses a reason that is not valid UTF-8, has control characters (a line
// break included) or is over MaxBanReasonChars characters: EINVALID.
func CheckBanReason(reason string) error {
	if !utf8.ValidString(reason) || strings.IndexFunc(reason, unicode.IsControl) >= 0 {
		return Errorf(EINVALID, "a ban's reason is one line of text")
	}
	if n := utf8.RuneCountInString(reason); n > MaxBanReasonChars {
		return Errorf(EINVALID, "a ban's reason is at most %d characters, not %d", MaxBanReasonChars, n)
	}
	return nil
}

// ModerationStore keeps room bans and account suspensions.
type ModerationStore interface {
	// BanUser bars ban.User (a valid user name: an account's or a guest's) from posting in
	// room, recording who banned them (ban.By), when (the store's clock; ban.At is ignored), until
	// when (ban.Until, zero for until lifted) and why (ban.Reason, checked by the caller); banning
	// again replaces the record. On a store several nodes share, every node hears of it (natter
	// on Redis: OnRevoke). Errors: EINVALID (a bad user name), ENOTFOUND (no such room).
	BanUser(ctx context.Context, room string, ban Ban) error
	// UnbanUser lifts user's ban in room (not being banned is no error); every node hears of it
	// as of BanUser. ENOTFOUND if room does not exist.
	UnbanUser(ctx context.Context, room, user string) error
	// Bans lists room's active bans (Ban.Active at the store's clock) ordered by user name
	// (empty, not nil, for none; none for a room that does not exist).
	Bans(ctx context.Context, room string) ([]Ban, error)
	// SetSuspended suspends an account (it may no longer sign in; natter.User.Suspended) or
	// reinstates it. It ends no session: the caller does. ENOTFOUND if there is no such account.
	SetSuspended(ctx context.Context, name string, suspended bool) error
	// Suspended lists the suspended accounts by name (empty, not nil, for none).
	Suspended(ctx context.Context) ([]string, error)
}
