package server

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"natter"
)

// Private rooms are seen only by their members: to anyone else every request about one answers
// as for a room that does not exist (404 "no room named ..."), and room lists leave it out.
// Privacy is set when a room is created, so a node remembers it once read; it remembers that a
// user is a member too, until it hears that the user was removed (MemberRemoved: from this node,
// or from another through the store) or loses its subscription to those notes (RecheckSessions
// forgets them all). A user who is not a member is asked of the store each time, since a member
// may add them meanwhile.
type roomAccess struct {
	private sync.Map // room name -> bool
	members sync.Map // room + "\x00" + user -> struct{}
	deleted sync.Map // room name -> struct{}: deleted rooms (deleteroom.go), whose names never return
}

// canSee reports whether user may see room.
func (s *Server) canSee(ctx context.Context, user natter.User, room natter.Room) (bool, error) {
	if s.isDeleted(room.Name) {
		return false, nil // read before its deletion
	}
	s.access.private.Store(room.Name, room.Private)
	if !room.Private {
		return true, nil
	}
	if room.Direct != nil {
		// Its two members are in the room itself and never change: no store read, however
		// many conversations a server holds.
		return !user.Guest && slices.Contains(room.Direct, user.Name), nil
	}
	return s.isMember(ctx, user, room.Name)
}

func (s *Server) isMember(ctx context.Context, user natter.User, room string) (bool, error) {
	if user.Guest || user.Name == "" {
		return false, nil // members are accounts
	}
	key := room + "\x00" + user.Name
	if _, ok := s.access.members.Load(key); ok {
		return true, nil
	}
	ok, err := s.store.IsMember(ctx, room, user.Name)
	if ok {
		s.access.members.Store(key, struct{}{})
	}
	return ok, err
}

// checkRoomName answers ENOTFOUND when user may not see the room named name (nil when it does
// not exist: the caller's own path says so). It reads the room only the first time this node
// meets it, so that a send to a public room costs no store read.
func (s *Server) checkRoomName(ctx context.Context, user natter.User, name string) error {
	if s.isDeleted(name) {
		return natter.Errorf(natter.ENOTFOUND, "no room named %q", name)
	}
	private, known := s.access.private.Load(name)
	if !known {
		room, err := s.store.Room(ctx, name)
		if natter.ErrorCode(err) == natter.ENOTFOUND {
			return nil
		}
		if err != nil {
			return err
		}
		s.access.private.Store(name, room.Private)
		private = room.Private
	}
	if !private.(bool) {
		return nil
	}
	ok, err := s.isMember(ctx, user, name)
	if err != nil {
		return err
	}
	if !ok {
		return natter.Errorf(natter.ENOTFOUND, "no room named %q", name)
	}
	return nil
}

// visibleRooms returns the rooms of rooms that user may see, in order. A room whose membership
// can't be read is left out (and logged).
func (s *Server) visibleRooms(ctx context.Context, user natter.User, rooms []natter.Room) []natter.Room {
	out := rooms[:0:0]
	for _, r := range rooms {
		ok, err := s.canSee(ctx, user, r)
		if err != nil {
			s.logger.Warn("room list: read a private room's members", "room", r.Name, "err", err)
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// MemberRemoved applies the removal of user from room's members, made here or on another node
// that shares the store: this node forgets that user is one, and ends what the user's
// connections receive of the room (liveConn.leftRoom); the rest of what they receive goes on.
func (s *Server) MemberRemoved(room, user string) {
	s.access.members.Delete(room + "\x00" + user)
	var ended []liveConn
	s.connsMu.Lock()
	for c, o := range s.conns {
		if o.user == user {
			ended = append(ended, c)
		}
	}
	s.connsMu.Unlock()
	for _, c := range ended {
		c.leftRoom(room)
	}
}

// seesStill checks again, once a connection is registered to receive room, that user may see
// it: a removal from its members between the first check and the registration found nothing of
// the connection's to end (MemberRemoved forgets the member before it looks).
func (s *Server) seesStill(user natter.User, room string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.checkRoomName(ctx, user, room) == nil
}

// handleRemoveMember takes an account out of a private room: the room's creator may remove
// anyone but itself, and any member may leave. 204 (also when it was no member).
func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	room, err := s.privateRoomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	user, name := authFrom(r.Context()).user, r.PathValue("user")
	if err := directFixed(room, "no one leaves"); err != nil {
		s.writeError(w, r, err)
		return
	}
	if name == room.CreatedBy {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "%s created room %q and stays its member", name, room.Name))
		return
	}
	if name != user.Name {
		ok, err := s.moderates(r.Context(), user, room)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !ok {
			s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "only the account that created room %q removes others from it (a member may leave)", room.Name))
			return
		}
	}
	if err := s.changes.allow(user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.RemoveMember(r.Context(), room.Name, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.MemberRemoved(room.Name, name)
	w.WriteHeader(http.StatusNoContent)
}

// privateRoomFromPath is roomFromPath for the members' endpoints: EINVALID for a public room.
func (s *Server) privateRoomFromPath(r *http.Request) (natter.Room, error) {
	room, err := s.roomFromPath(r)
	if err == nil && !room.Private {
		err = natter.Errorf(natter.EINVALID, "room %q is public: everyone sees it, it has no members", room.Name)
	}
	return room, err
}

type membersBody struct {
	Room    string   `json:"room"`
	Private bool     `json:"private"`
	Members []string `json:"members"`
}

// handleMembers lists a private room's members (to its members: others get 404); a public room
// has none.
func (s *Server) handleMembers(w http.ResponseWriter, r *http.Request) {
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	members := []string{}
	if room.Private {
		if members, err = s.store.Members(r.Context(), room.Name); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, membersBody{Room: room.Name, Private: room.Private, Members: members})
}

// handleAddMember lets a member of a private room add an account to it: 204 (also when it is a
// member already).
func (s *Server) handleAddMember(w http.ResponseWriter, r *http.Request) {
	room, err := s.privateRoomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := directFixed(room, "no one joins"); err != nil {
		s.writeError(w, r, err)
		return
	}
	name := r.PathValue("user")
	if _, err := s.account(r.Context(), name, "members of a private room are accounts"); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.changes.allow(authFrom(r.Context()).user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.AddMember(r.Context(), room.Name, name, authFrom(r.Context()).user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleMute mutes (PUT) or unmutes (DELETE) a room for the signed-in account: 204, again too.
// Its room views say "muted" from then on; accounts only.
func (s *Server) handleMute(w http.ResponseWriter, r *http.Request) {
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	user := authFrom(r.Context()).user
	if user.Guest {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "guests have no room settings to keep: register to mute a room"))
		return
	}
	if err := s.changes.allow(user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.MuteRoom(r.Context(), user.Name, room.Name, r.Method == http.MethodPut); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
