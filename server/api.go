package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"natter"
)

type roomsBody struct {
	Rooms []RoomView `json:"rooms"`
}

type roomBody struct {
	Room RoomView `json:"room"`
}

// RoomView is a room as one account sees it: with ReadSeq, how far the account has read it, when
// it has a read mark in the room's epoch (never for guests), and NewMessages, how many messages
// came after it (edits and deletions not counted), and how many users are online in it. The API
// encodes them as read_seq and unread, left out when there is no mark, and online; pages use
// Unread.
type RoomView struct {
	natter.Room
	ReadSeq     *int64 `json:"read_seq,omitempty"`
	NewMessages *int64 `json:"unread,omitempty"`
	// Mentions is how many of the newest unread messages (at most mentionScan) of a room that is
	// no direct conversation name the account with "@name" (natter.Mentions), others' only.
	Mentions int64 `json:"mentions,omitempty"`
	Online   int   `json:"online"`   // how many users are online in the room (presence)
	Messages int64 `json:"messages"` // how many messages the log holds: edits and deletions left out
	// With is, in a direct conversation (natter.Room.Direct), the other account: the one the
	// viewer talks with. Pages show it in place of the title.
	With string `json:"with,omitempty"`
	// Moderator and Banned say, in a room read on its own (GET /api/rooms/{room}, the room's
	// page), whether the viewer moderates the room (may ban from it, rename it, delete anyone's
	// message) and whether the viewer is banned from posting in it.
	Moderator bool `json:"moderator,omitempty"`
	Banned    bool `json:"banned,omitempty"`
	// BanUntil and BanReason are the viewer's ban's end (none: until lifted) and reason.
	BanUntil  time.Time `json:"ban_until,omitzero"`
	BanReason string    `json:"ban_reason,omitempty"`
	// Muted says the viewer muted the room (PUT .../mute): pages leave its new messages out of
	// the counts they show, and notify only of those that name the viewer.
	Muted bool `json:"muted,omitempty"`
}

// withRoles fills in v's Moderator and Banned (with the ban's terms) for user.
func (s *Server) withRoles(ctx context.Context, user natter.User, v *RoomView) error {
	var err error
	if v.Moderator, err = s.moderates(ctx, user, v.Room); err != nil {
		return err
	}
	b, banned, err := s.activeBan(ctx, user.Name, v.Name)
	v.Banned = banned
	if banned {
		v.BanUntil, v.BanReason = b.Until, b.Reason
	}
	return err
}

// Unread is how many messages the account has not read: 0 without a read mark.
func (v RoomView) Unread() int64 {
	if v.NewMessages == nil {
		return 0
	}
	return *v.NewMessages
}

// roomViews returns rooms as user sees them. A failure to read the marks is logged and leaves
// them out: the rooms are what was asked for.
func (s *Server) roomViews(ctx context.Context, user natter.User, rooms ...natter.Room) []RoomView {
	views := make([]RoomView, len(rooms))
	for i, r := range rooms {
		views[i].Room = r
		views[i].Online = s.hub.OnlineCount(r.Name)
		views[i].Messages = max(r.LastSeq-r.Changes, 0)
		if len(r.Direct) == 2 {
			views[i].With = r.Direct[0]
			if r.Direct[0] == user.Name {
				views[i].With = r.Direct[1]
			}
		}
	}
	if user.Guest {
		return views
	}
	if muted, err := s.store.MutedRooms(ctx, user.Name); err != nil {
		s.logger.Warn("muted rooms", "user", user.Name, "err", err)
	} else if len(muted) > 0 {
		for i := range views {
			_, views[i].Muted = slices.BinarySearch(muted, views[i].Name)
		}
	}
	marks, err := s.store.ReadMarks(ctx, user.Name)
	if err != nil {
		s.logger.Warn("read marks", "user", user.Name, "err", err)
		return views
	}
	byRoom := make(map[string]natter.ReadMark, len(marks))
	for _, m := range marks {
		byRoom[m.Room] = m
	}
	for i := range views {
		v := &views[i]
		m, ok := byRoom[v.Name]
		if !ok || m.Epoch != v.Epoch {
			continue
		}
		seq := min(m.Seq, v.LastSeq)
		n := v.LastSeq - seq
		if n > 0 {
			changes, err := s.store.ChangesAfter(ctx, v.Name, seq)
			if err != nil {
				s.logger.Warn("count edits and deletions", "room", v.Name, "err", err)
			}
			n = max(n-changes, 0)
		}
		v.ReadSeq, v.NewMessages = &seq, &n
		if n > 0 && v.Direct == nil {
			v.Mentions = s.countMentions(ctx, user.Name, v.Name, seq, v.LastSeq)
		}
	}
	return views
}

