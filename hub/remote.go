package hub

import (
	"sort"
	"time"
)

// Presence across nodes. With several natter nodes on one store (Redis), a user is online in a
// room when connected to it on any node. Each hub reports its own users' changes through the
// sink set with SetPresenceSink; what other nodes report comes in through RemotePresence and
// RemoteSnapshot, and counts until it lapses: a node that stops reporting (killed) has its
// users leave once their time is up (ExpireRemote).

// PresenceSink receives this node's presence changes: user came online in room on this node
// (the first connection or poll), or is no longer online on this node. It is called with the
// room locked, in the order of the changes, so it must only hand off.
type PresenceSink func(room, user string, online bool)

// SetPresenceSink makes the hub report its local presence changes to sink. Call it before the
// hub has subscribers.
func (h *Hub) SetPresenceSink(sink PresenceSink) { h.sink = sink }

// localOnlineLocked reports whether user is online in r on this node.
func (r *room) localOnlineLocked(user string) bool {
	_, polling := r.pollers[user]
	return r.users[user] > 0 || polling
}

// reportLocked tells the sink of a local change, if there is a sink.
func (h *Hub) reportLocked(r *room, user string, online bool) {
	if h.sink != nil {
		h.sink(r.name, user, online)
	}
}

// LocalPresence returns, for every room with someone online on this node, who: what a node
// sends other nodes periodically so that they can correct what they missed.
func (h *Hub) LocalPresence() map[string][]string {
	h.mu.Lock()
	rooms := make([]*room, 0, len(h.byKey))
	for _, r := range h.byKey {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()
	out := make(map[string][]string)
	for _, r := range rooms {
		r.mu.Lock()
		var users []string
		for u := range r.users {
			users = append(users, u)
		}
		for u := range r.pollers {
			if r.users[u] == 0 {
				users = append(users, u)
			}
		}
		r.mu.Unlock()
		if len(users) > 0 {
			sort.Strings(users)
			out[r.name] = users
		}
	}
	return out
}

// RemotePresence records that user is online in room on node until the given time (online), or
// no longer there (!online). Subscribers here hear a join or a leave when that changes whether
// the user is online anywhere.
func (h *Hub) RemotePresence(node, roomName, user string, online bool, until time.Time) {
	r := h.room(roomName)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setRemoteLocked(node, user, online, until)
}

// RemoteSnapshot replaces everything node said: exactly the users of rooms are online there, until
// the given time. Users of node not in it leave (their leave was missed).
func (h *Hub) RemoteSnapshot(node string, rooms map[string][]string, until time.Time) {
	for name := range rooms {
		h.room(name) // rooms this hub has not seen yet
	}
	for _, r := range h.allRooms() {
		r.mu.Lock()
		listed := make(map[string]bool, len(rooms[r.name]))
		for _, u := range rooms[r.name] {
			listed[u] = true
		}
		for u, nodes := range r.remote { // leaves first, then joins
			if _, ok := nodes[node]; ok && !listed[u] {
				r.setRemoteLocked(node, u, false, time.Time{})
			}
		}
		for _, u := range rooms[r.name] {
			r.setRemoteLocked(node, u, true, until)
		}
		r.mu.Unlock()
	}
}

// ForgetNode drops every room's entries of node at once (it said it is stopping).
func (h *Hub) ForgetNode(node string) { h.RemoteSnapshot(node, nil, time.Time{}) }

func (h *Hub) allRooms() []*room {
	h.mu.Lock()
	defer h.mu.Unlock()
	rooms := make([]*room, 0, len(h.byKey))
	for _, r := range h.byKey {
		rooms = append(rooms, r)
	}
	return rooms
}

func (r *room) setRemoteLocked(node, user string, online bool, until time.Time) {
	was := r.isOnlineLocked(user)
	if online {
		if r.remote == nil {
			r.remote = make(map[string]map[string]time.Time)
		}
		if r.remote[user] == nil {
			r.remote[user] = make(map[string]time.Time)
		}
		r.remote[user][node] = until
	} else if nodes := r.remote[user]; nodes != nil {
		delete(nodes, node)
		if len(nodes) == 0 {
			delete(r.remote, user)
		}
	}
	switch now := r.isOnlineLocked(user); {
	case now && !was:
		r.broadcastLocked(nil, EncodeEvent("join", memberFrame{Type: "join", Room: r.name, User: user}))
	case !now && was:
		r.broadcastLocked(nil, EncodeEvent("leave", memberFrame{Type: "leave", Room: r.name, User: user}))
	}
}

// ExpireRemote drops what other nodes said that they did not renew in time. Call it periodically.
func (h *Hub) ExpireRemote(now time.Time) {
	for _, r := range h.allRooms() {
		r.mu.Lock()
		for u, nodes := range r.remote {
			for node, until := range nodes {
				if now.After(until) {
					r.setRemoteLocked(node, u, false, time.Time{})
				}
			}
		}
		r.mu.Unlock()
	}
}
