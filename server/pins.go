package server

import (
	"context"
	"net/http"

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

// pinView is a pinned message as GET .../pins lists it: the pin and the message as sent.
type pinView struct {
	natter.Pin
	Message natter.Message `json:"message"`
}

type pinsBody struct {
	Room string    `json:"room"`
	Pins []pinView `json:"pins"`
}

// handlePins lists the room's pinned messages, the latest pinned first, each with its message as
// it was sent (its edits are entries of the log, as ever), for whoever may read the room.
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
		if len(msgs) == 1 && msgs[0].Seq == p.Seq {
			body.Pins = append(body.Pins, pinView{Pin: p, Message: msgs[0]})
		}
	}
	writeJSON(w, http.StatusOK, body)
}
