package natter

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Message is one entry of a room's log. Seq is its place in the room: 1 for the first message and
// exactly one more for each next one, never reused, skipped or reordered.
//
// Most entries are messages (Kind ""). An entry of Kind KindEdit or KindDelete changes the earlier
// message Target of the same author instead: an edit gives it Body as its new text (the edit with
// the highest seq wins), a deletion takes it away (for good: later edits change nothing). The log
// itself never changes: an edit or a deletion is a new entry, delivered, resumed from and paged
// like any message. An entry of Kind KindReact puts the reaction Body (an emoji) of its author on
// message Target, one of KindUnreact takes it off again: for each author, reaction and message,
// the later entry wins. An entry of Kind KindPin pins message Target to the room (a room's
// pinned messages are listed apart: MessageStore.Pins), one of KindUnpin takes it off.
//
// A deletion also erases: from the moment it is stored, every read returns the deleted message
// and its edits with an empty Body and Deleted set (the stores overwrite the text), so the words
// taken back are no longer served to anyone. The entries keep their seq, author, time and kind:
// the log stays gapless.
type Message struct {
	Room     string    `json:"room"`
	Seq      int64     `json:"seq"`
	ID       string    `json:"id"`
	ClientID string    `json:"client_id,omitempty"`
	Author   string    `json:"author"`
	Body     string    `json:"body"`
	TS       time.Time `json:"ts"`
	Kind     string    `json:"kind,omitempty"`
	Target   int64     `json:"target,omitempty"`
	ReplyTo  int64     `json:"reply_to,omitempty"`
	Deleted  bool      `json:"deleted,omitempty"` // a later deletion erased its text (Body is "")
}

// MarkDeleted sets Deleted if a deletion erased m: stores call it on what they read back, where
// only erasing leaves a message or an edit with an empty Body (a deletion's own entry has none
// and is not erased; a reaction is never erased).
func (m *Message) MarkDeleted() {
	m.Deleted = m.Body == "" && (m.Kind == "" || m.Kind == KindEdit)
}

// The kinds of log entries that change an earlier message (Message.Kind).
const (
	KindEdit    = "edit"
	KindDelete  = "delete"
	KindReact   = "react"
	KindUnreact = "unreact"
	KindPin     = "pin"
	KindUnpin   = "unpin"
	// MaxReactionChars bounds a reaction's Body: an emoji, perhaps of several code points (a
	// flag, a family, a skin tone), or a short word.
	MaxReactionChars = 16
)

// IsReaction reports whether kind puts a reaction on a message or takes one off.
func IsReaction(kind string) bool { return kind == KindReact || kind == KindUnreact }

// IsPin reports whether kind pins a message or unpins it.
func IsPin(kind string) bool { return kind == KindPin || kind == KindUnpin }

// MaxPins is how many messages a room may have pinned at once.
const MaxPins = 50

// Pin is a pinned message of a room: its seq, who pinned it and when.
type Pin struct {
	Seq int64     `json:"seq"`
	By  string    `json:"by"`
	At  time.Time `json:"at"`
}

// AppendRequest asks a store to add a message to the end of a room's log.
type AppendRequest struct {
	Room     string
	Author   string
	Body     string
	ClientID string // optional; makes the append idempotent per (Room, Author, ClientID)
	Kind     string // "" (a message), KindEdit, KindDelete, KindReact, KindUnreact, KindPin or KindUnpin
	Target   int64  // with Kind: the seq of the message it changes
	ReplyTo  int64  // a message (no Kind) may answer an earlier message of its room: its seq
}

// Default limits, documented in the README. A zero field of Limits means its default.
const (
	DefaultMaxBodyChars  = 4096
	DefaultMaxFrameBytes = 64 << 10
	DefaultMaxWait       = 60 * time.Second
	DefaultPageSize      = 100
	DefaultMaxPageSize   = 1000
	MaxClientIDChars     = 64
)

// Limits bounds what one request may ask for. Zero fields take the defaults above.
type Limits struct {
	MaxBodyChars  int           // characters (runes) per message body
	MaxFrameBytes int           // bytes per WebSocket frame from a client
	MaxWait       time.Duration // longest long-poll wait
	MaxPageSize   int           // most messages one read returns
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxBodyChars <= 0 {
		l.MaxBodyChars = DefaultMaxBodyChars
	}
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if l.MaxWait <= 0 {
		l.MaxWait = DefaultMaxWait
	}
	if l.MaxPageSize <= 0 {
		l.MaxPageSize = DefaultMaxPageSize
	}
	return l
}

