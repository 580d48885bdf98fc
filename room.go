package natter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ValidRoomName reports whether name matches ^[a-z0-9][a-z0-9_-]{0,63}$. It runs on every send,
// so it is written out rather than a regexp (a measurable share of the send path's CPU).
func ValidRoomName(name string) bool { return validName(name, 64, "_-") }

// validName reports whether name is 1 to max bytes of [a-z0-9] and the bytes of extra, starting
// with [a-z0-9].
func validName(name string, max int, extra string) bool {
	if len(name) == 0 || len(name) > max {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' {
			continue
		}
		if i == 0 || !strings.ContainsRune(extra, rune(c)) {
			return false
		}
	}
	return true
}

// MaxRoomTitleChars bounds a room's title.
const MaxRoomTitleChars = 200

// DefaultRoom is the room every new server has.
const DefaultRoom = "lobby"

// ValidateRoom checks a room about to be created, as every store does: a valid name, and a title
// (the name if empty) of valid UTF-8 within MaxRoomTitleChars. It returns room with its title set,
// or EINVALID.
func ValidateRoom(room Room) (Room, error) {
	if !ValidRoomName(room.Name) {
		return Room{}, Errorf(EINVALID, "room name %q is not valid", room.Name)
	}
	if room.Direct != nil || strings.HasPrefix(room.Name, DirectPrefix) {
		if err := validateDirect(room); err != nil {
			return Room{}, err
		}
	}
	if room.Private && room.CreatedBy == "" {
		return Room{}, Errorf(EINVALID, "a private room needs its creator, its first member")
	}
	title, err := RoomTitle(room.Name, room.Title)
	if err != nil {
		return Room{}, err
	}
	room.Title = title
	return room, nil
}

