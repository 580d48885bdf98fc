package natter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Invites: a link that lets an account join a private room without a member adding it by name.
// A member makes one (its code is shown once; stores keep only the code's hash), for a time and,
// if asked, a number of uses; any member may list a room's live invites and revoke one.
const (
	DefaultInviteTTL = 7 * 24 * time.Hour  // how long an invite works unless asked otherwise
	MinInviteTTL     = 5 * time.Minute     // at least
	MaxInviteTTL     = 30 * 24 * time.Hour // at most
	MaxInviteUses    = 10_000              // an invite's largest number of uses (0: any number)
	MaxRoomInvites   = 50                  // live invites a room holds at most
)

// Invite is one invite to a private room, as a room's members see it: never its code.
type Invite struct {
	// ID names the invite in lists and revocations: InviteID of its code's hash.
	ID        string    `json:"id"`
	Room      string    `json:"room"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// MaxUses is how many accounts may join with it: 0 for any number until it expires.
	MaxUses int `json:"max_uses"`
	// Uses is how many accounts joined with it (an account that was a member already is none).
	Uses int `json:"uses"`
}

// Live reports whether the invite still lets an account join at now.
func (i Invite) Live(now time.Time) bool {
	return now.Before(i.ExpiresAt) && (i.MaxUses == 0 || i.Uses < i.MaxUses)
}

// InviteHash is what a store keeps of an invite's code: a stolen database yields no usable code.
func InviteHash(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// InviteID is the invite's name derived from its code's hash: its first 12 hex digits.
func InviteID(hash string) string { return hash[:12] }

// ParseInviteTTL reads how long a new invite works: "" for DefaultInviteTTL, else a Go duration
// ("12h") or a number of days ("7d") from MinInviteTTL to MaxInviteTTL. EINVALID otherwise.
func ParseInviteTTL(s string) (time.Duration, error) {
	if s == "" {
		return DefaultInviteTTL, nil
	}
	d, err := parseSpan(s)
	if err != nil || d < MinInviteTTL || d > MaxInviteTTL {
		return 0, Errorf(EINVALID, `an invite works from 5 minutes to 30 days ("12h", "7d"), not %q`, s)
	}
	return d, nil
}

// InviteStore keeps the invites to private rooms.
type InviteStore interface {
	// CreateInvite stores inv (its ID InviteID(hash)) under hash, the InviteHash of its code,
	// dropping the room's invites that no longer work (Invite.Live at inv.CreatedAt). Errors:
	// ENOTFOUND (no such room), ECONFLICT (the room holds MaxRoomInvites live invites).
	CreateInvite(ctx context.Context, inv Invite, hash string) error
	// Invites lists the room's invites that still work at now, the newest first. ENOTFOUND if
	// there is no such room.
	Invites(ctx context.Context, room string, now time.Time) ([]Invite, error)
	// RevokeInvite deletes the room's invite id and returns it. ENOTFOUND if there is none.
	RevokeInvite(ctx context.Context, room, id string) (Invite, error)
	// UseInvite makes user (an account: the caller checks) a member of room by the invite whose
	// code hashes to hash, in one step: the invite must still work at now, and counts one use
	// more unless user was a member already. It returns the invite, its uses counted. ENOTFOUND
	// when the room or the invite does not exist, or the invite no longer works.
	UseInvite(ctx context.Context, room, hash, user string, now time.Time) (Invite, error)
}
