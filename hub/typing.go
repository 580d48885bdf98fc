package hub

import "time"

// Typing notices: "bob is typing" in a room, to the room's subscribers (WebSocket and SSE) other
// than bob's own connections. They are hints, outside the log: never stored, never replayed, not
// seen by long-pollers, and the hub passes on at most one per user and room every TypingEvery
// (a client sends one as its user types, every few seconds; the rest are dropped without error).
// With several nodes, each notice passed on here also goes to the typing sink, and the other
// nodes' arrive through RemoteTyping.

// TypingEvery is the shortest time between two typing notices of one user in one room.
const TypingEvery = 2 * time.Second

// typedKeep bounds the users a room remembers the last notice of before the stale ones are
// dropped.
const typedKeep = 256

// TypingSink receives the typing notices this hub passed on, for the other nodes. It must only
// hand off.
type TypingSink func(room, user string)

// SetTypingSink makes the hub report the typing notices it passes on to sink. Call it before the
// hub has subscribers.
func (h *Hub) SetTypingSink(sink TypingSink) { h.typingSink = sink }

// Typing passes on that user is typing in room, unless the user's last notice in the room was
// less than TypingEvery ago; it reports whether it did. The caller checks that the room exists.
func (h *Hub) Typing(roomName, user string) bool {
	now := time.Now()
	r := h.room(roomName)
	r.mu.Lock()
	every := h.typingEvery
	if every == 0 {
		every = TypingEvery
	}
	if last, ok := r.typed[user]; ok && now.Sub(last) < every {
		r.mu.Unlock()
		return false
	}
	if r.typed == nil {
		r.typed = make(map[string]time.Time)
	}
	if len(r.typed) >= typedKeep {
		for u, t := range r.typed {
			if now.Sub(t) >= every {
				delete(r.typed, u)
			}
		}
	}
	r.typed[user] = now
	r.typingLocked(user)
	r.mu.Unlock()
	if h.typingSink != nil {
		h.typingSink(roomName, user)
	}
	return true
}

// RemoteTyping passes on a typing notice another node passed on.
func (h *Hub) RemoteTyping(roomName, user string) {
	r := h.room(roomName)
	r.mu.Lock()
	r.typingLocked(user)
	r.mu.Unlock()
}

// typingLocked sends the notice to every subscriber of r but user's.
func (r *room) typingLocked(user string) {
	f := EncodeEvent("typing", memberFrame{Type: "typing", Room: r.name, User: user})
	r.sendLocked(f, func(o *Subscription) bool { return o.user != user })
}