// RoomTitle checks the title of the room named name, as given at creation or a rename: valid
// UTF-8 within MaxRoomTitleChars; empty is the name. EINVALID otherwise.
func RoomTitle(name, title string) (string, error) {
	if title == "" {
		return name, nil
	}
	if !utf8.ValidString(title) {
		return "", Errorf(EINVALID, "room title is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(title); n > MaxRoomTitleChars {
		return "", Errorf(EINVALID, "room title has %d characters; the limit is %d", n, MaxRoomTitleChars)
	}
	return title, nil
}

// DirectPrefix starts the name of every direct conversation's room (DirectRoomName), and of no
// other room: creating one by hand is EINVALID.
const DirectPrefix = "dm--"

// DirectRoomName is the name of the room of the direct conversation between the accounts a and
// b, either way round: DirectPrefix and 24 hex digits of a hash of the two names.
func DirectRoomName(a, b string) string {
	if b < a {
		a, b = b, a
	}
	sum := sha256.Sum256([]byte(a + "\x00" + b))
	return DirectPrefix + hex.EncodeToString(sum[:12])
}

// validateDirect checks a direct conversation's room: two distinct valid account names in order,
// the room named after them, private, made by one of them.
func validateDirect(room Room) error {
	d := room.Direct
	if len(d) != 2 || !ValidUserName(d[0]) || !ValidUserName(d[1]) || d[0] >= d[1] {
		if d == nil {
			return Errorf(EINVALID, "room names starting %q are kept for direct conversations", DirectPrefix)
		}
		return Errorf(EINVALID, "a direct conversation is between two different accounts, named in order")
	}
	if room.Name != DirectRoomName(d[0], d[1]) {
		return Errorf(EINVALID, "the room of a direct conversation between %s and %s is named %s", d[0], d[1], DirectRoomName(d[0], d[1]))
	}
	if !room.Private || (room.CreatedBy != d[0] && room.CreatedBy != d[1]) {
		return Errorf(EINVALID, "a direct conversation's room is private, made by one of its two accounts")
	}
	return nil
}

// MaxRoomTopicChars bounds a room's topic.
const MaxRoomTopicChars = 250

// RoomTopic checks a room's topic: one line of valid UTF-8 within MaxRoomTopicChars ("" for
// none). EINVALID otherwise.
func RoomTopic(topic string) error {
	if !utf8.ValidString(topic) || strings.IndexFunc(topic, unicode.IsControl) >= 0 {
		return Errorf(EINVALID, "a room's topic is one line of text")
	}
	if n := utf8.RuneCountInString(topic); n > MaxRoomTopicChars {
		return Errorf(EINVALID, "a room's topic is at most %d characters, not %d", MaxRoomTopicChars, n)
	}
	return nil
}

// Room is a named log. Epoch names this log: it is created with the room and changes only if the
// log is lost or reset.
type Room struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	// Topic is a line the room's moderators set, shown under its title ("" for none).
	Topic     string    `json:"topic,omitempty"`
	LastSeq   int64     `json:"last_seq"`
	Epoch     string    `json:"epoch,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Private rooms are seen only by their members: accounts, the creator first, each added by
	// a member. Set at creation, for good.
	Private bool `json:"private,omitempty"`
	// Direct names the two accounts of a direct conversation, in order: a private room with
	// exactly these members, named DirectRoomName of them, made once by either. Set at creation.
	Direct []string `json:"direct,omitempty"`
	// Changes is how many of the log's entries are edits or deletions (Message.Kind): the room
	// holds LastSeq - Changes messages. The API shows that count, not this field.
	Changes int64 `json:"-"`
}

// FirstMembers returns the members a new room starts with: none for a public room, the creator
// for a private one, both accounts for a direct conversation.
func (r Room) FirstMembers() []string {
	switch {
	case r.Direct != nil:
		return r.Direct
	case r.Private:
		return []string{r.CreatedBy}
	}
	return nil
}

// RoomStore keeps the rooms.
type RoomStore interface {
	// CreateRoom stores a new room with a fresh epoch and LastSeq 0; a private one has its
	// creator (CreatedBy, required) as its first member, a direct conversation's both of its
	// accounts (in the same step). Errors: EINVALID (bad name or title, a private room without a
	// creator, a bad direct conversation), ECONFLICT (exists).
	CreateRoom(ctx context.Context, room Room) (Room, error)
	// AddMember makes user (an account: the caller checks) a member of room; again is no error.
	// ENOTFOUND if room does not exist.
	AddMember(ctx context.Context, room, user, addedBy string) error
	// RemoveMember takes user out of room's members (not being one is no error); on a store that
	// several nodes share, every node hears of it (natter on Redis: OnRevoke). ENOTFOUND if room
	// does not exist.
	RemoveMember(ctx context.Context, room, user string) error
	// IsMember reports whether user is a member of room (false for a public room's users: public
	// rooms have no members).
	IsMember(ctx context.Context, room, user string) (bool, error)
	// Members lists room's members by name.
	Members(ctx context.Context, room string) ([]string, error)
	// Room returns one room with its current LastSeq. ENOTFOUND if absent.
	Room(ctx context.Context, name string) (Room, error)
	// Rooms lists every room by name.
	Rooms(ctx context.Context) ([]Room, error)
	// SetRoomTitle gives a room a new title (empty: its name) and returns the room. Errors:
	// EINVALID (a bad title), ENOTFOUND.
	SetRoomTitle(ctx context.Context, name, title string) (Room, error)
	// SetRoomTopic gives a room a new topic ("" for none) and returns the room. Errors:
	// EINVALID (RoomTopic), ENOTFOUND.
	SetRoomTopic(ctx context.Context, name, topic string) (Room, error)
	// DeleteRoom deletes the room and everything of it (its log, pins, bans, members) at once:
	// from then on every call about it answers as for a room that never existed (ENOTFOUND), an
	// append queued behind the deletion included, and its name is never used again (CreateRoom:
	// ECONFLICT), so that no link, cursor or mark meant for it reaches another room. by is who
	// deleted it. On a store that several nodes share, every node hears of it (natter on Redis:
	// OnRevoke). ENOTFOUND if there is no such room.
	DeleteRoom(ctx context.Context, name, by string) error
}

// ErrRoomDeleted is wrapped by DeletedRoomError (errors.Is).
var ErrRoomDeleted = errors.New("the room was deleted")

// DeletedRoomError is the error CreateRoom gives for the name of a deleted room: ECONFLICT,
// wrapping ErrRoomDeleted.
func DeletedRoomError(name string) error {
	return &Error{Code: ECONFLICT, Message: fmt.Sprintf("a room named %q was deleted, and the name of a deleted room is not used again", name), Err: ErrRoomDeleted}
}
