// Package hub fans committed messages out to the subscribers connected to this node. A broadcast
// never waits for a subscriber: each connection has an Outbox with a byte-bounded queue, and a
// subscriber that overflows it is disconnected as slow, to resume later from its last seq.
package hub

import (
	"context"
	"log/slog"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"natter"
)

const (
	// replayPage is how many backlog messages one store read fetches during catch-up.
	replayPage = 500
	// maxPending bounds the live frames a subscription buffers while it replays its backlog;
	// past it the subscriber is treated as slow.
	maxPending = 10000
	// gapRetry paces re-reads when live frames run ahead of what the store returns.
	gapRetry = 20 * time.Millisecond
)

// Hub is the local fan-out. It is fed committed messages by Publish (the store's CommitFunc) and
// reads backlogs from the store.
type Hub struct {
	store  natter.MessageStore
	rooms  natter.RoomStore
	logger *slog.Logger

	mu    sync.Mutex
	byKey map[string]*room

	fanOnce sync.Once
	fanQ    chan []natter.Message // commits waiting for the fan-out goroutine
	fanDone chan struct{}

	published  atomic.Int64 // messages Publish fanned out
	deliveries atomic.Int64 // frames Publish queued for subscribers

	sink        PresenceSink  // where local presence changes go (remote.go); nil: nowhere
	typingSink  TypingSink    // where typing notices passed on go (typing.go); nil: nowhere
	renameSink  RenameSink    // where renames told go (rename.go); nil: nowhere
	typingEvery time.Duration // TypingEvery, unless a test set another
}

// Stats are the hub's counters since it started.
type Stats struct {
	Published  int64 // committed messages fanned out
	Deliveries int64 // message frames queued for subscribers (one per subscriber per message)
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{Published: h.published.Load(), Deliveries: h.deliveries.Load()}
}

// fanQueue bounds the commit batches waiting for fan-out; past it the store's committer waits,
// which slows senders rather than growing memory.
const fanQueue = 4096

// New returns a hub reading backlogs from store.
func New(store natter.MessageStore, rooms natter.RoomStore, logger *slog.Logger) *Hub {
	if logger == nil {
		logger = slog.Default()
	}
	return &Hub{store: store, rooms: rooms, logger: logger, byKey: make(map[string]*room)}
}

type room struct {
	name string

	mu      sync.Mutex
	subs    []*Subscription                 // each knows its index: O(1) add and remove, no copying
	users   map[string]int                  // connections per user, for presence
	pollers map[string]time.Time            // long-polling users, online until the time given
	remote  map[string]map[string]time.Time // users online on other nodes: user -> node -> until (remote.go)
	lastSeq int64
	notify  chan struct{} // closed and replaced on every publish, for long-polls
	waiters map[*Waiter]struct{}
	typed   map[string]time.Time // each user's last typing notice passed on (typing.go)
}

// Waiter is a callback registered with OnPublish.
type Waiter struct {
	room *room
	fn   func()
}

func (h *Hub) room(name string) *room {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.byKey[name]
	if r == nil {
		r = &room{name: name, users: make(map[string]int), notify: make(chan struct{})}
		h.byKey[name] = r
	}
	return r
}

// Committed hands committed messages to the hub's fan-out goroutine and returns at once, so the
// store can acknowledge a commit without waiting for its delivery to every subscriber (tens of
// milliseconds for a room of 10,000). Order is kept: one goroutine publishes the batches in the
// order they were committed. It has the signature of natter.CommitFunc; call Close when the
// store will commit no more.
func (h *Hub) Committed(msgs []natter.Message) {
	h.fanOnce.Do(func() {
		h.fanQ = make(chan []natter.Message, fanQueue)
		h.fanDone = make(chan struct{})
		go func() {
			defer close(h.fanDone)
			for batch := range h.fanQ {
				h.Publish(batch)
			}
		}()
	})
	h.fanQ <- msgs
}