// mentionScan bounds the messages of a room read at once for its mentions (RoomView.Mentions).
const mentionScan = 200

// mentionCounts remembers, per account and room, how many of the messages after its read mark
// name it, up to which seq they were read: room lists come every few seconds from every open
// page, and only the messages that arrived since need reading. A new mark starts the count over.
type mentionCounts struct {
	mu sync.Mutex
	m  map[string]mentionCount // user + "\x00" + room
}

type mentionCount struct {
	mark, upTo, n int64
}

// maxMentionCounts bounds mentionCounts: past it, it starts over empty.
const maxMentionCounts = 50_000

// countMentions counts the messages of room after mark, up to last, that others wrote naming
// user: what is remembered, and the messages since (at most the newest mentionScan of those
// unread: a room with more new messages than that between two lists has the rest uncounted). A
// failure to read is logged and counts what was read.
func (s *Server) countMentions(ctx context.Context, user, room string, mark, last int64) int64 {
	key := user + "\x00" + room
	s.mentions.mu.Lock()
	c, ok := s.mentions.m[key]
	s.mentions.mu.Unlock()
	if !ok || c.mark != mark || c.upTo > last {
		c = mentionCount{mark: mark, upTo: mark}
	}
	if c.upTo == last {
		return c.n
	}
	msgs, err := s.store.MessagesAfter(ctx, room, max(c.upTo, last-mentionScan), mentionScan)
	if err != nil {
		s.logger.Warn("count mentions", "room", room, "err", err)
		return c.n
	}
	for _, m := range msgs {
		if m.Seq > last {
			break
		}
		if m.Kind == "" && !m.Deleted && m.Author != user && natter.Mentions(m.Body, user) {
			c.n++
		}
		c.upTo = m.Seq
	}
	c.upTo = max(c.upTo, last) // the rest of the window held nothing more
	s.mentions.mu.Lock()
	if s.mentions.m == nil || len(s.mentions.m) >= maxMentionCounts {
		s.mentions.m = make(map[string]mentionCount)
	}
	s.mentions.m[key] = c
	s.mentions.mu.Unlock()
	return c.n
}

func (s *Server) handleListRooms(w http.ResponseWriter, r *http.Request) {
	rooms, err := s.store.Rooms(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	user := authFrom(r.Context()).user
	writeJSON(w, http.StatusOK, roomsBody{Rooms: s.roomViews(r.Context(), user, s.listedRooms(r.Context(), user, rooms)...)})
}

func (s *Server) handleGetRoom(w http.ResponseWriter, r *http.Request) {
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	user := authFrom(r.Context()).user
	view := s.roomViews(r.Context(), user, room)[0]
	if err := s.withRoles(r.Context(), user, &view); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, roomBody{Room: view})
}

