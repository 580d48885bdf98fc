package hub

// Renames: when a room gets a new title or topic, its subscribers (WebSocket and SSE) are told at
// once with {"type": "room", "room": "ops", "title": "Operations", "topic": "..."}, so open pages
// show it without a reload. Like typing notices they are outside the log: never stored or replayed (the title is
// in the room, for whoever reads it later), not seen by long-pollers. With several nodes, each
// rename told here also goes to the rename sink, and the other nodes' arrive through
// RemoteRenamed.

// RenameSink receives the renames this hub told, for the other nodes. It must only hand off.
type RenameSink func(room, title, topic string)

// SetRenameSink makes the hub report the renames it tells to sink. Call it before the hub has
// subscribers.
func (h *Hub) SetRenameSink(sink RenameSink) { h.renameSink = sink }

// Renamed tells the subscribers of room its title and topic (one of them new, stored by the
// caller), and the other nodes through the rename sink.
func (h *Hub) Renamed(roomName, title, topic string) {
	h.RemoteRenamed(roomName, title, topic)
	if h.renameSink != nil {
		h.renameSink(roomName, title, topic)
	}
}

// RemoteRenamed tells this node's subscribers of room the title and topic another node stored.
func (h *Hub) RemoteRenamed(roomName, title, topic string) {
	h.Tell(roomName, "room", roomFrame{Type: "room", Room: roomName, Title: title, Topic: topic})
}

// Tell sends this node's subscribers of room (WebSocket and SSE) a notice outside the log: v as a
// WebSocket frame, and as the SSE event typ. Like renames it is never stored or replayed and not
// seen by long-pollers; v should carry "type": typ and the room.
func (h *Hub) Tell(roomName, typ string, v any) {
	f := EncodeEvent(typ, v)
	r := h.room(roomName)
	r.mu.Lock()
	r.sendLocked(f, func(*Subscription) bool { return true })
	r.mu.Unlock()
}

type roomFrame struct {
	Type  string `json:"type"`
	Room  string `json:"room"`
	Title string `json:"title"`
	Topic string `json:"topic"`
}
