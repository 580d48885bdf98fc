package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"sync/atomic"
	"time"
)

// Presence across nodes: each node publishes its own users' changes as they happen (a join, a
// leave), and every presenceEvery all of them (a snapshot), which corrects whatever another node
// missed. What a node said lapses after presenceLapse unless renewed, so a node that is killed
// has its users leave within that; a node that stops cleanly says so, and its users leave at once.
const (
	presenceEvery = 10 * time.Second
	presenceLapse = 35 * time.Second
	// presenceQueue bounds the changes waiting to be published; past it they are dropped and the
	// next snapshot tells the other nodes instead.
	presenceQueue = 4096
)

// PresenceHub is what the store tells of other nodes' presence and asks of this node's. The hub
// (natter/hub) is one.
type PresenceHub interface {
	LocalPresence() map[string][]string
	RemotePresence(node, room, user string, online bool, until time.Time)
	RemoteSnapshot(node string, rooms map[string][]string, until time.Time)
	ForgetNode(node string)
	ExpireRemote(now time.Time)
	RemoteTyping(room, user string)
	RemoteRenamed(room, title, topic string)
}

// presenceNote is what the presence channel carries: one change (Room, User, Online), a snapshot
// (Rooms), a node's goodbye (Gone), a typing notice (Room, User, Typing), or a room's new title
// (Room, Title, Renamed).
type presenceNote struct {
	Node   string              `json:"node"`
	Room   string              `json:"room,omitempty"`
	User   string              `json:"user,omitempty"`
	Online bool                `json:"online,omitempty"`
	Rooms  map[string][]string `json:"rooms,omitempty"`
	Gone   bool                `json:"gone,omitempty"`
	Typing bool                `json:"typing,omitempty"`
	// Renamed: Room has the title Title and the topic Topic, one of them new (stored: this only
	// tells open pages).
	Renamed bool   `json:"renamed,omitempty"`
	Title   string `json:"title,omitempty"`
	Topic   string `json:"topic,omitempty"`
}

// presence is the store's part of presence across nodes.
type presence struct {
	node    string // this node's id in the notes
	hub     atomic.Pointer[PresenceHub]
	changes chan presenceNote
}

func newPresence() *presence {
	var b [8]byte
	rand.Read(b[:])
	return &presence{node: hex.EncodeToString(b[:]), changes: make(chan presenceNote, presenceQueue)}
}

// SetPresence connects h: from now on this node's presence is published and other nodes' is
// told to h. Set the hub's sink to PublishPresence too.
func (s *Store) SetPresence(h PresenceHub) { s.pres.hub.Store(&h) }

func (s *Store) presenceHub() PresenceHub {
	if p := s.pres.hub.Load(); p != nil {
		return *p
	}
	return nil
}

// PublishPresence queues a change of this node's presence for the other nodes; it never blocks
// (it has the signature of hub.PresenceSink).
func (s *Store) PublishPresence(room, user string, online bool) {
	select {
	case s.pres.changes <- presenceNote{Node: s.pres.node, Room: room, User: user, Online: online}:
	default:
		s.presenceLosses.Add(1) // the next snapshot tells the other nodes
	}
}

// PublishTyping queues a typing notice of this node's for the other nodes; it never blocks (it has
// the signature of hub.TypingSink). A notice that does not fit is dropped: it is a hint.
func (s *Store) PublishTyping(room, user string) {
	select {
	case s.pres.changes <- presenceNote{Node: s.pres.node, Room: room, User: user, Typing: true}:
	default:
	}
}

// PublishRenamed queues a room's new title, stored here, for the other nodes' subscribers; it
// never blocks (it has the signature of hub.RenameSink). One that does not fit is dropped: the
// title is stored, and pages show it when they next load.
func (s *Store) PublishRenamed(room, title, topic string) {
	select {
	case s.pres.changes <- presenceNote{Node: s.pres.node, Room: room, Title: title, Topic: topic, Renamed: true}:
	default:
	}
}

// presenceLoop publishes this node's changes as they come and a snapshot every presenceEvery,
// expires what other nodes did not renew, and says goodbye when ctx ends.
func (s *Store) presenceLoop(ctx context.Context) {
	defer close(s.presDone)
	tick := time.NewTicker(presenceEvery)
	defer tick.Stop()
	publish := func(n presenceNote) {
		data, _ := json.Marshal(n)
		pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.rdb.Publish(pctx, s.key("presence"), data).Err(); err != nil && ctx.Err() == nil {
			s.log.Warn("redis: publishing presence failed", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			publish(presenceNote{Node: s.pres.node, Gone: true})
			return
		case n := <-s.pres.changes:
			publish(n)
		case <-tick.C:
			h := s.presenceHub()
			if h == nil {
				continue
			}
			// What was queued before the snapshot goes first: it is older.
			for drained := false; !drained; {
				select {
				case n := <-s.pres.changes:
					publish(n)
				default:
					drained = true
				}
			}
			publish(presenceNote{Node: s.pres.node, Rooms: h.LocalPresence()})
			h.ExpireRemote(time.Now())
		}
	}
}

// presenceArrived applies another node's note.
func (s *Store) presenceArrived(payload string) {
	var n presenceNote
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		s.log.Error("redis: a presence note that can't be read", "err", err)
		return
	}
	h := s.presenceHub()
	if h == nil || n.Node == s.pres.node {
		return
	}
	until := time.Now().Add(presenceLapse)
	switch {
	case n.Typing:
		h.RemoteTyping(n.Room, n.User)
	case n.Renamed:
		h.RemoteRenamed(n.Room, n.Title, n.Topic)
	case n.Gone:
		h.ForgetNode(n.Node)
	case n.Rooms != nil || (n.Room == "" && n.User == ""):
		h.RemoteSnapshot(n.Node, n.Rooms, until)
	default:
		h.RemotePresence(n.Node, n.Room, n.User, n.Online, until)
	}
}
