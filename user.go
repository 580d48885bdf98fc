package natter

import (
	"context"
	"strings"
	"time"
)

// ValidUserName reports whether name matches ^[a-z0-9][a-z0-9_.-]{0,31}$.
func ValidUserName(name string) bool { return validName(name, 32, "_.-") }

// User is an account. Guests have no stored account: they exist only in their sessions.
type User struct {
	Name      string    `json:"name"`
	Guest     bool      `json:"guest,omitempty"`
	CreatedAt time.Time `json:"-"`
	// Suspended accounts may not sign in (ModerationStore.SetSuspended); only
	// UserStore.UserPasswordHash reports it.
	Suspended bool `json:"-"`
	// Deleted accounts (UserStore.DeleteUser) keep only their name, which is never used again;
	// only UserStore.UserPasswordHash reports them, with no password hash.
	Deleted bool `json:"-"`
}

// Session is a signed-in user's token, stored only as a hash.
type Session struct {
	TokenHash string
	UserName  string
	Guest     bool
	CreatedAt time.Time
	ExpiresAt time.Time
}

// UserStore keeps accounts and sessions.
// SharedLimiter is implemented by stores that several nodes share, so that a limit on how fast
// something may happen holds across the nodes rather than on each.
type SharedLimiter interface {
	// TakeToken takes one token from the bucket key (refilled at rate a second, up to burst), or,
	// with take false, only looks. It returns 0 when there was a token, or how long until there
	// will be one.
	TakeToken(ctx context.Context, key string, rate float64, burst int, take bool) (time.Duration, error)
	// LeaseTokens takes up to n tokens from the bucket key at once, for a node to spend on its
	// own (a limit checked on every send would cost a round trip each): it returns how many it
	// took and, if none, how long until there will be one.
	LeaseTokens(ctx context.Context, key string, rate float64, burst, n int) (int, time.Duration, error)
}

type UserStore interface {
	// CreateUser stores an account with an already-hashed password. ECONFLICT if the name is taken.
	CreateUser(ctx context.Context, name, passwordHash string) (User, error)
	// UserPasswordHash returns the account and its password hash ("" for a deleted account:
	// User.Deleted). ENOTFOUND if absent.
	UserPasswordHash(ctx context.Context, name string) (User, string, error)
	// CreateSession stores a session.
	CreateSession(ctx context.Context, s Session) error
	// SessionByTokenHash returns a live session. EUNAUTHORIZED if absent or expired.
	SessionByTokenHash(ctx context.Context, tokenHash string) (Session, error)
	// DeleteSession revokes a session at once; deleting an absent session is not an error.
	DeleteSession(ctx context.Context, tokenHash string) error
	// SetPasswordHash replaces an account's password hash. EINVALID if the hash is empty,
	// ENOTFOUND if there is no such account.
	SetPasswordHash(ctx context.Context, name, passwordHash string) error
	// DeleteUserSessions revokes every session of the user name except the one whose token hash
	// is keep ("" keeps none), and returns how many it revoked.
	DeleteUserSessions(ctx context.Context, name, keep string) (int64, error)
	// DeleteUser deletes an account: its password hash and its sessions go (every node hears,
	// as for DeleteUserSessions), and it leaves every private room it was a member of but direct
	// conversations (every node hears of each, as for RoomStore.RemoveMember), which it returns.
	// Its name stays taken for good: CreateUser answers ECONFLICT, UserPasswordHash User.Deleted,
	// SetPasswordHash ENOTFOUND. ENOTFOUND if there is no such account, or it was deleted.
	DeleteUser(ctx context.Context, name string) ([]string, error)
}

// Mentions reports whether body names the account name with "@name", as the web page marks a
// mention: not inside another word or name ("x@name", "@names", "@name.x" do not count), in any
// case.
func Mentions(body, name string) bool {
	if name == "" {
		return false
	}
	lower := strings.ToLower(body)
	at := "@" + strings.ToLower(name)
	for i := 0; ; {
		j := strings.Index(lower[i:], at)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(at)
		i = start + 1
		if start > 0 && nameByte(lower[start-1], "_.@-") {
			continue
		}
		if end < len(lower) && nameByte(lower[end], "_-") {
			continue
		}
		if end+1 < len(lower) && lower[end] == '.' && nameByte(lower[end+1], "_-") {
			continue
		}
		return true
	}
}

// nameByte reports whether c is a lower-case letter, a digit or one of extra.
func nameByte(c byte, extra string) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0
}
