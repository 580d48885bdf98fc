// Package client is the Go client of natter's wire contract (PROTOCOL.md). The CLI, the load
// generator and the tests use it.
//
// A Client holds a base URL and, once signed in, a bearer token that it sends with every call.
// API errors come back as *natter.Error carrying the contract's code. Calls that are safe to
// repeat (reads, and sends, which carry a client_id) are retried on transient failures; Subscribe
// (and Follow) deliver a room's messages exactly once, in order, across reconnects.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"natter"
	"natter/ws"
)

// Defaults for the Client's options.
const (
	DefaultAttempts    = 6                      // tries of a retried call, the first included
	DefaultMinBackoff  = 100 * time.Millisecond // first wait before a retry or a reconnect
	DefaultMaxBackoff  = 5 * time.Second        // longest wait between retries or reconnects
	DefaultIdleTimeout = 90 * time.Second       // silence after which a stream counts as dead

	// maxResponseBytes bounds an API answer: a page of 1,000 messages of 4,096 characters each,
	// escaped, stays well below it.
	maxResponseBytes = 64 << 20
)

// Client talks to one natter server. It is safe for concurrent use.
type Client struct {
	base        *url.URL
	http        *http.Client
	dialer      *ws.Dialer
	attempts    int
	minBackoff  time.Duration
	maxBackoff  time.Duration
	idleTimeout time.Duration

	mu    sync.Mutex
	token string
	user  natter.User
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with hc. Its Timeout is ignored for the
// requests that stream or wait (SSE, long-polls); contexts bound every call instead.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithDialer makes the Client open WebSockets with d. By default it uses a ws.Dialer with the
// TLS configuration of the HTTP client's transport, if any.
func WithDialer(d *ws.Dialer) Option { return func(c *Client) { c.dialer = d } }

// WithToken starts the Client signed in with a token from an earlier SignIn.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithRetry sets how often a retried call is tried (attempts, the first included; 1 turns retries
// off) and the bounds of the exponential backoff between tries and between reconnects.
// Non-positive values keep the defaults.
func WithRetry(attempts int, minBackoff, maxBackoff time.Duration) Option {
	return func(c *Client) {
		if attempts > 0 {
			c.attempts = attempts
		}
		if minBackoff > 0 {
			c.minBackoff = minBackoff
		}
		if maxBackoff > 0 {
			c.maxBackoff = maxBackoff
		}
	}
}

// WithIdleTimeout sets how long a WebSocket or SSE stream may stay completely silent (servers
// send keepalives at least every 25 s) before the Client drops it and reconnects.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.idleTimeout = d
		}
	}
}

// New returns a Client of the server at baseURL (e.g. "http://localhost:8080"; a path prefix is
// kept). A baseURL that doesn't parse makes every call fail with EINVALID.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{
		http:        &http.Client{},
		attempts:    DefaultAttempts,
		minBackoff:  DefaultMinBackoff,
		maxBackoff:  DefaultMaxBackoff,
		idleTimeout: DefaultIdleTimeout,
	}
	if u, err := url.Parse(strings.TrimRight(baseURL, "/")); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		c.base = u
	}
	for _, o := range opts {
		o(c)
	}
	if c.maxBackoff < c.minBackoff {
		c.maxBackoff = c.minBackoff
	}
	if c.dialer == nil {
		c.dialer = &ws.Dialer{}
		if t, ok := c.http.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
			c.dialer.TLSConfig = t.TLSClientConfig
		}
	}
	return c
}

// Token returns the bearer token of the current session, or "" when signed out.
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// User returns the user of the session SignIn opened (the zero User after WithToken).
func (c *Client) User() natter.User {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

type credentials struct {
	Name     string `json:"name"`
	Password string `json:"password,omitempty"`
}

// Register creates an account. Errors: EINVALID (name or password), ECONFLICT (name taken).
func (c *Client) Register(ctx context.Context, name, password string) error {
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/api/users", in: credentials{name, password}})
	return err
}

// SignIn opens a session and keeps its token for later calls. An empty password signs in as a
// guest, where the server allows guests. Errors: EINVALID, EUNAUTHORIZED.
func (c *Client) SignIn(ctx context.Context, name, password string) error {
	var out struct {
		Token string      `json:"token"`
		User  natter.User `json:"user"`
	}
	// Retried only where the server says it did nothing (429, 503): a lost answer would strand a
	// session, which costs little, but the contract promises nothing about repeating it.
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/api/session", in: credentials{name, password}, out: &out}); err != nil {
		return err
	}
	if out.Token == "" {
		return &natter.Error{Code: natter.EINTERNAL, Message: "sign-in answer has no token"}
	}
	c.mu.Lock()
	c.token, c.user = out.Token, out.User
	c.mu.Unlock()
	return nil
}

