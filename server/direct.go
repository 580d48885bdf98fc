package server

import (
	"context"
	"net/http"
	"slices"

	"natter"
)

// Direct conversations are private rooms of exactly two accounts (natter.Room.Direct), one per
// pair: POST /api/dms opens the one with another account, making it the first time. Its name is
// fixed by the pair (natter.DirectRoomName) and kept from every other room, so nobody can take it
// first; both accounts are members from the start, nobody is added or removed, and it keeps its
// title. Nobody moderates one: each deletes only their own messages. Either account may close it
// (DELETE /api/dms/{user}): its lists leave it out until something new is posted in it, or the
// account opens it again.

type directRequest struct {
	User string `json:"user"`
}

// handleDirect opens the direct conversation between the signed-in account and another: 201 with
// its room when this request made it, 200 when it was there.
func (s *Server) handleDirect(w http.ResponseWriter, r *http.Request) {
	var req directRequest
	if err := decodeJSON(w, r, maxJSONRequestBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, user := r.Context(), authFrom(r.Context()).user
	switch {
	case user.Guest:
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "%s is a guest: direct conversations are between accounts", user.Name))
		return
	case !natter.ValidUserName(req.User):
		s.writeError(w, r, natter.Errorf(natter.EINVALID, `give the "user" to talk with: an account's name`))
		return
	case req.User == user.Name:
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "a direct conversation is with another account"))
		return
	}
	if _, err := s.account(ctx, req.User, "direct conversations are between accounts"); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, b := min(user.Name, req.User), max(user.Name, req.User)
	name := natter.DirectRoomName(a, b)
	status := http.StatusOK
	room, err := s.store.Room(ctx, name)
	if natter.ErrorCode(err) == natter.ENOTFOUND {
		// The first time: making it counts among the rooms this user makes.
		if err := s.roomsMade.allow(user.Name); err != nil {
			s.writeError(w, r, err)
			return
		}
		status = http.StatusCreated
		room, err = s.store.CreateRoom(ctx, natter.Room{Name: name, Title: a + ", " + b, CreatedBy: user.Name, Private: true, Direct: []string{a, b}})
	}
	if natter.ErrorCode(err) == natter.ECONFLICT {
		// Made before (the name is kept for this pair's conversation): open it.
		status = http.StatusOK
		room, err = s.store.Room(ctx, name)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.access.private.Store(room.Name, true)
	if status == http.StatusOK {
		s.reopen(ctx, user.Name, room.Name)
	}
	writeJSON(w, status, roomBody{Room: s.roomViews(ctx, user, room)[0]})
}

// reopen forgets that user closed room, if they did: the lists show it again.
func (s *Server) reopen(ctx context.Context, user, room string) {
	closed, err := s.store.HiddenRooms(ctx, user)
	if err == nil && slices.ContainsFunc(closed, func(m natter.ReadMark) bool { return m.Room == room }) {
		err = s.store.ShowRoom(ctx, user, room)
	}
	if err != nil {
		s.logger.Warn("reopen a direct conversation", "user", user, "room", room, "err", err)
	}
}

// handleCloseDirect closes the signed-in account's direct conversation with the path's account:
// 204, and its room lists leave it out until something new is posted in it (by either) or it is
// opened again (POST /api/dms). Nothing else changes: the other account still has it, and it
// still opens by its address.
func (s *Server) handleCloseDirect(w http.ResponseWriter, r *http.Request) {
	ctx, user, other := r.Context(), authFrom(r.Context()).user, r.PathValue("user")
	if user.Guest {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "%s is a guest: direct conversations are between accounts", user.Name))
		return
	}
	none := natter.Errorf(natter.ENOTFOUND, "no direct conversation with %q", other)
	if !natter.ValidUserName(other) || other == user.Name {
		s.writeError(w, r, none)
		return
	}
	room, err := s.store.Room(ctx, natter.DirectRoomName(min(user.Name, other), max(user.Name, other)))
	if natter.ErrorCode(err) == natter.ENOTFOUND {
		err = none
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.changes.allow(user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.HideRoom(ctx, user.Name, natter.ReadMark{Room: room.Name, Epoch: room.Epoch, Seq: room.LastSeq}); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listedRooms is visibleRooms less the direct conversations user closed in which nothing was
// posted since: what room lists show.
func (s *Server) listedRooms(ctx context.Context, user natter.User, rooms []natter.Room) []natter.Room {
	rooms = s.visibleRooms(ctx, user, rooms)
	if user.Guest || !slices.ContainsFunc(rooms, func(r natter.Room) bool { return r.Direct != nil }) {
		return rooms // no conversation: no store read
	}
	closed, err := s.store.HiddenRooms(ctx, user.Name)
	if err != nil {
		s.logger.Warn("room list: read the closed conversations", "user", user.Name, "err", err)
		return rooms
	}
	if len(closed) == 0 {
		return rooms
	}
	at := make(map[string]natter.ReadMark, len(closed))
	for _, m := range closed {
		at[m.Room] = m
	}
	return slices.DeleteFunc(rooms, func(r natter.Room) bool {
		m, ok := at[r.Name]
		return r.Direct != nil && ok && natter.Hidden(r, m)
	})
}

// directFixed answers EFORBIDDEN for a direct conversation, whose members and title are fixed;
// what names the change refused.
func directFixed(room natter.Room, what string) error {
	if room.Direct == nil {
		return nil
	}
	return natter.Errorf(natter.EFORBIDDEN, "%s: %q is the direct conversation of %s and %s, which keeps its two members and its title", what, room.Name, room.Direct[0], room.Direct[1])
}
