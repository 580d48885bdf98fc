package server

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"natter"
)

// Moderation: a room's moderators (the account that created it, and the server's admins,
// Config.Admins) may ban a user from posting in it: no messages, edits, reactions or typing
// notices there, on any transport, until a moderator lifts the ban. The banned user still reads
// the room and may delete their own messages. Admins may also suspend an account: its sessions
// end at once, on every node, and it may not sign in again until reinstated. Direct
// conversations have no moderators.
//
// Each node keeps the bans of the rooms it has met in memory, so that a send costs no store read;
// a ban or its lift made here, or on another node (natter on Redis: OnRevoke), makes the node read
// that room's bans again (BanChanged), and losing the store's notes forgets them all
// (RecheckSessions).

// banCache holds the banned users of each room this node has read the bans of. Every send looks
// here, so a look takes no lock; a set, once stored, is never changed: a change replaces it.
type banCache struct {
	rooms sync.Map      // room -> banSet
	gen   atomic.Uint64 // counts forget calls, so that a read begun before one is not kept
	mu    sync.Mutex    // orders put against forget
}

type banSet map[string]natter.Ban // by user; a ban read may have ended since (Ban.Active)

// get returns room's bans if known, and the generation to put them with if not.
func (c *banCache) get(room string) (banSet, uint64, bool) {
	gen := c.gen.Load()
	set, ok := c.rooms.Load(room)
	if !ok {
		return nil, gen, false
	}
	return set.(banSet), gen, true
}

// put keeps set as room's bans, unless a forget came after the read began (gen).
func (c *banCache) put(room string, set banSet, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() == gen {
		c.rooms.Store(room, set)
	}
}

// forget drops room's bans ("" drops every room's).
func (c *banCache) forget(room string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if room == "" {
		c.rooms.Clear()
		return
	}
	c.rooms.Delete(room)
}

// roomBans returns room's banned users, from memory or read from the store.
func (s *Server) roomBans(ctx context.Context, room string) (banSet, error) {
	set, gen, ok := s.bans.get(room)
	if ok {
		return set, nil
	}
	list, err := s.store.Bans(ctx, room)
	if err != nil {
		return nil, err
	}
	set = make(banSet, len(list))
	for _, b := range list {
		set[b.User] = b
	}
	s.bans.put(room, set, gen)
	return set, nil
}

// activeBan returns user's ban in room if it bars them now.
func (s *Server) activeBan(ctx context.Context, user, room string) (natter.Ban, bool, error) {
	set, err := s.roomBans(ctx, room)
	if err != nil {
		return natter.Ban{}, false, err
	}
	b, ok := set[user]
	return b, ok && b.Active(time.Now()), nil
}

// checkBanned answers EFORBIDDEN when user is banned from posting in room, saying until when and
// why where the ban says.
func (s *Server) checkBanned(ctx context.Context, user, room string) error {
	b, banned, err := s.activeBan(ctx, user, room)
	if err != nil || !banned {
		return err
	}
	terms := ": a moderator may lift the ban"
	if !b.Until.IsZero() {
		terms = " until " + b.Until.UTC().Format(time.RFC3339) + terms
	}
	if b.Reason != "" {
		terms = " (" + b.Reason + ")" + terms
	}
	return natter.Errorf(natter.EFORBIDDEN, "%s is banned from posting in room %q%s", user, room, terms)
}