// Close delivers what Committed has queued and stops the fan-out goroutine. Committed must not
// be called after Close.
func (h *Hub) Close() {
	h.fanOnce.Do(func() {}) // never started: nothing to stop
	if h.fanQ != nil {
		close(h.fanQ)
		<-h.fanDone
	}
}

// Publish fans committed messages out, in the order given (seq order per room). It never blocks on
// a subscriber. It has the signature of natter.CommitFunc.
func (h *Hub) Publish(msgs []natter.Message) {
	for _, m := range msgs {
		r := h.room(m.Room)
		// The room stays locked for the fan-out: deliver never blocks and never calls back into
		// the room, and holding the lock lets subscribe and unsubscribe edit the slice in place
		// instead of copying it for every change.
		r.mu.Lock()
		if m.Seq > r.lastSeq {
			r.lastSeq = m.Seq
		}
		close(r.notify)
		r.notify = make(chan struct{})
		for w := range r.waiters {
			w.fn()
		}
		r.waiters = nil
		if len(r.subs) > 0 { // a room nobody is subscribed to needs no frames
			f := EncodeMessage(m)
			for _, s := range r.subs {
				s.deliver(f)
			}
			h.deliveries.Add(int64(len(r.subs)))
		}
		r.mu.Unlock()
	}
	h.published.Add(int64(len(msgs)))
}

// NotifyAfter returns Notify's channel together with the highest seq published to room so far
// (0 if none since start), read at the same instant: a seq above what the caller read from the
// store means a message arrived in between.
func (h *Hub) NotifyAfter(roomName string) (<-chan struct{}, int64) {
	r := h.room(roomName)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.notify, r.lastSeq
}

// Notify returns a channel that is closed by the next Publish to room. Long-polls take it before
// reading the store, so that a message committed in between still wakes them.
func (h *Hub) Notify(roomName string) <-chan struct{} {
	r := h.room(roomName)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.notify
}

// OnPublish calls fn once, at the next Publish to room, unless Cancel is called first. fn runs in
// the publishing goroutine, so it must only hand off (start a goroutine, close a channel). Parked
// long-polls use it so that waiting costs no goroutine.
func (h *Hub) OnPublish(roomName string, fn func()) *Waiter {
	r := h.room(roomName)
	w := &Waiter{room: r, fn: fn}
	r.mu.Lock()
	if r.waiters == nil {
		r.waiters = make(map[*Waiter]struct{})
	}
	r.waiters[w] = struct{}{}
	r.mu.Unlock()
	return w
}

// Cancel unregisters w. It reports whether w was still registered (fn has not been called).
func (w *Waiter) Cancel() bool {
	w.room.mu.Lock()
	defer w.room.mu.Unlock()
	_, ok := w.room.waiters[w]
	delete(w.room.waiters, w)
	return ok
}

// SubscribedRooms returns the rooms that have subscribers on this node, in no order.
func (h *Hub) SubscribedRooms() []string {
	h.mu.Lock()
	rooms := make([]*room, 0, len(h.byKey))
	for _, r := range h.byKey {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()
	var names []string
	for _, r := range rooms {
		r.mu.Lock()
		if len(r.subs) > 0 {
			names = append(names, r.name)
		}
		r.mu.Unlock()
	}
	return names
}

// Online returns the users connected to a room, sorted.
func (h *Hub) Online(roomName string) []string {
	r := h.room(roomName)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.onlineLocked()
}

// OnlineCount returns how many users Online would list for room, without listing them.
func (h *Hub) OnlineCount(roomName string) int {
	r := h.room(roomName)
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.users)
	for u := range r.pollers {
		if r.users[u] == 0 {
			n++
		}
	}
	for u := range r.remote {
		if !r.localOnlineLocked(u) {
			n++
		}
	}
	return n
}

func (r *room) onlineLocked() []string {
	online := make([]string, 0, len(r.users)+len(r.pollers)+len(r.remote))
	for u := range r.users {
		online = append(online, u)
	}
	for u := range r.pollers {
		if r.users[u] == 0 {
			online = append(online, u)
		}
	}
	for u := range r.remote {
		if !r.localOnlineLocked(u) {
			online = append(online, u)
		}
	}
	sort.Strings(online)
	return online
}