// handleTyping passes on that the user is typing in the room (for clients that receive over SSE
// and send over HTTP): 204, also when the notice is dropped for coming too soon after the last.
func (s *Server) handleTyping(w http.ResponseWriter, r *http.Request) {
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	user := authFrom(r.Context()).user.Name
	if err := s.checkBanned(r.Context(), user, room.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.typing.Add(1)
	s.hub.Typing(room.Name, user)
	w.WriteHeader(http.StatusNoContent)
}

type readMarkRequest struct {
	Seq   *int64 `json:"seq"`
	Epoch string `json:"epoch"`
}

// handleSetReadMark moves the account's read mark in the room forward: 204 when it is stored (or
// already further), guests 403.
func (s *Server) handleSetReadMark(w http.ResponseWriter, r *http.Request) {
	var req readMarkRequest
	if err := decodeJSON(w, r, maxJSONRequestBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.setReadMark(r.Context(), authFrom(r.Context()).user, r.PathValue("room"), req.Epoch, req.Seq); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setReadMark moves user's read mark in room forward, for PUT .../read and the WebSocket read
// frame: EFORBIDDEN for a guest, EINVALID without seq or epoch, ENOTFOUND, and the store's.
func (s *Server) setReadMark(ctx context.Context, user natter.User, room, epoch string, seq *int64) error {
	if user.Guest {
		return natter.Errorf(natter.EFORBIDDEN, "%s is a guest: read marks are kept for accounts only", user.Name)
	}
	if seq == nil || epoch == "" {
		return natter.Errorf(natter.EINVALID, `a read mark needs "seq" (the last message read) and "epoch" (the room's)`)
	}
	if !natter.ValidRoomName(room) {
		return natter.Errorf(natter.ENOTFOUND, "no room named %q", room)
	}
	if err := s.checkRoomName(ctx, user, room); err != nil {
		return err
	}
	err := s.store.SetReadMark(ctx, user.Name, natter.ReadMark{Room: room, Epoch: epoch, Seq: *seq})
	if natter.ErrorCode(err) == natter.ENOTFOUND {
		err = natter.Errorf(natter.ENOTFOUND, "no room named %q", room)
	}
	if err == nil {
		s.metrics.readMarks.Add(1)
	}
	return err
}

type createRoomRequest struct {
	Name    string `json:"name"`
	Title   string `json:"title"`
	Private bool   `json:"private"`
}

func (s *Server) handleCreateRoom(w http.ResponseWriter, r *http.Request) {
	var req createRoomRequest
	if err := decodeJSON(w, r, maxJSONRequestBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !natter.ValidRoomName(req.Name) {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "room name %q is not valid: use 1 to 64 of a-z 0-9 _ - starting with a letter or digit", req.Name))
		return
	}
	if !utf8.ValidString(req.Title) || utf8.RuneCountInString(req.Title) > natter.MaxRoomTitleChars {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "room title must be valid UTF-8 of at most %d characters", natter.MaxRoomTitleChars))
		return
	}
	if strings.HasPrefix(req.Name, natter.DirectPrefix) {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "room names starting %q are kept for direct conversations: POST /api/dms opens one", natter.DirectPrefix))
		return
	}
	user := authFrom(r.Context()).user
	if req.Private && user.Guest {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "%s is a guest: only accounts create private rooms (their members are accounts)", user.Name))
		return
	}
	if err := s.roomsMade.allow(user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	room, err := s.store.CreateRoom(r.Context(), natter.Room{Name: req.Name, Title: req.Title, CreatedBy: user.Name, Private: req.Private})
	if err != nil {
		if natter.ErrorCode(err) == natter.ECONFLICT && !errors.Is(err, natter.ErrRoomDeleted) {
			err = natter.Errorf(natter.ECONFLICT, "a room named %q exists", req.Name)
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, roomBody{Room: s.roomViews(r.Context(), authFrom(r.Context()).user, room)[0]})
}

// handleRenameRoom gives a room a new title: only the account that created it may (as it may
// delete any message in it); 200 with the room.
func (s *Server) handleRenameRoom(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Title *string `json:"title"`
		Topic *string `json:"topic"`
	}
	if err := decodeJSON(w, r, maxJSONRequestBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Title == nil && req.Topic == nil {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, `give the room's new "title" (empty: its name), its new "topic" (empty: none), or both`))
		return
	}
	// Both checked before either is stored: a refusal changes nothing.
	if req.Title != nil {
		if _, err := natter.RoomTitle(r.PathValue("room"), *req.Title); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if req.Topic != nil {
		if err := natter.RoomTopic(*req.Topic); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := directFixed(room, "no one renames it"); err != nil {
		s.writeError(w, r, err)
		return
	}
	user := authFrom(r.Context()).user
	ok, err := s.moderates(r.Context(), user, room)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !ok {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "only the account that created room %q (or an admin) may change its title or topic", room.Name))
		return
	}
	if err := s.changes.allow(authFrom(r.Context()).user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Title != nil {
		if room, err = s.store.SetRoomTitle(r.Context(), room.Name, *req.Title); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if req.Topic != nil {
		if room, err = s.store.SetRoomTopic(r.Context(), room.Name, *req.Topic); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	s.hub.Renamed(room.Name, room.Title, room.Topic) // open pages show it at once
	writeJSON(w, http.StatusOK, roomBody{Room: s.roomViews(r.Context(), user, room)[0]})
}

// roomFromPath reads the room the path names, as the request's user may see it: ENOTFOUND for a
// room that does not exist and for a private room the user is not a member of.
func (s *Server) roomFromPath(r *http.Request) (natter.Room, error) {
	return s.roomFor(r.Context(), r.PathValue("room"), authFrom(r.Context()).user)
}

func (s *Server) roomFor(ctx context.Context, name string, user natter.User) (natter.Room, error) {
	notFound := natter.Errorf(natter.ENOTFOUND, "no room named %q", name)
	if !natter.ValidRoomName(name) {
		return natter.Room{}, notFound
	}
	room, err := s.store.Room(ctx, name)
	if natter.ErrorCode(err) == natter.ENOTFOUND {
		return natter.Room{}, notFound
	}
	if err != nil {
		return natter.Room{}, err
	}
	ok, err := s.canSee(ctx, user, room)
	if err != nil {
		return natter.Room{}, err
	}
	if !ok {
		return natter.Room{}, notFound
	}
	return room, nil
}

type sendRequest struct {
	Body     string `json:"body"`
	ClientID string `json:"client_id"`
	Kind     string `json:"kind"`     // "edit" or "delete" to change an earlier message
	Target   int64  `json:"target"`   // the seq of that message
	ReplyTo  int64  `json:"reply_to"` // the seq of the message this one answers
}

type messageBody struct {
	Message natter.Message `json:"message"`
}

// maxSendRequestBytes bounds a POSTed message: the body limit in the worst case of 12 bytes per
// character (a character above U+FFFF escaped as a surrogate pair, "\ud83d\ude00", as clients that
// escape all non-ASCII send it), plus room for the rest of the object.
func (s *Server) maxSendRequestBytes() int64 {
	return int64(s.limits.MaxBodyChars)*12 + 1024
}

func (s *Server) handlePostMessage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("room")
	var req sendRequest
	if err := decodeJSON(w, r, s.maxSendRequestBytes(), &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	msg, created, err := s.send(r.Context(), authFrom(r.Context()).user, natter.AppendRequest{Room: name, Body: req.Body, ClientID: req.ClientID, Kind: req.Kind, Target: req.Target, ReplyTo: req.ReplyTo})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	writeJSON(w, status, messageBody{Message: msg})
}

// send is the one path by which every transport appends: validation, the rate limit, the store.
func (s *Server) send(ctx context.Context, author natter.User, req natter.AppendRequest) (natter.Message, bool, error) {
	req, stored, err := s.checkSend(ctx, author, req)
	if err != nil {
		return natter.Message{}, false, err
	}
	if stored != nil {
		return *stored, false, nil
	}
	start := time.Now()
	msg, created, err := s.store.AppendMessage(ctx, req)
	s.metrics.sendLatency.observe(time.Since(start))
	if err == nil {
		s.stored(author, msg, created)
	}
	return msg, created, sendError(req, err)
}

// stored counts what a send stored and moves its author's read mark to it (ownMarks).
func (s *Server) stored(author natter.User, msg natter.Message, created bool) {
	if !created {
		return
	}
	switch msg.Kind {
	case natter.KindEdit:
		s.metrics.changes[0].Add(1)
	case natter.KindDelete:
		s.metrics.changes[1].Add(1)
	case natter.KindReact, natter.KindUnreact:
		s.metrics.changes[2].Add(1)
	case natter.KindPin, natter.KindUnpin:
		s.metrics.changes[3].Add(1)
	}
	if !author.Guest {
		s.ownMarks.sent(author.Name, msg.Room, msg.Seq)
	}
}

// storedLookupTimeout bounds the wait for the store to say whether a refused send is stored.
const storedLookupTimeout = 30 * time.Second

// checkSend validates req and takes a token from the author's rate limit. A send the limit refuses
// whose client_id is stored already is a retry (its ack was lost), not new traffic: then stored is
// the original message, which the caller answers as it answers a repeat (created false), and
// err is nil.
func (s *Server) checkSend(ctx context.Context, user natter.User, req natter.AppendRequest) (_ natter.AppendRequest, stored *natter.Message, err error) {
	author := user.Name
	req.Author = author
	if !natter.ValidRoomName(req.Room) {
		return req, nil, natter.Errorf(natter.ENOTFOUND, "no room named %q", req.Room)
	}
	if err := s.checkRoomName(ctx, user, req.Room); err != nil {
		return req, nil, err
	}
	if req.Kind != natter.KindDelete { // a banned user may still delete their own messages
		if err := s.checkBanned(ctx, author, req.Room); err != nil {
			return req, nil, err
		}
	}
	if err := natter.ValidateAppend(req, s.limits.MaxBodyChars); err != nil {
		return req, nil, err
	}
	if req.Kind != "" && !natter.IsReaction(req.Kind) && user.Guest {
		// Anyone may sign in as a guest of a name nobody registered, later or at the same time:
		// a guest name says nothing about who wrote the messages to change.
		return req, nil, natter.Errorf(natter.EFORBIDDEN, "%s is a guest: only accounts may %s messages (a guest name is anyone's who picks it)", author, req.Kind)
	}
	limitErr := s.limiter.allow(author)
	if limitErr != nil {
		defer func() {
			if err != nil { // not a retry of a stored message, which is answered as usual
				s.metrics.rateLimited.Add(1)
			}
		}()
	}
	if limitErr == nil {
		switch {
		case req.Kind != "":
			return req, nil, s.checkTarget(ctx, req)
		case req.ReplyTo != 0:
			return req, nil, s.checkReply(ctx, req)
		}
		return req, nil, nil
	}
	if req.ClientID == "" || s.lookups.allow(author) != nil {
		return req, nil, limitErr
	}
	ctx, cancel := context.WithTimeout(ctx, storedLookupTimeout)
	defer cancel()
	msg, found, err := s.store.FindByClientID(ctx, req)
	if err != nil {
		if natter.ErrorCode(err) == natter.EINTERNAL {
			s.logger.Error("look up a rate-limited send's client_id", "user", author, "room", req.Room, "err", err)
		}
		return req, nil, limitErr // the refusal stands; the client retries later as told
	}
	if !found {
		return req, nil, limitErr
	}
	return req, &msg, nil
}

// checkTarget checks that a change's target is a message (not itself a change) in its room and,
// for an edit or a deletion, its author's account's, written since the account was made, or, for
// a deletion, any message in a room the account created: ENOTFOUND, EINVALID or EFORBIDDEN
// otherwise. Anyone may react to any message.
func (s *Server) checkTarget(ctx context.Context, req natter.AppendRequest) error {
	ctx, cancel := context.WithTimeout(ctx, storedLookupTimeout)
	defer cancel()
	m, err := s.entryAt(ctx, req, req.Target, req.Kind)
	if err != nil {
		return err
	}
	if m.Kind != "" {
		return natter.Errorf(natter.EINVALID, "entry %d is itself a change (%s) of message %d: change that one", req.Target, m.Kind, m.Target)
	}
	if m.Deleted {
		return natter.Errorf(natter.ECONFLICT, "message %d was deleted: there is nothing left to %s", req.Target, req.Kind)
	}
	if natter.IsReaction(req.Kind) {
		return nil // anyone may react to any message
	}
	if natter.IsPin(req.Kind) {
		return s.checkPin(ctx, req)
	}
	if m.Author != req.Author {
		// The room's creator may delete anyone's message in it (spam, abuse), not edit it.
		room, err := s.store.Room(ctx, req.Room)
		if err != nil {
			return sendError(req, err)
		}
		ok := false
		if req.Kind == natter.KindDelete {
			if ok, err = s.moderates(ctx, natter.User{Name: req.Author}, room); err != nil {
				return err
			}
		}
		if !ok {
			return natter.Errorf(natter.EFORBIDDEN, "message %d is %s's: only its author may %s it (and the room's creator delete it)", req.Target, m.Author, req.Kind)
		}
		return nil
	}
	account, err := s.account(ctx, req.Author, "")
	if err != nil {
		return err
	}
	// A message older than the account was written by a guest who picked the same name.
	if m.TS.Before(account.CreatedAt) {
		return natter.Errorf(natter.EFORBIDDEN, "message %d was written before the account %s existed, by a guest of that name: it can't be changed", req.Target, req.Author)
	}
	return nil
}

// entryAt reads the entry seq of req's room, which req would do (verb) to: ENOTFOUND if there is
// none.
func (s *Server) entryAt(ctx context.Context, req natter.AppendRequest, seq int64, verb string) (natter.Message, error) {
	msgs, err := s.store.MessagesAfter(ctx, req.Room, seq-1, 1)
	if err != nil {
		return natter.Message{}, sendError(req, err)
	}
	if len(msgs) == 0 || msgs[0].Seq != seq {
		return natter.Message{}, natter.Errorf(natter.ENOTFOUND, "room %q has no message %d to %s", req.Room, seq, verb)
	}
	return msgs[0], nil
}

// checkReply checks that the message a reply answers is a message (not an edit or a deletion) of
// its room: ENOTFOUND or EINVALID otherwise.
func (s *Server) checkReply(ctx context.Context, req natter.AppendRequest) error {
	ctx, cancel := context.WithTimeout(ctx, storedLookupTimeout)
	defer cancel()
	m, err := s.entryAt(ctx, req, req.ReplyTo, "reply to")
	if err != nil {
		return err
	}
	if m.Kind != "" {
		return natter.Errorf(natter.EINVALID, "entry %d is a change (%s) of message %d, not a message: reply to that one", req.ReplyTo, m.Kind, m.Target)
	}
	return nil
}

// account returns the account named name (the store keeps accounts with their password hashes:
// this reads one without it). ENOTFOUND "no account named ...: why" if there is none.
func (s *Server) account(ctx context.Context, name, why string) (natter.User, error) {
	u, _, err := s.store.UserPasswordHash(ctx, name)
	if err == nil && u.Deleted {
		err = natter.Errorf(natter.ENOTFOUND, "the account was deleted")
	}
	if natter.ErrorCode(err) == natter.ENOTFOUND {
		msg := fmt.Sprintf("no account named %q", name)
		if why != "" {
			msg += ": " + why
		}
		return natter.User{}, natter.Errorf(natter.ENOTFOUND, "%s", msg)
	}
	return u, err
}

// moderates reports whether user may delete anyone's message in room, rename it and ban users
// from it: the account that created it, and the server's admins (Config.Admins). A room older
// than the account was created by a guest who picked the same name, and the lobby has no
// creator.
func (s *Server) moderates(ctx context.Context, user natter.User, room natter.Room) (bool, error) {
	if room.Direct != nil {
		return false, nil // a direct conversation has no moderator
	}
	if s.admins[user.Name] {
		return s.isAdmin(ctx, user)
	}
	if user.Guest || room.CreatedBy == "" || room.CreatedBy != user.Name {
		return false, nil
	}
	account, err := s.account(ctx, user.Name, "")
	if natter.ErrorCode(err) == natter.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !room.CreatedAt.Before(account.CreatedAt), nil
}

// sendError names the room in a store's not-found error.
func sendError(req natter.AppendRequest, err error) error {
	if natter.ErrorCode(err) == natter.ENOTFOUND {
		return natter.Errorf(natter.ENOTFOUND, "no room named %q", req.Room)
	}
	return err
}

type messagesBody struct {
	Room     string           `json:"room"`
	Epoch    string           `json:"epoch"`
	LastSeq  int64            `json:"last_seq"`
	Messages []natter.Message `json:"messages"`
}

// readQuery is a parsed GET .../messages query.
type readQuery struct {
	after, before       int64
	hasAfter, hasBefore bool
	limit               int
	wait                time.Duration
}

func (s *Server) parseReadQuery(r *http.Request) (readQuery, error) {
	q := r.URL.Query()
	rq := readQuery{limit: natter.DefaultPageSize}
	seqParam := func(name string) (int64, bool, error) {
		v := q.Get(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, false, natter.Errorf(natter.EINVALID, "%s must be a seq (a whole number >= 0), not %q", name, v)
		}
		return n, true, nil
	}
	var err error
	if rq.after, rq.hasAfter, err = seqParam("after"); err != nil {
		return rq, err
	}
	if rq.before, rq.hasBefore, err = seqParam("before"); err != nil {
		return rq, err
	}
	if rq.hasAfter && rq.hasBefore {
		return rq, natter.Errorf(natter.EINVALID, "give after or before, not both")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return rq, natter.Errorf(natter.EINVALID, "limit must be a whole number from 1 to %d, not %q", s.limits.MaxPageSize, v)
		}
		rq.limit = min(n, s.limits.MaxPageSize)
	}
	if v := q.Get("wait"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f != f {
			return rq, natter.Errorf(natter.EINVALID, "wait must be a number of seconds from 0 to %d, not %q", int(s.limits.MaxWait/time.Second), v)
		}
		rq.wait = min(time.Duration(f*float64(time.Second)), s.limits.MaxWait)
	}
	return rq, nil
}

func (s *Server) handleReadMessages(w http.ResponseWriter, r *http.Request) {
	rq, err := s.parseReadQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	var msgs []natter.Message
	switch {
	case rq.hasBefore:
		msgs, err = s.store.MessagesBefore(ctx, room.Name, rq.before, rq.limit)
	case rq.hasAfter:
		// A long-polling client is online while it keeps polling: each poll it is answered (not
		// one refused a place by the connection limits) keeps it so.
		online := func() {
			if rq.wait > 0 {
				s.hub.TouchPoller(room.Name, authFrom(ctx).user.Name, s.now().Add(rq.wait+s.cfg.PollerGrace))
			}
		}
		// The hub's notification and last seq: a commit the room read above missed is either
		// counted in published or still to come, and then closes notify.
		notify, published := s.hub.NotifyAfter(room.Name)
		if rq.wait > 0 && rq.after < max(room.LastSeq, published) {
			online()
			// A long-poller behind the room gets what a woken parked poll gets, from the read
			// (and the bytes) it shares with every concurrent poll at the same cursor.
			status, body := s.pollAnswers.do(pollAnswerKey{room.Name, rq.after, rq.limit, true}, func() (int, []byte) {
				return s.readPollAnswer(room.Name, rq, true)
			})
			writeBody(w, status, body)
			return
		}
		// A poller that has everything (the usual case) parks without reading the log.
		if rq.after < max(room.LastSeq, published) {
			s.afterReads.Add(1)
			msgs, err = s.store.MessagesAfter(ctx, room.Name, rq.after, rq.limit)
		}
		if err == nil && len(msgs) == 0 && rq.wait > 0 && !s.draining.Load() {
			if err = s.park(w, r, room.Name, rq, notify); err == nil {
				online()
				return // the parked poll answers later
			}
		}
		if err == nil {
			online()
		}
	default:
		msgs, err = s.store.MessagesBefore(ctx, room.Name, room.LastSeq+1, rq.limit)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Read the room after the messages so that last_seq is never below the newest seq returned.
	if room, err = s.store.Room(ctx, room.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if msgs == nil {
		msgs = []natter.Message{}
	}
	writeJSON(w, http.StatusOK, messagesBody{Room: room.Name, Epoch: room.Epoch, LastSeq: room.LastSeq, Messages: msgs})
}

type presenceBody struct {
	Room   string   `json:"room"`
	Online []string `json:"online"`
}

func (s *Server) handlePresence(w http.ResponseWriter, r *http.Request) {
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, presenceBody{Room: room.Name, Online: s.hub.Online(room.Name)})
}