// banFrame tells a room's subscribers that a user's ban changed: made (with its end and reason,
// if it has them) or lifted.
type banFrame struct {
	Type   string    `json:"type"`
	Room   string    `json:"room"`
	User   string    `json:"user"`
	Banned bool      `json:"banned"`
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// BanChanged applies a ban, or its lift, of user in room, made here or on another node that
// shares the store: the node reads the room's bans again and, if user's changed, tells the
// room's WebSocket and SSE subscribers ({"type": "ban", "room", "user", "banned", "until",
// "reason"}). A ban that ends by itself is told to nobody: clients end it at its "until".
func (s *Server) BanChanged(room, user string) {
	old, _, known := s.bans.get(room)
	s.bans.forget(room)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	set, err := s.roomBans(ctx, room)
	if err != nil {
		s.logger.Warn("read a room's bans after a change", "room", room, "err", err)
		return
	}
	now, was := set[user]
	if prev, had := old[user]; known && had == was && prev.Until.Equal(now.Until) && prev.Reason == now.Reason {
		return // told already (the store's echo of this node's own change)
	}
	s.hub.Tell(room, "ban", banFrame{Type: "ban", Room: room, User: user, Banned: was, Until: now.Until, Reason: now.Reason})
}

type bansBody struct {
	Room string       `json:"room"`
	Bans []natter.Ban `json:"bans"`
}

// moderatedRoomFromPath reads the path's room for one of its moderators: EFORBIDDEN for others
// (ENOTFOUND for those who can't see it).
func (s *Server) moderatedRoomFromPath(r *http.Request, what string) (natter.Room, error) {
	room, err := s.roomFromPath(r)
	if err != nil {
		return room, err
	}
	if err := directFixed(room, "nobody moderates it"); err != nil {
		return room, err
	}
	ok, err := s.moderates(r.Context(), authFrom(r.Context()).user, room)
	if err != nil {
		return room, err
	}
	if !ok {
		return room, natter.Errorf(natter.EFORBIDDEN, "only the account that created room %q, or an admin, may %s", room.Name, what)
	}
	return room, nil
}

// handleBans lists a room's bans, for its moderators.
func (s *Server) handleBans(w http.ResponseWriter, r *http.Request) {
	room, err := s.moderatedRoomFromPath(r, "see its bans")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	bans, err := s.store.Bans(r.Context(), room.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, bansBody{Room: room.Name, Bans: bans})
}

// banRequest is the optional body of a ban: how long it lasts (natter.ParseBanFor; none: until
// lifted) and why.
type banRequest struct {
	For    string `json:"for"`
	Reason string `json:"reason"`
}

// handleBan bans the path's user from posting in the room: 204, also when they were already (the
// new terms replace the old).
func (s *Server) handleBan(w http.ResponseWriter, r *http.Request) {
	var req banRequest
	if r.ContentLength != 0 { // a body is optional: none bans until lifted, without a reason
		if err := decodeJSON(w, r, maxJSONRequestBytes, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	d, err := natter.ParseBanFor(req.For)
	if err == nil {
		err = natter.CheckBanReason(req.Reason)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	room, err := s.moderatedRoomFromPath(r, "ban from it")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	by, name := authFrom(r.Context()).user, r.PathValue("user")
	if !natter.ValidUserName(name) {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "%q is not a user name", name))
		return
	}
	if name == by.Name {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "a moderator can't ban themselves"))
		return
	}
	// Another moderator of the room can't be banned from it. A guest may carry an admin's or
	// the creator's name only while no account has it; such a guest may be banned.
	if name == room.CreatedBy || s.admins[name] {
		ok, err := s.moderates(r.Context(), natter.User{Name: name}, room)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if ok {
			s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "%s moderates room %q and can't be banned from it", name, room.Name))
			return
		}
	}
	if err := s.changes.allow(by.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	ban := natter.Ban{User: name, By: by.Name, Reason: req.Reason}
	if d > 0 {
		ban.Until = time.Now().Add(d).UTC()
	}
	if err := s.store.BanUser(r.Context(), room.Name, ban); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.bans.Add(1)
	s.logger.Info("moderation: banned from posting", "room", room.Name, "user", name, "by", by.Name, "for", req.For, "reason", req.Reason)
	s.BanChanged(room.Name, name)
	w.WriteHeader(http.StatusNoContent)
}

