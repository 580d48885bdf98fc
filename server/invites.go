package server

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"time"

	"natter"
)

// Invites to private rooms: a member makes a link (POST .../invites), which the server shows
// once; an account that opens it joins the room (POST .../join) while the invite works. Members
// list a room's live invites; an invite's maker and the room's moderators revoke one. Making,
// revoking and joining count as changes (--change-rate).

// InvitePath is the page that joins a private room by an invite: the link a member shares.
func InvitePath(room, code string) string {
	return "/join/" + url.PathEscape(room) + "/" + url.PathEscape(code)
}

// newInviteCode returns a new invite's code: 128 random bits, in a URL's alphabet.
func newInviteCode() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// inviteBody is a new invite: the only answer that carries its code.
type inviteBody struct {
	Invite struct {
		natter.Invite
		Code string `json:"code"`
		Link string `json:"link"` // InvitePath: a path on this server
	} `json:"invite"`
}

// invitableRoom reads the room of an invites request: a private room the user is a member of,
// not a direct conversation (whose two members are fixed).
func (s *Server) invitableRoom(r *http.Request) (natter.Room, error) {
	room, err := s.privateRoomFromPath(r)
	if err == nil {
		err = directFixed(room, "no one joins")
	}
	return room, err
}

// handleCreateInvite makes an invite to a private room: {"expires_in": "7d", "max_uses": 5},
// both optional. 201 with the invite, its code and its link.
func (s *Server) handleCreateInvite(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ExpiresIn string `json:"expires_in"`
		MaxUses   int    `json:"max_uses"`
	}
	if err := decodeJSON(w, r, maxJSONRequestBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ttl, err := natter.ParseInviteTTL(req.ExpiresIn)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.MaxUses < 0 || req.MaxUses > natter.MaxInviteUses {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "an invite's max_uses is 0 (any number) to %d, not %d", natter.MaxInviteUses, req.MaxUses))
		return
	}
	room, err := s.invitableRoom(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	user := authFrom(r.Context()).user
	if err := s.changes.allow(user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	code := newInviteCode()
	hash := natter.InviteHash(code)
	now := s.now().UTC().Truncate(time.Millisecond)
	inv := natter.Invite{ID: natter.InviteID(hash), Room: room.Name, CreatedBy: user.Name, CreatedAt: now, ExpiresAt: now.Add(ttl), MaxUses: req.MaxUses}
	if err := s.store.CreateInvite(r.Context(), inv, hash); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.Info("invite made", "room", room.Name, "id", inv.ID, "by", user.Name, "expires", inv.ExpiresAt, "max_uses", inv.MaxUses)
	var body inviteBody
	body.Invite.Invite, body.Invite.Code, body.Invite.Link = inv, code, InvitePath(room.Name, code)
	writeJSON(w, http.StatusCreated, body)
}

// handleInvites lists a private room's live invites, the newest first, to its members.
func (s *Server) handleInvites(w http.ResponseWriter, r *http.Request) {
	room, err := s.invitableRoom(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.store.Invites(r.Context(), room.Name, s.now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": room.Name, "invites": list})
}

// handleRevokeInvite deletes an invite: its maker's or a moderator's. 204.
func (s *Server) handleRevokeInvite(w http.ResponseWriter, r *http.Request) {
	room, err := s.invitableRoom(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	user, id := authFrom(r.Context()).user, r.PathValue("id")
	list, err := s.store.Invites(r.Context(), room.Name, s.now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	maker := ""
	for _, inv := range list {
		if inv.ID == id {
			maker = inv.CreatedBy
		}
	}
	if maker == "" {
		s.writeError(w, r, natter.Errorf(natter.ENOTFOUND, "room %q has no invite %q that still works", room.Name, id))
		return
	}
	if maker != user.Name {
		ok, err := s.moderates(r.Context(), user, room)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !ok {
			s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "only %s, who made invite %s, or a moderator of room %q revokes it", maker, id, room.Name))
			return
		}
	}
	if err := s.changes.allow(user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.store.RevokeInvite(r.Context(), room.Name, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.Info("invite revoked", "room", room.Name, "id", id, "by", user.Name)
	w.WriteHeader(http.StatusNoContent)
}

// handleJoin makes the signed-in account a member of a private room by an invite's code:
// {"code": "..."} → 200 with the room, also for a member already (which uses none of it).
func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
	}
	if err := decodeJSON(w, r, maxJSONRequestBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	user, name := authFrom(r.Context()).user, r.PathValue("room")
	if user.Guest {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "members of a private room are accounts: register or sign in to join %q", name))
		return
	}
	if req.Code == "" {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, `give the invite's "code"`))
		return
	}
	if !natter.ValidRoomName(name) || s.isDeleted(name) {
		s.writeError(w, r, natter.Errorf(natter.ENOTFOUND, "no room named %q", name))
		return
	}
	if err := s.changes.allow(user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	inv, err := s.store.UseInvite(r.Context(), name, natter.InviteHash(req.Code), user.Name, s.now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.Info("joined by invite", "room", name, "user", user.Name, "invite", inv.ID, "uses", inv.Uses)
	room, err := s.roomFor(r.Context(), name, user)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	view := s.roomViews(r.Context(), user, room)[0]
	if err := s.withRoles(r.Context(), user, &view); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, roomBody{Room: view})
}

// handleJoinPage is an invite's link: a member already goes to the room; anyone else signed in
// is asked whether to join (a GET changes nothing, so link previews use up no invite).
func (p *pages) handleJoinPage(w http.ResponseWriter, r *http.Request) {
	user := p.signedIn(w, r)
	if user == nil {
		return
	}
	name, code := r.PathValue("room"), r.PathValue("code")
	if !natter.ValidRoomName(name) {
		p.renderError(w, r, http.StatusNotFound, "There is no room named "+name+".")
		return
	}
	if _, err := p.s.roomFor(r.Context(), name, *user); err == nil {
		http.Redirect(w, r, "/rooms/"+url.PathEscape(name), http.StatusSeeOther)
		return
	}
	page := &InvitePage{Room: name, Code: code, Works: true}
	// A link that no longer works says so at once, rather than after Join. The list has no
	// codes, only their ids: a match is checked in full by the join itself.
	if list, err := p.s.store.Invites(r.Context(), name, p.s.now()); natter.ErrorCode(err) == natter.ENOTFOUND {
		page.Works = false
	} else if err == nil {
		page.Works = slices.ContainsFunc(list, func(inv natter.Invite) bool { return inv.ID == natter.InviteID(natter.InviteHash(code)) })
	}
	p.render(w, r, http.StatusOK, "join.html", PageData{Title: "Join #" + name, User: user, Invite: page})
}

// InvitePage is what the join page shows: the room an invite is for, its code, and whether an
// invite with the code's id still works there.
type InvitePage struct {
	Room, Code string
	Works      bool
}