// SubscribeRequest describes a new subscription.
type SubscribeRequest struct {
	Room      string
	After     int64 // replay messages with seq > After
	HasAfter  bool  // without After, the subscription starts live at the room's current end
	User      string
	Out       *Outbox
	Transport Transport
}

// Subscription is one connection's interest in one room. Until its backlog is replayed it buffers
// live frames; then it merges the two by seq, so that a message committed during the subscribe is
// delivered exactly once.
type Subscription struct {
	hub  *Hub
	room *room
	user string
	out  *Outbox
	tr   Transport
	idx  int // place in room.subs, guarded by room.mu

	mu            sync.Mutex
	stopCatchUp   context.CancelFunc // set while a catch-up runs
	live          bool
	catching      bool
	closed        bool
	presenceReady bool
	last          int64
	pending       []*Frame
}

// Subscribe registers for live messages, then sends the `subscribed` frame, the presence list and
// the backlog after req.After, then goes live. Registration comes first so nothing committed
// meanwhile is missed. The backlog is replayed by a goroutine; Subscribe returns once the room is
// known. Errors: ENOTFOUND if the room does not exist.
func (h *Hub) Subscribe(ctx context.Context, req SubscribeRequest) (*Subscription, natter.Room, error) {
	r := h.room(req.Room)
	s := &Subscription{hub: h, room: r, user: req.User, out: req.Out, tr: req.Transport, catching: true}

	r.mu.Lock()
	s.idx = len(r.subs)
	r.subs = append(r.subs, s)
	r.mu.Unlock()

	info, err := h.rooms.Room(ctx, req.Room)
	if err != nil {
		s.Unsubscribe()
		return nil, natter.Room{}, err
	}
	s.mu.Lock()
	if req.HasAfter {
		s.last = req.After
	} else {
		s.last = info.LastSeq
	}
	s.mu.Unlock()

	s.out.SendNow(EncodeEvent("subscribed", subscribedFrame{Type: "subscribed", Room: req.Room, Epoch: info.Epoch, LastSeq: info.LastSeq}).Bytes(s.tr))

	// Presence: the new subscriber gets the list (itself included); others get a join if this is
	// the user's first connection to the room.
	r.mu.Lock()
	first := !r.isOnlineLocked(req.User)
	if !r.localOnlineLocked(req.User) {
		h.reportLocked(r, req.User, true)
	}
	r.users[req.User]++
	online := r.onlineLocked()
	s.mu.Lock()
	s.out.Send(EncodeEvent("presence", presenceFrame{Type: "presence", Room: req.Room, Online: online}).Bytes(s.tr))
	s.presenceReady = true
	s.mu.Unlock()
	if first {
		r.broadcastLocked(s, EncodeEvent("join", memberFrame{Type: "join", Room: req.Room, User: req.User}))
	}
	r.mu.Unlock()

	s.startCatchUp()
	return s, info, nil
}

type subscribedFrame struct {
	Type    string `json:"type"`
	Room    string `json:"room"`
	Epoch   string `json:"epoch"`
	LastSeq int64  `json:"last_seq"`
}

type presenceFrame struct {
	Type   string   `json:"type"`
	Room   string   `json:"room"`
	Online []string `json:"online"`
}

type memberFrame struct {
	Type string `json:"type"`
	Room string `json:"room"`
	User string `json:"user"`
}

// broadcastLocked sends a frame outside the log (presence) to every subscriber of r but except.
func (r *room) broadcastLocked(except *Subscription, f *Frame) {
	r.sendLocked(f, func(o *Subscription) bool { return o != except })
}

