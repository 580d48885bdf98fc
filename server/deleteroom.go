package server

import (
	"net/http"

	"natter"
)

// Deleting a room: its moderators (the account that created it, the server's admins) delete a
// room with everything in it. The store makes the room not exist, for good (its name is never
// used again); RoomDeleted then makes every node forget it and ends what every connection
// receives of it.

// handleDeleteRoom deletes the room the path names: 204. The lobby stays (400); a direct
// conversation has no moderators (403: each account closes it instead).
func (s *Server) handleDeleteRoom(w http.ResponseWriter, r *http.Request) {
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	user := authFrom(r.Context()).user
	if room.Direct != nil {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "%q is a direct conversation, which nobody deletes: each of its two accounts may close it", room.Name))
		return
	}
	ok, err := s.moderates(r.Context(), user, room)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !ok {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "only the account that created room %q (or an admin) may delete it", room.Name))
		return
	}
	if room.Name == natter.DefaultRoom {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "the %s stays: every server has it", natter.DefaultRoom))
		return
	}
	if err := s.changes.allow(user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.DeleteRoom(r.Context(), room.Name, user.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.RoomDeleted(room.Name)
	s.logger.Info("moderation: room deleted", "room", room.Name, "by", user.Name, "messages", room.LastSeq-room.Changes)
	w.WriteHeader(http.StatusNoContent)
}

// RoomDeleted applies the deletion of room, made here or on another node that shares the store:
// this node answers for it as for a room that never existed from now on, without asking the
// store, and ends what every connection receives of it (liveConn.leftRoom: a WebSocket's
// subscription ends with a not_found error, an event stream ends, a parked long-poll answers).
func (s *Server) RoomDeleted(room string) {
	s.access.deleted.Store(room, struct{}{})
	s.bans.forget(room)
	var ended []liveConn
	s.connsMu.Lock()
	for c := range s.conns {
		ended = append(ended, c)
	}
	s.connsMu.Unlock()
	for _, c := range ended {
		c.leftRoom(room)
	}
}

// isDeleted reports whether this node knows room to be deleted.
func (s *Server) isDeleted(room string) bool {
	_, ok := s.access.deleted.Load(room)
	return ok
}