// ChangePassword sets the account's password to next, given its current one. The account's other
// sessions end; this one goes on. Errors: EFORBIDDEN (a wrong current password, or a guest),
// EINVALID (a new password the server refuses), ERATELIMITED (too many wrong ones).
func (c *Client) ChangePassword(ctx context.Context, current, next string) error {
	in := struct {
		Password    string `json:"password"`
		NewPassword string `json:"new_password"`
	}{current, next}
	_, err := c.do(ctx, call{method: http.MethodPut, path: "/api/account/password", in: in})
	return err
}

// SignOutEverywhere ends every session of the account, this one too, and forgets the token.
// Errors: EFORBIDDEN (a guest: only SignOut).
func (c *Client) SignOutEverywhere(ctx context.Context) error {
	return c.endSession(ctx, "/api/account/sessions")
}

// SignOut ends the session at the server and forgets the token. A session the server no longer
// knows counts as ended.
func (c *Client) SignOut(ctx context.Context) error { return c.endSession(ctx, "/api/session") }

// endSession DELETEs path and forgets the token, also when the server no longer knew the session.
func (c *Client) endSession(ctx context.Context, path string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: path, idempotent: true})
	if err == nil || natter.ErrorCode(err) == natter.EUNAUTHORIZED {
		c.mu.Lock()
		c.token, c.user = "", natter.User{}
		c.mu.Unlock()
		return nil
	}
	return err
}