// ValidateAppend checks a request against the contract before anything is stored: a known-good room
// name, a body of 1 to maxBodyChars characters of valid UTF-8 (none for a deletion), a client_id
// of at most 64 characters, a kind with its target (a seq >= 1) or neither, and a reply_to only
// on a message (a seq >= 1). It returns
// EINVALID or ETOOLARGE. Whether the target (or the message answered) exists and is the author's is the server's to check.
func ValidateAppend(req AppendRequest, maxBodyChars int) error {
	if maxBodyChars <= 0 {
		maxBodyChars = DefaultMaxBodyChars
	}
	if !ValidRoomName(req.Room) {
		return Errorf(EINVALID, "room name %q is not valid", req.Room)
	}
	switch req.Kind {
	case "":
		if req.Target != 0 {
			return Errorf(EINVALID, `a target needs a kind ("edit" or "delete")`)
		}
	case KindEdit, KindDelete, KindReact, KindUnreact, KindPin, KindUnpin:
		if req.Target < 1 {
			return Errorf(EINVALID, "%s needs a target: the seq of the message it changes", req.Kind)
		}
	default:
		return Errorf(EINVALID, `kind %q is not one of "edit", "delete", "react", "unreact", "pin" and "unpin"`, req.Kind)
	}
	if req.ReplyTo < 0 || (req.ReplyTo != 0 && req.Kind != "") {
		return Errorf(EINVALID, "reply_to must be the seq (>= 1) of an earlier message, and only a message (not an edit or a deletion) answers one")
	}
	if !utf8.ValidString(req.Body) {
		return Errorf(EINVALID, "message body is not valid UTF-8")
	}
	if req.Kind == KindDelete || IsPin(req.Kind) {
		if req.Body != "" {
			return Errorf(EINVALID, "a %s has no body", map[string]string{KindDelete: "deletion", KindPin: "pin", KindUnpin: "unpin"}[req.Kind])
		}
	} else if req.Body == "" {
		return Errorf(EINVALID, "message body is empty")
	}
	if IsReaction(req.Kind) {
		if n := utf8.RuneCountInString(req.Body); n > MaxReactionChars || strings.IndexFunc(req.Body, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return Errorf(EINVALID, "a reaction is 1 to %d characters without spaces (an emoji), not %q", MaxReactionChars, req.Body)
		}
	}
	if n := utf8.RuneCountInString(req.Body); n > maxBodyChars {
		return Errorf(ETOOLARGE, "message body has %d characters; the limit is %d", n, maxBodyChars)
	}
	if !utf8.ValidString(req.ClientID) {
		return Errorf(EINVALID, "client_id is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(req.ClientID); n > MaxClientIDChars {
		return Errorf(EINVALID, "client_id has %d characters; the limit is %d", n, MaxClientIDChars)
	}
	return nil
}

// MessageStore holds every room's log. Implementations assign seq inside the same atomic step that
// stores the message, and report committed messages, in seq order per room, to the CommitFunc they
// were opened with before AppendMessage returns.
type MessageStore interface {
	// AppendMessage stores req at the end of its room's log once it is durable. created is false
	// when (Room, Author, ClientID) was stored before: the original message is returned and nothing
	// new is stored. Errors: EINVALID, ETOOLARGE (see ValidateAppend), ENOTFOUND (no such room),
	// EUNAVAILABLE (store closed), EINTERNAL.
	AppendMessage(ctx context.Context, req AppendRequest) (msg Message, created bool, err error)

	// FindByClientID returns the message that AppendMessage stored for (Room, Author, ClientID) of
	// req, if any, and stores nothing; Body is ignored and an empty ClientID finds nothing. It sees
	// every append that returned (or, for an AsyncAppender, was queued by the same goroutine)
	// before it was called, so a server can answer a retry with the original even when it refuses
	// new messages. Errors: ENOTFOUND (no such room), EUNAVAILABLE, EINTERNAL.
	FindByClientID(ctx context.Context, req AppendRequest) (msg Message, found bool, err error)

	// MessagesAfter returns up to limit messages with seq > after, oldest first. ENOTFOUND if the
	// room does not exist.
	MessagesAfter(ctx context.Context, room string, after int64, limit int) ([]Message, error)

	// MessagesBefore returns the up to limit messages just before seq before, oldest first. ENOTFOUND
	// if the room does not exist.
	MessagesBefore(ctx context.Context, room string, before int64, limit int) ([]Message, error)

	// ChangesSince returns the newest up to limit edits and deletions of room with seq > after,
	// oldest first, without reading the plain messages between them (a search that starts in the
	// past learns from them which of the older messages were changed since). ENOTFOUND if the
	// room does not exist.
	ChangesSince(ctx context.Context, room string, after int64, limit int) ([]Message, error)

	// Pins lists room's pinned messages, the latest pinned first: those whose last pin or unpin
	// entry is a pin, and not deleted since. ENOTFOUND if the room does not exist.
	Pins(ctx context.Context, room string) ([]Pin, error)
	// ExpireBefore erases, in every room, the words of the messages and edits stored before
	// before, as a deletion erases them (Message.Deleted): their place in the log stays. Other
	// entries (deletions, reactions, pins) keep what little they hold. It returns how many entries
	// it erased. Called again, it goes on from where it got to (each room's log is in time order).
	ExpireBefore(ctx context.Context, before time.Time) (int64, error)
	// EraseAuthor erases, in every room, the words of every message and edit author wrote, as a
	// deletion erases them, and returns how many entries it erased (an account's deletion,
	// UserStore.DeleteUser, may ask for it). Safe to repeat.
	EraseAuthor(ctx context.Context, author string) (int64, error)
	// Edits returns the edits of message target in room, oldest first, each as it reads now (an
	// erased one with Deleted). What it returns for a deleted message is unspecified (its edits
	// are erased, and may no longer be indexed). ENOTFOUND if the room does not exist.
	Edits(ctx context.Context, room string, target int64) ([]Message, error)
}

// AsyncAppender is implemented by stores that can queue an append without waiting for its commit,
// so that one connection can have several messages in flight and still share group commits.
// Appends queued by one goroutine are stored in the order they were queued.
type AsyncAppender interface {
	// AppendMessageAsync validates and queues req, then returns. done is called once, from the
	// store's committer after the commit (and after its CommitFunc), or with the error that kept
	// the message from being stored; it must not block. An error returned here means done will
	// not be called.
	AppendMessageAsync(ctx context.Context, req AppendRequest, done func(msg Message, created bool, err error)) error
}

// CommitFunc receives messages once they are committed, in seq order within each room. Stores call
// it from one goroutine, so it must not block for long: the hub only enqueues.
type CommitFunc func(msgs []Message)
