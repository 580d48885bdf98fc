package server

import (
	"net/http"

	"natter"
)

// Direct conversations are private rooms of exactly two accounts (natter.Room.Direct), one per
// pair: POST /api/dms opens the one with another account, making it the first time. Its name is
// fixed by the pair (natter.DirectRoomName) and kept from every other room, so nobody can take it
// first; both accounts are members from the start, nobody is added or removed, and it keeps its
// title. Nobody moderates one: each deletes only their own messages.

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
	writeJSON(w, status, roomBody{Room: s.roomViews(ctx, user, room)[0]})
}

// directFixed answers EFORBIDDEN for a direct conversation, whose members and title are fixed;
// what names the change refused.
func directFixed(room natter.Room, what string) error {
	if room.Direct == nil {
		return nil
	}
	return natter.Errorf(natter.EFORBIDDEN, "%s: %q is the direct conversation of %s and %s, which keeps its two members and its title", what, room.Name, room.Direct[0], room.Direct[1])
}
