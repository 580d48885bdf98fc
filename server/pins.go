package server

import (
	"context"
	"net/http"
	"strconv"

	"natter"
)

// Pins: a room's moderators (its creator, the server's admins) and, in a direct conversation,
// its two accounts pin messages to the room. A pin or an unpin is an entry of the log (kind "pin"
// or "unpin", target the message), so that every transport carries it in order; the store keeps
// the room's pinned messages from them (natter.MessageStore.Pins), for GET .../pins.

// checkPin checks a pin or an unpin whose target checkTarget found to be a message, not deleted:
// EFORBIDDEN for those who may not pin in the room, ECONFLICT for a pin past natter.MaxPins or an
// unpin of a message that is not pinned.
func (s *Server) checkPin(ctx context.Context, req natter.AppendRequest) error {
	room, err := s.store.Room(ctx, req.Room)
	if err != nil {
		return sendError(req, err)
	}
	// In a direct conversation, whoever may post in it is one of its two accounts.
	ok := len(room.Direct) > 0
	if !ok {
		if ok, err = s.moderates(ctx, natter.User{Name: req.Author}, room); err != nil {
			return err
		}
	}
	if !ok {
		return natter.Errorf(natter.EFORBIDDEN, "only the moderators of room %q (its creator, the server's admins) may %s messages", req.Room, req.Kind)
	}
	pins, err := s.store.Pins(ctx, req.Room)
	if err != nil {
		return err
	}
	pinned := false
	for _, p := range pins {
		pinned = pinned || p.Seq == req.Target
	}
	switch {
	case req.Kind == natter.KindUnpin && !pinned:
		return natter.Errorf(natter.ECONFLICT, "message %d is not pinned", req.Target)
	case req.Kind == natter.KindPin && !pinned && len(pins) >= natter.MaxPins:
		return natter.Errorf(natter.ECONFLICT, "room %q has %d pinned messages, the most it may have: unpin one first", req.Room, natter.MaxPins)
	}
	return nil
}

// pinView is a pinned message as GET .../pins lists it: the pin, the message as sent and, if it
// was edited, its latest edit (whose body is the message's text now).
type pinView struct {
	natter.Pin
	Message    natter.Message  `json:"message"`
	LatestEdit *natter.Message `json:"latest_edit,omitempty"`
}

type pinsBody struct {
	Room string    `json:"room"`
	Pins []pinView `json:"pins"`
}

// handlePins lists the room's pinned messages, the latest pinned first, each with its message as
// it was sent and its latest edit, for whoever may read the room.
func (s *Server) handlePins(w http.ResponseWriter, r *http.Request) {
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pins, err := s.store.Pins(r.Context(), room.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body := pinsBody{Room: room.Name, Pins: make([]pinView, 0, len(pins))}
	for _, p := range pins {
		msgs, err := s.store.MessagesAfter(r.Context(), room.Name, p.Seq-1, 1)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if len(msgs) != 1 || msgs[0].Seq != p.Seq {
			continue
		}
		v := pinView{Pin: p, Message: msgs[0]}
		if !v.Message.Deleted {
			edits, err := s.store.Edits(r.Context(), room.Name, p.Seq)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			if len(edits) > 0 {
				v.LatestEdit = &edits[len(edits)-1]
			}
		}
		body.Pins = append(body.Pins, v)
	}
	writeJSON(w, http.StatusOK, body)
}

type editsBody struct {
	Room    string           `json:"room"`
	Message natter.Message   `json:"message"`
	Edits   []natter.Message `json:"edits"`
}

// handleEdits answers a message's history: the message as sent and its edits, oldest first (none
// once it is deleted: a deletion erases them), for whoever may read the room. 404 for no such
// message; 400 for an entry that is itself a change.
func (s *Server) handleEdits(w http.ResponseWriter, r *http.Request) {
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq < 1 {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "%q is not a message's seq", r.PathValue("seq")))
		return
	}
	msgs, err := s.store.MessagesAfter(r.Context(), room.Name, seq-1, 1)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(msgs) != 1 || msgs[0].Seq != seq {
		s.writeError(w, r, natter.Errorf(natter.ENOTFOUND, "no message %d in room %q", seq, room.Name))
		return
	}
	m := msgs[0]
	if m.Kind != "" {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "entry %d is a change (%s) of message %d, not a message: ask for that one's edits", seq, m.Kind, m.Target))
		return
	}
	edits := []natter.Message{}
	if !m.Deleted {
		if edits, err = s.store.Edits(r.Context(), room.Name, seq); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, editsBody{Room: room.Name, Message: m, Edits: edits})
}