// sendLocked sends a frame outside the log to the subscribers of r that to picks. One whose
// queue is full is closed as slow.
func (r *room) sendLocked(f *Frame, to func(*Subscription) bool) {
	for _, o := range r.subs {
		if !to(o) {
			continue
		}
		o.mu.Lock()
		ok := o.closed || !o.presenceReady || o.out.Send(f.Bytes(o.tr))
		o.mu.Unlock()
		if !ok {
			o.out.CloseSlow()
		}
	}
}

// Unsubscribe stops deliveries and, if this was the user's last connection to the room, tells the
// others that the user left. It is safe to call more than once.
// Room is the name of the subscription's room.
func (s *Subscription) Room() string { return s.room.name }

func (s *Subscription) Unsubscribe() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	wasCounted := s.presenceReady
	s.pending = nil
	if s.stopCatchUp != nil {
		s.stopCatchUp()
	}
	s.mu.Unlock()

	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.idx >= 0 {
		last := len(r.subs) - 1
		moved := r.subs[last]
		r.subs[s.idx], moved.idx = moved, s.idx
		r.subs[last] = nil
		r.subs = r.subs[:last]
		s.idx = -1
		if cap(r.subs) > 64 && len(r.subs) < cap(r.subs)/4 {
			r.subs = slices.Clone(r.subs) // give back the array of a crowd that left
		}
	}
	if wasCounted {
		r.users[s.user]--
		if r.users[s.user] <= 0 {
			delete(r.users, s.user)
			if !r.localOnlineLocked(s.user) {
				s.hub.reportLocked(r, s.user, false)
			}
			if !r.isOnlineLocked(s.user) {
				r.broadcastLocked(nil, EncodeEvent("leave", memberFrame{Type: "leave", Room: r.name, User: s.user}))
			}
		}
	}
}

// TouchPoller counts user as online in room until the given time: long-polling clients hold no
// connection between polls, so each poll renews their presence for a little longer than its
// wait. A user who was not online joins.
func (h *Hub) TouchPoller(roomName, user string, until time.Time) {
	r := h.room(roomName)
	r.mu.Lock()
	defer r.mu.Unlock()
	first := !r.isOnlineLocked(user)
	if !r.localOnlineLocked(user) {
		h.reportLocked(r, user, true)
	}
	if until.After(r.pollers[user]) {
		if r.pollers == nil {
			r.pollers = make(map[string]time.Time)
		}
		r.pollers[user] = until
	}
	if first {
		r.broadcastLocked(nil, EncodeEvent("join", memberFrame{Type: "join", Room: r.name, User: user}))
	}
}

// ExpirePollers ends the presence of long-pollers that have not polled in time; those not also
// connected otherwise leave. Call it periodically.
func (h *Hub) ExpirePollers(now time.Time) {
	h.mu.Lock()
	rooms := make([]*room, 0, len(h.byKey))
	for _, r := range h.byKey {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()
	for _, r := range rooms {
		r.mu.Lock()
		for user, until := range r.pollers {
			if now.After(until) {
				delete(r.pollers, user)
				if !r.localOnlineLocked(user) {
					h.reportLocked(r, user, false)
				}
				if !r.isOnlineLocked(user) {
					r.broadcastLocked(nil, EncodeEvent("leave", memberFrame{Type: "leave", Room: r.name, User: user}))
				}
			}
		}
		r.mu.Unlock()
	}
}

// isOnlineLocked reports whether user is online in r on any node.
func (r *room) isOnlineLocked(user string) bool {
	return r.localOnlineLocked(user) || len(r.remote[user]) > 0
}

// deliver hands one live frame to the subscription without blocking.
func (s *Subscription) deliver(f *Frame) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if !s.live {
		if len(s.pending) >= maxPending {
			s.mu.Unlock()
			s.out.CloseSlow()
			return
		}
		s.pending = append(s.pending, f)
		s.mu.Unlock()
		return
	}
	if f.Seq <= s.last {
		s.mu.Unlock()
		return
	}
	if f.Seq > s.last+1 {
		// A gap: the frames in between were not seen live (e.g. a broker hiccup). Fetch them from
		// the store before going on, buffering meanwhile.
		s.live = false
		s.pending = append(s.pending, f)
		if !s.catching {
			s.catching = true
			s.startCatchUpLocked()
		}
		s.mu.Unlock()
		return
	}
	s.last = f.Seq
	ok := s.out.Send(f.Bytes(s.tr))
	s.mu.Unlock()
	if !ok {
		s.out.CloseSlow()
	}
}