// Rooms lists every room with its last seq.
func (c *Client) Rooms(ctx context.Context) ([]natter.Room, error) {
	var out struct {
		Rooms []natter.Room `json:"rooms"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/api/rooms", out: &out, idempotent: true})
	return out.Rooms, err
}

// CreateRoom creates a room. Errors: EINVALID (name or title), ECONFLICT (it exists).
func (c *Client) CreateRoom(ctx context.Context, name, title string) (natter.Room, error) {
	return c.createRoom(ctx, name, title, false)
}

// CreatePrivateRoom creates a room only its members see, this account the first (AddMember adds
// more). Errors: CreateRoom's, and EFORBIDDEN for a guest.
func (c *Client) CreatePrivateRoom(ctx context.Context, name, title string) (natter.Room, error) {
	return c.createRoom(ctx, name, title, true)
}

func (c *Client) createRoom(ctx context.Context, name, title string, private bool) (natter.Room, error) {
	var out struct {
		Room natter.Room `json:"room"`
	}
	in := struct {
		Name    string `json:"name"`
		Title   string `json:"title"`
		Private bool   `json:"private,omitempty"`
	}{name, title, private}
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/api/rooms", in: in, out: &out})
	return out.Room, err
}

// RenameRoom gives the room a new title (empty: its name): only the account that created it may.
// Its WebSocket subscribers get a "room" Frame with the new Title. Errors: EFORBIDDEN (not the
// creator, a direct conversation), EINVALID (a title over 200 characters), ENOTFOUND.
func (c *Client) RenameRoom(ctx context.Context, room, title string) (natter.Room, error) {
	var out struct {
		Room natter.Room `json:"room"`
	}
	in := struct {
		Title string `json:"title"`
	}{title}
	_, err := c.do(ctx, call{method: http.MethodPatch, path: "/api/rooms/" + url.PathEscape(room), in: in, out: &out, idempotent: true})
	return out.Room, err
}

// DeleteAccount deletes this client's account after its password: its sessions end (this
// client's too), it leaves its private rooms, and its name is never used again; with erase, the
// words of every message and edit it wrote are erased first, in every room. Errors: EFORBIDDEN
// (a guest, a wrong password).
func (c *Client) DeleteAccount(ctx context.Context, password string, erase bool) error {
	in := struct {
		Password      string `json:"password"`
		EraseMessages bool   `json:"erase_messages"`
	}{password, erase}
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/api/account", in: in})
	return err
}

// DeleteRoom deletes the room with everything in it, for its moderators (its creator, the
// server's admins): from then on it does not exist (ENOTFOUND) for anyone, and its name is never
// used again. Its WebSocket subscribers get an "error" Frame with Code not_found and Ref the room.
// Errors: EFORBIDDEN (not a moderator, a direct conversation), EINVALID (the lobby), ENOTFOUND.
func (c *Client) DeleteRoom(ctx context.Context, room string) error {
	// Not repeated on its own: a repeat of a deletion that was made answers ENOTFOUND.
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/api/rooms/" + url.PathEscape(room)})
	return err
}

// SetRoomTopic gives the room a new topic ("" for none), for its moderators: one line of at most
// 250 characters. Its WebSocket subscribers get a "room" Frame with it. Errors: EFORBIDDEN (not
// a moderator, a direct conversation), EINVALID, ENOTFOUND.
func (c *Client) SetRoomTopic(ctx context.Context, room, topic string) (natter.Room, error) {
	var out struct {
		Room natter.Room `json:"room"`
	}
	in := struct {
		Topic string `json:"topic"`
	}{topic}
	_, err := c.do(ctx, call{method: http.MethodPatch, path: "/api/rooms/" + url.PathEscape(room), in: in, out: &out, idempotent: true})
	return out.Room, err
}

// Direct opens the direct conversation between this account and the account user: a private
// room of the two (natter.Room.Direct), made the first time either asks, the same room after.
// Send to it and read it by its Name like any room. Errors: EFORBIDDEN (a guest), ENOTFOUND (no
// such account), EINVALID (oneself, a bad name).
func (c *Client) Direct(ctx context.Context, user string) (natter.Room, error) {
	var out struct {
		Room natter.Room `json:"room"`
	}
	in := struct {
		User string `json:"user"`
	}{user}
	// Safe to repeat: asking again opens the same room.
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/api/dms", in: in, out: &out, idempotent: true})
	return out.Room, err
}

// AddMember makes the account user a member of the private room (this client's user must be
// one). Errors: ENOTFOUND (no such room to this user, or no such account), EINVALID (a public
// room).
func (c *Client) AddMember(ctx context.Context, room, user string) error {
	_, err := c.do(ctx, call{method: http.MethodPut, path: "/api/rooms/" + url.PathEscape(room) + "/members/" + url.PathEscape(user), idempotent: true})
	return err
}

// RemoveMember takes user out of the private room: the room's creator removes anyone else, any
// member may remove itself (leave). Errors: EFORBIDDEN, EINVALID (the creator, a public room),
// ENOTFOUND.
func (c *Client) RemoveMember(ctx context.Context, room, user string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/api/rooms/" + url.PathEscape(room) + "/members/" + url.PathEscape(user), idempotent: true})
	return err
}

// Members lists a private room's members (none for a public room).
func (c *Client) Members(ctx context.Context, room string) ([]string, error) {
	var out struct {
		Members []string `json:"members"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/api/rooms/" + url.PathEscape(room) + "/members", out: &out, idempotent: true})
	return out.Members, err
}

// NewInvite is an invite just made: the only time its code is shown.
type NewInvite struct {
	natter.Invite
	Code string `json:"code"`
	Link string `json:"link"` // the join page, a path on the server: the link to share
}

// CreateInvite makes an invite to a private room (for its members): it works for ttl (0:
// natter.DefaultInviteTTL; else natter.MinInviteTTL to natter.MaxInviteTTL) and for maxUses
// accounts (0: any number). Errors: EINVALID (bad terms, a public room), EFORBIDDEN (a direct
// conversation), ECONFLICT (the room holds natter.MaxRoomInvites), ENOTFOUND.
func (c *Client) CreateInvite(ctx context.Context, room string, ttl time.Duration, maxUses int) (NewInvite, error) {
	var out struct {
		Invite NewInvite `json:"invite"`
	}
	in := struct {
		ExpiresIn string `json:"expires_in,omitempty"`
		MaxUses   int    `json:"max_uses"`
	}{MaxUses: maxUses}
	if ttl != 0 {
		in.ExpiresIn = ttl.String()
	}
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/api/rooms/" + url.PathEscape(room) + "/invites", in: in, out: &out})
	return out.Invite, err
}

// Invites lists a private room's invites that still work, the newest first (for its members).
func (c *Client) Invites(ctx context.Context, room string) ([]natter.Invite, error) {
	var out struct {
		Invites []natter.Invite `json:"invites"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/api/rooms/" + url.PathEscape(room) + "/invites", out: &out, idempotent: true})
	return out.Invites, err
}

// RevokeInvite deletes a room's invite by its ID: its maker or a moderator of the room.
// Errors: EFORBIDDEN, ENOTFOUND.
func (c *Client) RevokeInvite(ctx context.Context, room, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/api/rooms/" + url.PathEscape(room) + "/invites/" + url.PathEscape(id)})
	return err
}

// Join makes this client's account a member of a private room by an invite's code (safe to
// repeat: a member already uses none of it). Errors: EFORBIDDEN (a guest), ENOTFOUND (no such
// room, or the invite expired, was used up or revoked).
func (c *Client) Join(ctx context.Context, room, code string) (natter.Room, error) {
	var out struct {
		Room natter.Room `json:"room"`
	}
	in := struct {
		Code string `json:"code"`
	}{code}
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/api/rooms/" + url.PathEscape(room) + "/join", in: in, out: &out, idempotent: true})
	return out.Room, err
}

// Ban bars user from posting in room until a moderator lifts the ban, for the room's
// moderators; banning again replaces the ban's terms. Errors: EFORBIDDEN (not a moderator, or
// user moderates the room), EINVALID (a bad name, or oneself), ENOTFOUND.
func (c *Client) Ban(ctx context.Context, room, user string) error {
	return c.BanWith(ctx, room, user, BanTerms{})
}

// BanTerms are a ban's optional terms: how long it lasts (0: until lifted; else from
// natter.MinBanFor to natter.MaxBanFor) and why (at most natter.MaxBanReasonChars characters on
// one line; shown to the banned user and the room).
type BanTerms struct {
	For    time.Duration
	Reason string
}

// BanWith is Ban with terms. EINVALID for terms out of bounds.
func (c *Client) BanWith(ctx context.Context, room, user string, terms BanTerms) error {
	body := map[string]string{"reason": terms.Reason}
	if terms.For != 0 {
		body["for"] = terms.For.String()
	}
	_, err := c.do(ctx, call{method: http.MethodPut, path: "/api/rooms/" + url.PathEscape(room) + "/bans/" + url.PathEscape(user), in: body, idempotent: true})
	return err
}

// Unban lifts user's ban in room (no ban is no error), for the room's moderators.
func (c *Client) Unban(ctx context.Context, room, user string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/api/rooms/" + url.PathEscape(room) + "/bans/" + url.PathEscape(user), idempotent: true})
	return err
}

// Bans lists room's bans by user name, for the room's moderators.
func (c *Client) Bans(ctx context.Context, room string) ([]natter.Ban, error) {
	var out struct {
		Bans []natter.Ban `json:"bans"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/api/rooms/" + url.PathEscape(room) + "/bans", out: &out, idempotent: true})
	return out.Bans, err
}

// Suspended lists the suspended accounts by name, for the server's admins. EFORBIDDEN for
// anyone else.
func (c *Client) Suspended(ctx context.Context) ([]string, error) {
	var out struct {
		Users []string `json:"users"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/api/suspensions", out: &out, idempotent: true})
	return out.Users, err
}

// Suspend suspends the account user (its sessions end, it can't sign in), or with suspend false
// reinstates it; this client's user must be an admin (natter serve --admins). Errors:
// EFORBIDDEN, ENOTFOUND.
func (c *Client) Suspend(ctx context.Context, user string, suspend bool) error {
	method := http.MethodPut
	if !suspend {
		method = http.MethodDelete
	}
	_, err := c.do(ctx, call{method: method, path: "/api/users/" + url.PathEscape(user) + "/suspension", idempotent: true})
	return err
}

// ResetPassword gives the account user a new password and ends its sessions; this client's user
// must be an admin, and user no admin. Errors: EFORBIDDEN, EINVALID (a password registration
// would refuse), ENOTFOUND.
func (c *Client) ResetPassword(ctx context.Context, user, newPassword string) error {
	in := struct {
		NewPassword string `json:"new_password"`
	}{newPassword}
	_, err := c.do(ctx, call{method: http.MethodPut, path: "/api/users/" + url.PathEscape(user) + "/password", in: in, idempotent: true})
	return err
}

// MarkRead moves the account's read mark in room up to seq, in the room's epoch (natter keeps
// marks that only move forward: a lower seq changes nothing). Errors: EFORBIDDEN (a guest: marks
// are kept for accounts), EINVALID (a seq outside the log), ECONFLICT (the room has another
// epoch), ENOTFOUND.
func (c *Client) MarkRead(ctx context.Context, room, epoch string, seq int64) error {
	in := struct {
		Seq   int64  `json:"seq"`
		Epoch string `json:"epoch"`
	}{seq, epoch}
	_, err := c.do(ctx, call{method: http.MethodPut, path: "/api/rooms/" + url.PathEscape(room) + "/read", in: in, idempotent: true})
	return err
}

// Typing tells room's subscribers (over WebSocket and SSE) that this user is typing, for clients
// that send over HTTP (WSConn.Typing does it on a WebSocket). Errors: ENOTFOUND.
func (c *Client) Typing(ctx context.Context, room string) error {
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/api/rooms/" + url.PathEscape(room) + "/typing", idempotent: true})
	return err
}

// Unread returns, for each room the account has a read mark in, how many messages come after it
// (edits and deletions not counted). Rooms it has never marked are left out; a guest gets none.
func (c *Client) Unread(ctx context.Context) (map[string]int64, error) {
	var out struct {
		Rooms []struct {
			natter.Room
			Unread *int64 `json:"unread"`
		} `json:"rooms"`
	}
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/rooms", out: &out, idempotent: true}); err != nil {
		return nil, err
	}
	unread := make(map[string]int64)
	for _, r := range out.Rooms {
		if r.Unread != nil {
			unread[r.Name] = *r.Unread
		}
	}
	return unread, nil
}

// Mute mutes the room for this client's account (on) or unmutes it: its room views then say
// "muted", and pages count its new messages quietly and notify only of mentions. Errors:
// EFORBIDDEN (a guest), ENOTFOUND.
func (c *Client) Mute(ctx context.Context, room string, on bool) error {
	method := http.MethodDelete
	if on {
		method = http.MethodPut
	}
	_, err := c.do(ctx, call{method: method, path: "/api/rooms/" + url.PathEscape(room) + "/mute", idempotent: true})
	return err
}

// MutedRooms returns the names of the listed rooms this client's account muted.
func (c *Client) MutedRooms(ctx context.Context) ([]string, error) {
	var out struct {
		Rooms []struct {
			natter.Room
			Muted bool `json:"muted"`
		} `json:"rooms"`
	}
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/rooms", out: &out, idempotent: true}); err != nil {
		return nil, err
	}
	muted := []string{}
	for _, r := range out.Rooms {
		if r.Muted {
			muted = append(muted, r.Name)
		}
	}
	return muted, nil
}

// NewClientID returns a random client_id ("c-" and 16 hex digits) for an idempotent send.
func NewClientID() string {
	var b [8]byte
	rand.Read(b[:])
	return "c-" + hex.EncodeToString(b[:])
}

// Send posts body to room with a fresh client_id and returns the stored message. Transient
// failures (network errors, 5xx, 429 after its Retry-After) are retried with the same client_id,
// so a retry never stores the message twice. Errors: EINVALID, ETOOLARGE, ENOTFOUND,
// ERATELIMITED (once the retries are used up), EUNAUTHORIZED.
func (c *Client) Send(ctx context.Context, room, body string) (natter.Message, error) {
	msg, _, err := c.SendWithClientID(ctx, room, body, NewClientID())
	return msg, err
}

// SendWithClientID is Send with the caller's client_id (at most 64 characters). created is false
// when the server already had this message (an earlier send with the same client_id), which it
// then returns.
func (c *Client) SendWithClientID(ctx context.Context, room, body, clientID string) (msg natter.Message, created bool, err error) {
	return c.append(ctx, room, sendBody{Body: body, ClientID: clientID})
}

// Edit replaces the text of the message seq of this user in room with body: it appends an edit
// (Kind natter.KindEdit) and returns it; subscribers get it like any message. Retries are safe.
// Errors: EFORBIDDEN (another's message, or a guest: only accounts change messages), ENOTFOUND
// (no such message), EINVALID (seq is itself an edit or a deletion; an empty body), and Send's.
func (c *Client) Edit(ctx context.Context, room string, seq int64, body string) (natter.Message, error) {
	msg, _, err := c.append(ctx, room, sendBody{Body: body, ClientID: NewClientID(), Kind: natter.KindEdit, Target: seq})
	return msg, err
}

// Delete takes back the message seq of this user in room: it appends a deletion (Kind
// natter.KindDelete) and returns it. Retries are safe. Errors: Edit's.
func (c *Client) Delete(ctx context.Context, room string, seq int64) (natter.Message, error) {
	msg, _, err := c.append(ctx, room, sendBody{ClientID: NewClientID(), Kind: natter.KindDelete, Target: seq})
	return msg, err
}

// React puts this user's reaction emoji (natter.MaxReactionChars at most, no spaces) on the
// message seq of room, or with off takes it back: it appends a change of Kind natter.KindReact
// or natter.KindUnreact and returns it. Retries are safe. Errors: EINVALID, ENOTFOUND.
func (c *Client) React(ctx context.Context, room string, seq int64, emoji string, off bool) (natter.Message, error) {
	kind := natter.KindReact
	if off {
		kind = natter.KindUnreact
	}
	msg, _, err := c.append(ctx, room, sendBody{Body: emoji, ClientID: NewClientID(), Kind: kind, Target: seq})
	return msg, err
}

// Pin pins the message seq of room (for the room's moderators, or either account of a direct
// conversation), or with off unpins it: it appends a change of Kind natter.KindPin or
// natter.KindUnpin and returns it. Retries are safe. Errors: EFORBIDDEN, ECONFLICT (a pin past
// natter.MaxPins, an unpin of a message not pinned, a deleted message), ENOTFOUND.
func (c *Client) Pin(ctx context.Context, room string, seq int64, off bool) (natter.Message, error) {
	kind := natter.KindPin
	if off {
		kind = natter.KindUnpin
	}
	msg, _, err := c.append(ctx, room, sendBody{ClientID: NewClientID(), Kind: kind, Target: seq})
	return msg, err
}

// PinnedMessage is one of a room's pinned messages: the pin, and the message as it was sent.
type PinnedMessage struct {
	natter.Pin
	Message natter.Message `json:"message"`
	// LatestEdit is the message's latest edit, if it was edited: its Body is the text now.
	LatestEdit *natter.Message `json:"latest_edit,omitempty"`
}

// Edits returns message seq of room as it was sent and its edits, oldest first (none once it is
// deleted). Errors: ENOTFOUND (no such message), EINVALID (seq is a change, not a message).
func (c *Client) Edits(ctx context.Context, room string, seq int64) (natter.Message, []natter.Message, error) {
	var out struct {
		Message natter.Message   `json:"message"`
		Edits   []natter.Message `json:"edits"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: fmt.Sprintf("/api/rooms/%s/messages/%d/edits", url.PathEscape(room), seq), out: &out, idempotent: true})
	return out.Message, out.Edits, err
}

// Pins lists room's pinned messages, the latest pinned first.
func (c *Client) Pins(ctx context.Context, room string) ([]PinnedMessage, error) {
	var out struct {
		Pins []PinnedMessage `json:"pins"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/api/rooms/" + url.PathEscape(room) + "/pins", out: &out, idempotent: true})
	return out.Pins, err
}

// Reply sends body to room as an answer to the message seq of that room (natter.Message.ReplyTo),
// with a fresh client_id, so retries are safe. Errors: Send's, and ENOTFOUND when room has no
// message seq.
func (c *Client) Reply(ctx context.Context, room string, seq int64, body string) (natter.Message, error) {
	msg, _, err := c.append(ctx, room, sendBody{Body: body, ClientID: NewClientID(), ReplyTo: seq})
	return msg, err
}

// sendBody is a POST .../messages body.
type sendBody struct {
	Body     string `json:"body"`
	ClientID string `json:"client_id,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Target   int64  `json:"target,omitempty"`
	ReplyTo  int64  `json:"reply_to,omitempty"`
}

func (c *Client) append(ctx context.Context, room string, in sendBody) (msg natter.Message, created bool, err error) {
	clientID := in.ClientID
	var out struct {
		Message natter.Message `json:"message"`
	}
	status, err := c.do(ctx, call{
		method: http.MethodPost, path: "/api/rooms/" + url.PathEscape(room) + "/messages",
		in: in, out: &out, idempotent: clientID != "",
	})
	return out.Message, status == http.StatusCreated, err
}

// Newest, as Query.After, asks for the newest messages of a room rather than those after a seq.
const Newest = -1

// Query selects a page of a room's log. The zero Query reads from the start of the log.
type Query struct {
	// After asks for the messages with seq > After, oldest first. Newest (any negative value)
	// asks for the newest ones instead.
	After int64
	// Before, if > 0, asks for the messages just before seq Before, oldest first; After is then
	// ignored.
	Before int64
	// Limit is the most messages to return; 0 means the server's default (100).
	Limit int
	// Wait makes a read with After a long-poll: if no message is newer than After, the server
	// holds the request up to Wait (at most 60 s) for one.
	Wait time.Duration
}

// Page is one answer of Messages.
type Page struct {
	Room     string           `json:"room"`
	Epoch    string           `json:"epoch"`
	LastSeq  int64            `json:"last_seq"`
	Messages []natter.Message `json:"messages"`
}

// Messages reads a page of room's log as q selects. Errors: EINVALID, ENOTFOUND.
func (c *Client) Messages(ctx context.Context, room string, q Query) (Page, error) {
	v := url.Values{}
	switch {
	case q.Before > 0:
		v.Set("before", strconv.FormatInt(q.Before, 10))
	case q.After >= 0:
		v.Set("after", strconv.FormatInt(q.After, 10))
		if q.Wait > 0 {
			v.Set("wait", strconv.FormatFloat(q.Wait.Seconds(), 'f', -1, 64))
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var page Page
	cl := call{method: http.MethodGet, path: "/api/rooms/" + url.PathEscape(room) + "/messages", query: v, out: &page, idempotent: true}
	if q.Wait > 0 {
		cl.streaming = true
		// The server answers within Wait; past that plus a margin it or the network is stuck.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.Wait+c.idleTimeout)
		defer cancel()
	}
	_, err := c.do(ctx, cl)
	return page, err
}

// SearchPage is one answer of Search: the matches newest first, as they were stored, and the
// latest edit of each that was edited (see natter.SearchResult).
type SearchPage struct {
	Room  string `json:"room"`
	Epoch string `json:"epoch"`
	natter.SearchResult
}

// Search finds room's messages that contain every word of q (any case; "from:NAME" for one
// author's), newest first: up to limit (0: the server's default, 20) from before seq before (0:
// the end of the log). The server reads at most 10,000 entries a request; the page's Before,
// when not 0, is where to go on. Errors: EINVALID, ENOTFOUND.
func (c *Client) Search(ctx context.Context, room, q string, before int64, limit int) (SearchPage, error) {
	v := url.Values{"q": {q}}
	if before > 0 {
		v.Set("before", strconv.FormatInt(before, 10))
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var page SearchPage
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/api/rooms/" + url.PathEscape(room) + "/search", query: v, out: &page, idempotent: true})
	return page, err
}

// Presence returns who is connected to room.
func (c *Client) Presence(ctx context.Context, room string) ([]string, error) {
	var out struct {
		Online []string `json:"online"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/api/rooms/" + url.PathEscape(room) + "/presence", out: &out, idempotent: true})
	return out.Online, err
}

// call is one API request.
type call struct {
	method string
	path   string // below the base URL, escaped
	query  url.Values
	in     any // JSON request body, if not nil
	out    any // decoded from a 2xx answer, if not nil
	// idempotent calls are retried after any transient failure; others only when the server
	// says it did nothing (429, 503).
	idempotent bool
	streaming  bool // may take long: the http.Client's Timeout must not apply
}

// do runs cl, retrying as its kind allows, and returns the final HTTP status.
func (c *Client) do(ctx context.Context, cl call) (int, error) {
	var body []byte
	if cl.in != nil {
		var err error
		if body, err = json.Marshal(cl.in); err != nil {
			return 0, &natter.Error{Code: natter.EINVALID, Message: "request can't be encoded", Err: err}
		}
	}
	b := c.newBackoff()
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := c.doOnce(ctx, cl, body)
		if err == nil || attempt >= c.attempts || !retryable(cl.idempotent, status, err) {
			return status, err
		}
		// A retry is due. A caller that has given up gets its context's error, whether it gave
		// up during the attempt or during the wait.
		if err := sleep(ctx, max(b.next(), retryAfter)); err != nil {
			return status, err
		}
	}
}

// retryable reports whether a failed call may be tried again. A network failure or a 5xx may hide
// a request that took effect, so only idempotent calls retry those; 429 and 503 mean nothing was
// done.
func retryable(idempotent bool, status int, err error) bool {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		return true
	case status >= 500:
		return idempotent
	case status == 0:
		var ne *natter.Error
		return idempotent && !errors.As(err, &ne) // a network error, not a refusal
	}
	return false
}

// doOnce sends one request. status is 0 when no answer arrived.
func (c *Client) doOnce(ctx context.Context, cl call, body []byte) (status int, retryAfter time.Duration, err error) {
	if c.base == nil {
		return 0, 0, &natter.Error{Code: natter.EINVALID, Message: "the client's base URL is not an http:// or https:// URL"}
	}
	target := c.endpoint(cl.path)
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, target, rd)
	if err != nil {
		return 0, 0, &natter.Error{Code: natter.EINVALID, Message: "request can't be built", Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	c.authorize(req.Header)

	hc := c.http
	if cl.streaming && hc.Timeout != 0 {
		copied := *hc
		copied.Timeout = 0
		hc = &copied
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		return 0, 0, fmt.Errorf("natter client: %s %s: %w", cl.method, cl.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		return 0, 0, fmt.Errorf("natter client: %s %s: reading the answer: %w", cl.method, cl.path, err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After")), errorFromResponse(resp.StatusCode, data)
	}
	if cl.out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(data, cl.out); err != nil {
			return resp.StatusCode, 0, &natter.Error{Code: natter.EINTERNAL, Message: fmt.Sprintf("%s %s: the answer is not the expected JSON", cl.method, cl.path), Err: err}
		}
	}
	return resp.StatusCode, 0, nil
}

// endpoint returns the URL of path (escaped, starting with "/") below the base URL.
func (c *Client) endpoint(path string) string {
	return strings.TrimRight(c.base.String(), "/") + path
}

// authorize adds the bearer token, if any, to h.
func (c *Client) authorize(h http.Header) {
	if tok := c.Token(); tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
}

// errorFromResponse turns an error answer into a *natter.Error: the contract's
// {"error": {"code", "message"}} when the body has it, else a code derived from the status (a
// proxy's 502 page, say).
func errorFromResponse(status int, body []byte) *natter.Error {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return &natter.Error{Code: e.Error.Code, Message: e.Error.Message}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return &natter.Error{Code: codeForStatus(status), Message: fmt.Sprintf("HTTP %d %s", status, msg)}
}

// codeForStatus maps an HTTP status without a contract body to the nearest error code.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return natter.EINVALID
	case http.StatusUnauthorized:
		return natter.EUNAUTHORIZED
	case http.StatusForbidden:
		return natter.EFORBIDDEN
	case http.StatusNotFound:
		return natter.ENOTFOUND
	case http.StatusConflict:
		return natter.ECONFLICT
	case http.StatusRequestEntityTooLarge:
		return natter.ETOOLARGE
	case http.StatusTooManyRequests:
		return natter.ERATELIMITED
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return natter.EUNAVAILABLE
	}
	if status < 500 {
		return natter.EINVALID
	}
	return natter.EINTERNAL
}

// refusal is the error of a non-2xx answer: the contract's error, carrying the answer's
// Retry-After (see RetryAfter) when it is a 429 or 503 that has one.
func refusal(resp *http.Response, body []byte) error {
	err := errorFromResponse(resp.StatusCode, body)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if d := parseRetryAfter(resp.Header.Get("Retry-After")); d > 0 {
			return &retryLaterError{err: err, after: d}
		}
	}
	return err
}

// retryLaterError is a refusal that says when to try again.
type retryLaterError struct {
	err   *natter.Error
	after time.Duration
}

func (e *retryLaterError) Error() string { return e.err.Error() }
func (e *retryLaterError) Unwrap() error { return e.err }

// RetryAfter returns how long the server asked to wait before trying again, when err is a
// refusal that said so (429 rate_limited or 503 unavailable with Retry-After, such as a
// WebSocket or event stream refused at the server's connection limits), and 0 otherwise. Follow
// waits at least that long before it reconnects.
func RetryAfter(err error) time.Duration {
	var e *retryLaterError
	if errors.As(err, &e) {
		return e.after
	}
	return 0
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date. Unparseable means 0.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// backoff yields exponentially growing waits with jitter, so that clients that lost the same
// server don't come back in lockstep.
type backoff struct {
	min, max time.Duration
	n        int
}

func (c *Client) newBackoff() *backoff { return &backoff{min: c.minBackoff, max: c.maxBackoff} }

// next returns the next wait: between half and all of min*2^n, capped at max.
func (b *backoff) next() time.Duration {
	d := b.max
	if b.n < 30 && b.min<<b.n < b.max {
		d = b.min << b.n
	}
	b.n++
	return d/2 + mrand.N(d/2+1)
}

// reset starts the backoff over, after a success.
func (b *backoff) reset() { b.n = 0 }

// sleep waits d or until ctx ends, which it reports.
func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