// handleUnban lifts the path's user's ban in the room: 204, also when there was none.
func (s *Server) handleUnban(w http.ResponseWriter, r *http.Request) {
	room, err := s.moderatedRoomFromPath(r, "lift its bans")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	name := r.PathValue("user")
	if !natter.ValidUserName(name) {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "%q is not a user name", name))
		return
	}
	if err := s.changes.allow(authFrom(r.Context()).user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.UnbanUser(r.Context(), room.Name, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.Info("moderation: ban lifted", "room", room.Name, "user", name, "by", authFrom(r.Context()).user.Name)
	s.BanChanged(room.Name, name)
	w.WriteHeader(http.StatusNoContent)
}

// isAdmin reports whether user is one of the server's admins: an account (not a guest) named in
// Config.Admins.
func (s *Server) isAdmin(ctx context.Context, user natter.User) (bool, error) {
	if user.Guest || !s.admins[user.Name] {
		return false, nil
	}
	_, err := s.account(ctx, user.Name, "")
	if natter.ErrorCode(err) == natter.ENOTFOUND {
		return false, nil
	}
	return err == nil, err
}

// requireAdmin answers EFORBIDDEN unless user is one of the server's admins; what names the
// refused action.
func (s *Server) requireAdmin(ctx context.Context, user natter.User, what string) error {
	ok, err := s.isAdmin(ctx, user)
	if err == nil && !ok {
		err = natter.Errorf(natter.EFORBIDDEN, "only this server's admins (natter serve --admins) may %s", what)
	}
	return err
}

// handleSuspend suspends (PUT) or reinstates (DELETE) the path's account, for admins: 204. A
// suspended account's sessions end at once and it may not sign in until reinstated; its
// messages stay.
func (s *Server) handleSuspend(w http.ResponseWriter, r *http.Request) {
	user, name := authFrom(r.Context()).user, r.PathValue("name")
	if err := s.requireAdmin(r.Context(), user, "suspend accounts"); err != nil {
		s.writeError(w, r, err)
		return
	}
	suspend := r.Method == http.MethodPut
	if suspend && (name == user.Name || s.admins[name]) {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "%s is an admin and can't be suspended (take it out of --admins first)", name))
		return
	}
	if !natter.ValidUserName(name) {
		s.writeError(w, r, natter.Errorf(natter.ENOTFOUND, "no account named %q", name))
		return
	}
	if err := s.changes.allow(user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.SetSuspended(r.Context(), name, suspend); err != nil {
		if natter.ErrorCode(err) == natter.ENOTFOUND {
			err = natter.Errorf(natter.ENOTFOUND, "no account named %q", name)
		}
		s.writeError(w, r, err)
		return
	}
	if !suspend {
		s.logger.Info("moderation: account reinstated", "user", name, "by", user.Name)
	} else {
		s.logger.Info("moderation: account suspended", "user", name, "by", user.Name)
		s.metrics.suspensions.Add(1)
		if _, err := s.revokeUserSessions(r.Context(), name, ""); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleSuspensions lists the suspended accounts, for admins: {"users": [...]} by name.
func (s *Server) handleSuspensions(w http.ResponseWriter, r *http.Request) {
	if err := s.requireAdmin(r.Context(), authFrom(r.Context()).user, "list suspended accounts"); err != nil {
		s.writeError(w, r, err)
		return
	}
	names, err := s.store.Suspended(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]string{"users": names})
}

type passwordReset struct {
	NewPassword string `json:"new_password"`
}

// handleResetPassword gives the path's account a new password, for admins: 204. For an account
// whose owner lost the password (natter sends no mail): every session of the account ends, with
// its connections, and the admin passes the new password on. Not for admins' accounts: each
// changes its own (PUT /api/account/password).
func (s *Server) handleResetPassword(w http.ResponseWriter, r *http.Request) {
	var req passwordReset
	if err := decodeJSON(w, r, maxJSONRequestBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	user, name := authFrom(r.Context()).user, r.PathValue("name")
	if err := s.requireAdmin(r.Context(), user, "reset passwords"); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.admins[name] {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "%s is an admin: admins change their own passwords (PUT /api/account/password)", name))
		return
	}
	if err := s.checkNewPassword(req.NewPassword); err != nil {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "new %s", natter.ErrorMessage(err)))
		return
	}
	if _, err := s.account(r.Context(), name, ""); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.changes.allow(user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	var hash string
	if err := s.withHashSlot(r.Context(), func() { hash = hashPassword(req.NewPassword) }); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.SetPasswordHash(r.Context(), name, hash); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.Info("moderation: password reset", "user", name, "by", user.Name)
	if _, err := s.revokeUserSessions(r.Context(), name, ""); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// suspendedError is the refusal of a suspended account's sign-in.
func suspendedError(name string) error {
	return natter.Errorf(natter.EFORBIDDEN, "the account %s is suspended: ask this server's operator", name)
}

// adminSet checks and indexes Config.Admins.
func adminSet(names []string) (map[string]bool, error) {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		if !natter.ValidUserName(n) {
			return nil, natter.Errorf(natter.EINVALID, "admins: %q is not a user name", n)
		}
		set[n] = true
	}
	return set, nil
}