func (s *Subscription) startCatchUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.startCatchUpLocked()
	}
}

// startCatchUpLocked starts a catch-up with a context that Unsubscribe cancels. The context lives
// only as long as the catch-up, so an idle subscription holds none.
func (s *Subscription) startCatchUpLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopCatchUp = cancel
	go s.catchUp(ctx, cancel)
}

// spliceHook, if set (tests), runs when a catch-up has taken the subscription's lock to splice
// in the live frames.
var spliceHook atomic.Pointer[func()]

// catchUp replays the store from s.last until it meets the buffered live frames, then goes live.
func (s *Subscription) catchUp(ctx context.Context, cancel context.CancelFunc) {
	locked := false // s.mu is held: a panic there must unlock it before the clean-up locks it
	defer func() {
		// A panic in a catch-up (reading or encoding the backlog) ends this subscriber's
		// connection only, and is logged with its stack; the server goes on.
		v := recover()
		if v != nil && locked {
			s.mu.Unlock()
		}
		// Only a catch-up that did not finish still owns stopCatchUp: one that went live cleared
		// it under the lock, and a newer catch-up may have set its own since.
		s.mu.Lock()
		if s.catching {
			s.stopCatchUp = nil
		}
		s.mu.Unlock()
		cancel()
		if v != nil {
			s.hub.logger.Error("hub: panic in a subscription's catch-up; its connection is closed", "room", s.room.name, "panic", v, "stack", string(debug.Stack()))
			s.out.Close()
		}
	}()
	last := s.lastSeq()
	for {
		msgs, err := s.hub.store.MessagesAfter(ctx, s.room.name, last, replayPage)
		if err != nil {
			switch {
			case ctx.Err() != nil:
			case natter.ErrorCode(err) == natter.ENOTFOUND:
				// The room was deleted since the subscription began. Its subscription ends as
				// the server hears of the deletion, as every node does (Server.RoomDeleted),
				// with the error the client would get subscribing now; the connection's other
				// rooms go on.
				s.hub.logger.Info("replay of a deleted room", "room", s.room.name)
			default:
				// The store can't be read: the client reconnects and resumes from its cursor.
				s.hub.logger.Error("replay failed", "room", s.room.name, "err", err)
				s.out.Close()
			}
			return
		}
		for _, m := range msgs {
			if err := s.out.SendWait(ctx, EncodeMessage(m).Bytes(s.tr)); err != nil {
				return
			}
			last = m.Seq
		}
		if len(msgs) == replayPage {
			continue
		}
		// The store had nothing more: splice in what arrived live meanwhile.
		s.mu.Lock()
		locked = true
		if f := spliceHook.Load(); f != nil {
			(*f)()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		s.last = last
		gap := false
		for i, f := range s.pending {
			if f.Seq <= s.last {
				continue
			}
			if f.Seq > s.last+1 {
				s.pending = s.pending[i:]
				gap = true
				break
			}
			if !s.out.Send(f.Bytes(s.tr)) {
				s.mu.Unlock()
				locked = false
				s.out.CloseSlow()
				return
			}
			s.last = f.Seq
		}
		if gap {
			// Committed but not yet readable here can't happen with an ordered store; a broker
			// may deliver ahead of its store, so read again.
			last = s.last
			s.mu.Unlock()
			locked = false
			select {
			case <-ctx.Done():
				return
			case <-time.After(gapRetry):
			}
			continue
		}
		s.pending = nil
		s.live = true
		s.catching = false
		s.stopCatchUp = nil
		s.mu.Unlock()
		return
	}
}

func (s *Subscription) lastSeq() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}
