package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"natter"
	"natter/hub"
	"natter/internal/park"
	"natter/internal/sock"
	"natter/ws"
)

// Frames the server sends often enough to build once.
var (
	wsPingFrame          = ws.AppendFrame(nil, ws.OpPing, nil)
	wsSlowClose          = ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(ws.CloseSlow, "slow"))
	wsGoingAwayClose     = ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(ws.CloseGoingAway, "going away"))
	wsInternalErrorClose = ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(ws.CloseInternalError, "internal error"))
	wsSignedOutClose     = ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(ws.CloseSignedOut, "signed out"))
)

// handleWS upgrades to a WebSocket. The handler returns at once: the connection then lives on one
// reader goroutine plus an Outbox, written by the hub's flush workers (a goroutine of its own only
// while the peer is too slow to take a write at once).
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r) {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "WebSocket connections from origin %q are refused", r.Header.Get("Origin")))
		return
	}
	if s.draining.Load() {
		s.writeError(w, r, natter.Errorf(natter.EUNAVAILABLE, "shutting down"))
		return
	}
	user := authFrom(r.Context()).user.Name
	sl, err := s.takeSlot(r, user)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	conn, err := ws.Upgrade(w, r, nil)
	if err != nil {
		s.releaseSlot(sl)
		return // Upgrade has answered the client
	}
	c := &wsConn{srv: s, user: user, guest: authFrom(r.Context()).user.Guest}
	c.lastRead.Store(time.Now().UnixNano())
	parked := park.Supported && !s.noPark.Load() && ws.RawSocket(conn) != nil
	if parked {
		// Before the outbox exists, so that its close (which cancels the waiter) sees it.
		conn, c.pending = ws.Detach(conn)
		c.raw = sock.Raw(conn)
		c.rs = &wsReadState{limit: s.limits.MaxFrameBytes, handle: c.handleRead}
		c.waiter = park.NewWaiter(c.raw, c.readParked)
	}
	c.out = s.newOutbox(conn, c.closed)
	c.out.SlowFinal = wsSlowClose
	if !s.addConn(c, authFrom(r.Context()), sl) {
		c.out.CloseWith(wsGoingAwayClose, true)
		return
	}
	if parked {
		go c.readParked()
	} else {
		go c.readLoop(conn)
	}
}

// originAllowed refuses WebSocket upgrades that a page on another site started: browsers always
// send Origin, and only same-origin pages or configured origins may use the user's cookie here.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser: no ambient credentials to abuse
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// wsConn is one WebSocket client: its subscriptions and its outbox.
//
// Memory per idle connection is what limits how many one node holds, so: the reader goroutine
// only reads (frames are handled by a worker that exists only while frames wait, so the reader's
// stack never grows), the subscriptions are a short slice rather than a map, and the outbox
// holds no buffer while idle.
type wsConn struct {
	srv      *Server
	user     string
	guest    bool
	out      *hub.Outbox
	lastRead atomic.Int64

	mu   sync.Mutex
	subs []roomSub
	gone bool // closed: no new subscriptions

	inMu       sync.Mutex
	inSpace    chan struct{} // made while the reader waits for room in a full inbox
	inbox      [][]byte
	processing bool
	broken     bool          // the frame handler panicked: frames are dropped from then on
	inFlight   chan struct{} // made on the first send: a semaphore of maxInFlight

	// The reader's (one goroutine at a time). With a waiter, the connection is read by
	// readParked; without, by readLoop.
	waiter    *park.Waiter
	raw       syscall.RawConn
	pending   []byte       // read ahead by the HTTP server: the first bytes readParked handles
	rs        *wsReadState // the reader's state once it uses one
	lastFrame int64        // unix nanoseconds of the last frame read
	prevFrame int64        // readParked: lastFrame when the socket was last found empty
	isBusy    bool         // readParked: what busy said last
}

// roomSub is one of a connection's subscriptions.
type roomSub struct {
	room string
	sub  *hub.Subscription
}

// maxInbox bounds the frames read but not yet handled; past it the reader stops reading, so a
// client that floods frames is slowed by TCP flow control instead of growing memory.
const maxInbox = 64

// maxInFlight bounds one connection's messages queued in the store and not yet acknowledged.
const maxInFlight = 32

// clientFrame is any frame a client sends; fields are used per type.
type clientFrame struct {
	Type     string          `json:"type"`
	Room     string          `json:"room"`
	After    json.RawMessage `json:"after"`
	Body     string          `json:"body"`
	ClientID string          `json:"client_id"`
	Kind     string          `json:"kind"`
	Target   int64           `json:"target"`
	ReplyTo  int64           `json:"reply_to"`
	Epoch    string          `json:"epoch"` // read
	Seq      *int64          `json:"seq"`   // read
}

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
	// RetryAfterMS is set on rate_limited: how long until a retry can succeed (the WebSocket
	// form of HTTP's Retry-After).
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

type ackFrame struct {
	Type     string `json:"type"`
	ClientID string `json:"client_id"`
	Seq      int64  `json:"seq"`
	Room     string `json:"room"`
	Created  bool   `json:"created"`
}

// appendAckFrame is the WebSocket frame of an ackFrame, written by hand: acks are encoded on the
// store's committer (or WAL syncer) goroutine, one per message, and encoding/json's reflection was a visible
// share of its time. The bytes are the same as json.Marshal's (ws_internal_test.go checks).
func appendAckFrame(clientID string, msg natter.Message, created bool) []byte {
	var scratch [160]byte
	body := append(scratch[:0], `{"type":"ack","client_id":`...)
	body = natter.AppendJSONString(body, clientID)
	body = append(body, `,"seq":`...)
	body = strconv.AppendInt(body, msg.Seq, 10)
	body = append(body, `,"room":`...)
	body = natter.AppendJSONString(body, msg.Room)
	body = append(body, `,"created":`...)
	body = strconv.AppendBool(body, created)
	body = append(body, '}')
	return ws.AppendFrame(make([]byte, 0, len(body)+4), ws.OpText, body)
}

func (c *wsConn) readLoop(conn net.Conn) {
	defer c.out.Close()
	defer c.recoverReader()
	// Most connections send a subscribe or two and then only answer pings: they read through a
	// ws.Reader, which keeps the reader's stack small while it waits. One that keeps sending
	// switches to wsReadState, which reads each arrival once; handling frames inside the
	// socket's read callback grows the goroutine's stack, a cost only busy connections pay.
	rd := ws.NewReader(conn, true, c.srv.limits.MaxFrameBytes)
	for texts, after := 0, int(c.srv.pushAfter.Load()); texts < after || rd.Buffered() > 0 || rd.InMessage(); {
		op, payload, err := rd.ReadMessage()
		if err := c.handleRead(op, payload, err); err != nil {
			c.readFailed(err)
			return
		}
		if op == ws.OpText {
			texts++
		}
	}
	c.srv.pushReaders.Add(1)
	r := &wsReadState{limit: c.srv.limits.MaxFrameBytes, handle: c.handleRead}
	c.rs = r
	err := ws.ReadEach(conn, r.space, r.got, r.wait)
	r.release()
	c.readFailed(err)
}

// readParked reads what the socket has now and then, rather than wait for more, parks the
// connection (park.Waiter): no goroutine runs for it, and no stack is kept, until bytes arrive
// and the poller starts readParked again on a new goroutine. That is what most connections do
// all day: subscribe, then only answer pings. While frames come less than busyGap apart, the
// connection is busy: its reader keeps a goroutine, woken by the runtime's poller (cheaper per
// arrival than through the park poller's thread), and parks again once they stop.
func (c *wsConn) readParked() {
	defer c.recoverReader()
	r := c.rs
	var err error
	if c.pending != nil {
		err = r.feed(c.pending)
		c.pending = nil
	}
	if err == nil {
		err = sock.ReadReady(c.raw, r.space, r.got)
	}
	if err == nil && c.busy() {
		c.srv.pushReaders.Add(1)
		r.wait()
		err = sock.ReadWhile(c.raw, r.space, r.got, c.stayBusy)
	}
	if err == nil {
		r.wait() // the buffer goes back to the pool unless a frame is half-read
		if err = c.waiter.Arm(); err == nil {
			return // from here on, another readParked may be running
		}
		if !errors.Is(err, net.ErrClosed) {
			// The poller refused (epoll's limit on watched sockets, say): this connection
			// reads with a goroutine of its own from now on, as where nothing parks.
			c.srv.noteParkFailed(err)
			err = sock.ReadEach(c.raw, r.space, r.got, r.wait)
		}
	}
	r.release()
	c.readFailed(err)
	c.out.Close()
}

// busy runs each time readParked finds the socket empty: it reports whether the last frame read
// came less than busyGap after the one before the socket was last found empty. With no new frame
// since (nothing read, or part of one) the answer stays what it was.
func (c *wsConn) busy() bool {
	if last := c.lastFrame; last != c.prevFrame {
		c.isBusy = c.prevFrame != 0 && last-c.prevFrame < c.srv.busyGap.Load()
		c.prevFrame = last
	}
	return c.isBusy
}

// stayBusy is busy for sock.ReadWhile: true keeps the goroutine waiting, false parks.
func (c *wsConn) stayBusy() bool {
	if !c.busy() {
		return false
	}
	c.rs.wait()
	return true
}

// defaultBusyGap: a WebSocket whose frames come less than this apart keeps a reader goroutine
// (readParked). Parking costs a wake-up of the park poller's thread and a new goroutine per
// arrival, nothing at a person's typing speed; a goroutine costs at least 4 KiB of memory.
const defaultBusyGap = 250 * time.Millisecond

// pushAfterTexts is how many text frames a connection sends before its reads switch to
// wsReadState.
const pushAfterTexts = 16

// wsReadState reads a connection's frames as they arrive, one read(2) per arrival (ws.ReadEach):
// reading through an io.Reader took three per client frame (the 128-byte head, the rest of the
// payload, and one that found the socket empty). It feeds whole frames to a ws.Reader, which
// validates and decodes them. The buffer and the Reader come from a pool while the connection
// reads and go back when it waits with nothing half-read, so an idle connection holds neither.
type wsReadState struct {
	limit  int                                  // the largest message accepted
	handle func(ws.Opcode, []byte, error) error // wsConn.handleRead: what the Reader returns
	f      *frameFeed                           // nil while idle
}

// frameFeed is a connection's read buffer and frame decoder while it has them.
type frameFeed struct {
	buf []byte // read bytes are buf[:n]; a frame bigger than the buffer grows it
	n   int
	src bytes.Reader // the whole frames of buf, for rd
	rd  *ws.Reader
}

// feedBufSize is the pooled read buffer: a few client frames.
const feedBufSize = 4096

// feedsHeld counts the feeds connections hold now, for tests: an idle connection holds none.
var feedsHeld atomic.Int64

var feedPool = sync.Pool{New: func() any {
	f := &frameFeed{buf: make([]byte, feedBufSize)}
	f.rd = ws.NewReader(&f.src, true, 0)
	return f
}}

func (r *wsReadState) space() []byte {
	if r.f == nil {
		feedsHeld.Add(1)
		r.f = feedPool.Get().(*frameFeed)
		r.f.rd.SetLimit(r.limit)
	}
	f := r.f
	if f.n == len(f.buf) {
		// One incomplete frame fills the buffer (got moved it to the front): make room for
		// the rest of it. got has refused a frame over the limit.
		need := int(ws.FrameLen(f.buf[:f.n]))
		f.buf = append(f.buf, make([]byte, max(need, 2*len(f.buf))-len(f.buf))...)
	}
	return f.buf[f.n:]
}

// got decodes and handles every whole frame read so far, and keeps the rest at the front of
// the buffer. Its error ends the connection. A frame whose header is enough to refuse it (too
// large, a bad opcode, a control frame over 125 bytes...) is refused at once, as a ws.Reader
// reading the socket would, rather than after its payload.
func (r *wsReadState) got(n int) error {
	f := r.f
	f.n += n
	whole := 0
	for {
		l := ws.FrameLen(f.buf[whole:f.n])
		if l == 0 || l > int64(f.n-whole) {
			break
		}
		whole += int(l)
	}
	if err := r.decode(f.buf[:whole]); err != nil {
		return err
	}
	rest := f.buf[whole:f.n]
	if herr := f.rd.HeaderError(rest); herr != nil {
		if err := r.decode(rest); err != nil {
			return err // the Reader's own refusal, herr
		}
		return herr
	}
	f.n = copy(f.buf, rest)
	return nil
}

// decode hands frames to the feed's Reader and what it returns to handle, until the Reader has
// read everything: whole frames, or a frame it refuses from its header.
func (r *wsReadState) decode(frames []byte) error {
	if len(frames) == 0 {
		return nil
	}
	f := r.f
	f.src.Reset(frames)
	for {
		op, payload, err := f.rd.ReadMessage()
		if err == io.EOF {
			return nil // every whole frame is read; a fragmented message may go on later
		}
		if err := r.handle(op, payload, err); err != nil {
			return err
		}
	}
}

// feed handles bytes read before the reader took over (by the HTTP server, ahead of the
// handshake's end), as if just read.
func (r *wsReadState) feed(b []byte) error {
	for len(b) > 0 {
		n := copy(r.space(), b)
		b = b[n:]
		if err := r.got(n); err != nil {
			return err
		}
	}
	return nil
}

// wait gives the feed back to the pool unless a frame or a fragmented message is half-read.
func (r *wsReadState) wait() {
	if f := r.f; f != nil && f.n == 0 && !f.rd.InMessage() {
		r.release()
	}
}

func (r *wsReadState) release() {
	f := r.f
	if f == nil {
		return
	}
	r.f = nil
	feedsHeld.Add(-1)
	if len(f.buf) != feedBufSize {
		return // grown for a big frame: let it go
	}
	f.n = 0
	f.src.Reset(nil)
	f.rd.Reset(&f.src)
	feedPool.Put(f)
}

// handleRead acts on what ws.Reader.ReadMessage returned: one message or control frame from the
// client, or an error, returned if it ends the connection.
func (c *wsConn) handleRead(op ws.Opcode, payload []byte, err error) error {
	if h := c.srv.frameHook; h != nil && err == nil {
		h("read", payload)
	}
	if errors.Is(err, ws.ErrInvalidText) {
		// RFC 6455 would fail the connection; natter's contract answers it like any other bad
		// frame (an error, nothing stored) and reads on, since the message was read whole and
		// the stream is still in step.
		c.sendError(natter.Errorf(natter.EINVALID, "text frame is not valid UTF-8"), "")
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now().UnixNano()
	c.lastRead.Store(now)
	c.lastFrame = now
	switch op {
	case ws.OpPing:
		c.out.SendNow(ws.AppendFrame(nil, ws.OpPong, payload))
	case ws.OpPong:
	case ws.OpBinary:
		c.sendError(natter.Errorf(natter.EINVALID, "frames must be JSON text, not binary"), "")
	case ws.OpText:
		c.enqueue(payload)
	}
	return nil
}

// enqueue hands a frame to the worker, starting it if none runs. Frames are handled in the order
// they were read, so a connection's sends are stored in its order.
func (c *wsConn) enqueue(frame []byte) {
	c.inMu.Lock()
	for len(c.inbox) >= maxInbox && !c.broken {
		if c.inSpace == nil {
			c.inSpace = make(chan struct{})
		}
		space := c.inSpace
		c.inMu.Unlock()
		<-space
		c.inMu.Lock()
	}
	if c.broken {
		c.inMu.Unlock()
		return // the connection is closing after a panic in its frame handler
	}
	c.inbox = append(c.inbox, frame)
	if !c.processing {
		c.processing = true
		go c.process()
	}
	c.inMu.Unlock()
}

func (c *wsConn) process() {
	defer c.recoverHandler()
	for {
		c.inMu.Lock()
		if len(c.inbox) == 0 {
			c.processing = false
			c.inbox = nil
			c.inMu.Unlock()
			return
		}
		frame := c.inbox[0]
		c.inbox[0] = nil
		c.inbox = c.inbox[1:]
		if c.inSpace != nil {
			close(c.inSpace)
			c.inSpace = nil
		}
		c.inMu.Unlock()
		c.handleFrame(frame)
	}
}

// recoverReader, deferred by readLoop, keeps a panic in the connection's reader from ending the
// whole server, as net/http does for its handlers: the panic is logged with its stack and only
// this connection ends, with 1011 (internal error). A method without arguments, so that the
// idle reader's stack frame grows by one word only.
func (c *wsConn) recoverReader() {
	if v := recover(); v != nil {
		c.srv.logPanic("a WebSocket reader", v)
		if c.rs != nil {
			c.rs.release() // the pooled buffer, whatever state it is in (release resets it)
		}
		c.closeAfterPanic()
	}
}

// recoverHandler is recoverReader for the connection's frame handler. Nothing more of the
// connection's frames is handled; a reader waiting for room in the inbox goes on, and ends with
// the connection.
func (c *wsConn) recoverHandler() {
	v := recover()
	if v == nil {
		return
	}
	c.srv.logPanic("a WebSocket frame handler", v)
	c.dropInbox()
	c.closeAfterPanic()
}

// dropInbox empties the inbox for good, after its handler is gone: a reader waiting for room
// goes on, and every frame it reads from then on is dropped rather than left to wait for ever.
func (c *wsConn) dropInbox() {
	c.inMu.Lock()
	c.broken = true
	c.inbox = nil
	if c.inSpace != nil {
		close(c.inSpace)
		c.inSpace = nil
	}
	c.inMu.Unlock()
}

// closeAfterPanic ends the connection with 1011 (internal error), dropping what was queued for it.
func (c *wsConn) closeAfterPanic() {
	c.out.CloseWith(wsInternalErrorClose, true)
	<-c.out.Done()
}

// readFailed ends the connection after a read error, telling the client why where the protocol
// allows: a close frame answered, an oversize frame refused with 1009, a protocol error with 1002.
func (c *wsConn) readFailed(err error) {
	var ce *ws.CloseError
	switch {
	case errors.As(err, &ce):
		code := ce.Code
		if code == ws.CloseNoStatus {
			code = ws.CloseNormal
		}
		c.out.CloseWith(ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(code, "")), false)
	case errors.Is(err, ws.ErrTooLarge):
		c.sendError(natter.Errorf(natter.ETOOLARGE, "frame is larger than %d bytes", c.srv.limits.MaxFrameBytes), "")
		c.out.CloseWith(ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(ws.CloseTooBig, "frame too large")), false)
	case ws.CloseCodeFor(err) != 0:
		c.out.CloseWith(ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(ws.CloseCodeFor(err), "protocol error")), false)
	default:
		// The peer hung up or the network failed: end now, so presence says leave at once
		// rather than after the next failed write or the pong wait.
		c.out.Close()
	}
	<-c.out.Done()
}

func (c *wsConn) handleFrame(payload []byte) {
	if h := c.srv.frameHook; h != nil {
		h("handle", payload)
	}
	var f clientFrame
	if err := decodeClientFrame(payload, &f); err != nil {
		c.sendError(err, "")
		return
	}
	switch f.Type {
	case "subscribe":
		c.subscribe(f)
	case "unsubscribe":
		if !natter.ValidRoomName(f.Room) {
			c.sendError(natter.Errorf(natter.EINVALID, "room name %q is not valid", f.Room), f.Room)
			return
		}
		if sub := c.takeSub(f.Room); sub != nil {
			sub.Unsubscribe()
		}
	case "send":
		c.send(f)
	case "typing":
		c.typing(f.Room)
	case "read":
		c.markRead(f)
	case "ping":
		c.answer(hub.EncodeEvent("pong", map[string]string{"type": "pong"}).WS)
	default:
		c.sendError(natter.Errorf(natter.EINVALID, "unknown frame type %q: use subscribe, unsubscribe, send, typing, read or ping", f.Type), f.ClientID)
	}
}

// markRead moves the account's read mark in a room, as PUT /api/rooms/{room}/read does, without
// a request of its own. No answer when it is stored; an error frame whose ref is "read" otherwise.
func (c *wsConn) markRead(f clientFrame) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.srv.setReadMark(ctx, natter.User{Name: c.user, Guest: c.guest}, f.Room, f.Epoch, f.Seq); err != nil {
		c.sendError(err, "read")
	}
}

// typing passes on that the user is typing in room, which this connection must be subscribed to
// (so the room exists, and the user is in it). No answer: a notice is a hint.
func (c *wsConn) typing(room string) {
	c.mu.Lock()
	in := slices.ContainsFunc(c.subs, func(rs roomSub) bool { return rs.room == room })
	c.mu.Unlock()
	if !in {
		c.sendError(natter.Errorf(natter.EINVALID, "subscribe to room %q before typing in it", room), room)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := c.srv.checkBanned(ctx, c.user, room)
	cancel()
	if err != nil {
		c.sendError(err, room)
		return
	}
	c.srv.metrics.typing.Add(1)
	c.srv.hub.Typing(room, c.user)
}

func (c *wsConn) subscribe(f clientFrame) {
	if !natter.ValidRoomName(f.Room) {
		c.sendError(natter.Errorf(natter.ENOTFOUND, "no room named %q", f.Room), f.Room)
		return
	}
	req := hub.SubscribeRequest{Room: f.Room, User: c.user, Out: c.out, Transport: hub.WebSocket}
	if len(f.After) > 0 && string(f.After) != "null" {
		if err := json.Unmarshal(f.After, &req.After); err != nil || req.After < 0 {
			c.sendError(natter.Errorf(natter.EINVALID, "after must be a seq (a whole number >= 0)"), f.Room)
			return
		}
		req.HasAfter = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.srv.checkRoomName(ctx, natter.User{Name: c.user, Guest: c.guest}, f.Room); err != nil {
		c.sendError(err, f.Room)
		return
	}
	// A second subscribe to the same room restarts it from the new position.
	if old := c.takeSub(f.Room); old != nil {
		old.Unsubscribe()
	} else if c.subCount() >= c.srv.cfg.MaxConnRooms {
		c.sendError(natter.Errorf(natter.EINVALID, "a connection is subscribed to at most %d rooms at once: unsubscribe from one, or open another connection", c.srv.cfg.MaxConnRooms), f.Room)
		return
	}
	sub, _, err := c.srv.hub.Subscribe(ctx, req)
	if err != nil {
		if natter.ErrorCode(err) == natter.ENOTFOUND {
			err = natter.Errorf(natter.ENOTFOUND, "no room named %q", f.Room)
		}
		c.sendError(err, f.Room)
		return
	}
	c.mu.Lock()
	if c.gone { // the connection closed meanwhile
		c.mu.Unlock()
		sub.Unsubscribe()
		return
	}
	c.subs = append(c.subs, roomSub{room: f.Room, sub: sub})
	c.mu.Unlock()
	if !c.srv.seesStill(natter.User{Name: c.user, Guest: c.guest}, f.Room) {
		c.leftRoom(f.Room)
	}
}

// subCount is how many rooms the connection is subscribed to.
func (c *wsConn) subCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs)
}

// takeSub removes and returns the subscription to room, if any.
func (c *wsConn) takeSub(room string) *hub.Subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, rs := range c.subs {
		if rs.room == room {
			c.subs = append(c.subs[:i], c.subs[i+1:]...)
			return rs.sub
		}
	}
	return nil
}

// send appends a message. Frames are handled one at a time in the order read, so a connection's
// messages are stored in the order it sent them. Where the store can queue appends, up to
// maxInFlight of one connection's messages wait for commit together (the ack follows each
// commit), so a single busy sender still benefits from group commit.
func (c *wsConn) send(f clientFrame) {
	req, stored, err := c.srv.checkSend(context.Background(), natter.User{Name: c.user, Guest: c.guest}, natter.AppendRequest{Room: f.Room, Body: f.Body, ClientID: f.ClientID, Kind: f.Kind, Target: f.Target, ReplyTo: f.ReplyTo})
	if err != nil {
		c.sendError(err, f.ClientID)
		return
	}
	ack := func(msg natter.Message, created bool, err error) {
		if err != nil {
			c.sendError(sendError(req, err), f.ClientID)
			return
		}
		c.srv.stored(natter.User{Name: c.user, Guest: c.guest}, msg, created)
		c.answer(appendAckFrame(f.ClientID, msg, created))
	}
	if stored != nil {
		// A retry of a stored message refused by the rate limit: the same ack as a repeat. The
		// lookup queued behind this connection's appends in flight, so their acks went first.
		ack(*stored, false, nil)
		return
	}
	if async, ok := c.srv.store.(natter.AsyncAppender); ok {
		c.inMu.Lock()
		if c.inFlight == nil {
			c.inFlight = make(chan struct{}, maxInFlight)
		}
		inFlight := c.inFlight
		c.inMu.Unlock()
		inFlight <- struct{}{}
		start := time.Now()
		err := async.AppendMessageAsync(context.Background(), req, func(msg natter.Message, created bool, err error) {
			<-inFlight
			c.srv.metrics.sendLatency.observe(time.Since(start))
			ack(msg, created, err)
		})
		if err != nil {
			<-inFlight
			ack(natter.Message{}, false, err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	msg, created, err := c.srv.store.AppendMessage(ctx, req)
	c.srv.metrics.sendLatency.observe(time.Since(start))
	ack(msg, created, err)
}

func (c *wsConn) sendError(err error, ref string) {
	code := natter.ErrorCode(err)
	if code == natter.EINTERNAL {
		c.srv.logger.Error("websocket request failed", "user", c.user, "err", err)
	}
	f := errorFrame{Type: "error", Code: code, Message: natter.ErrorMessage(err), Ref: ref}
	var rl *retryError
	if errors.As(err, &rl) {
		f.RetryAfterMS = max(rl.retryAfter.Milliseconds(), 1)
	}
	c.answer(hub.EncodeEvent("error", f).WS)
}

// answer sends a frame the client is waiting for at once (no coalescing wait). A client whose
// queue can't take even that is closed as slow: dropping an ack silently would leave it waiting.
func (c *wsConn) answer(frame []byte) {
	if !c.out.SendNow(frame) {
		c.out.CloseSlow()
	}
}

// closed runs once when the outbox closes: the subscriptions end and presence is updated.
func (c *wsConn) closed() {
	if c.waiter != nil {
		c.waiter.Cancel() // a parked reader is never started again: its socket is closed
	}
	c.mu.Lock()
	subs := c.subs
	c.subs, c.gone = nil, true
	c.mu.Unlock()
	for _, rs := range subs {
		rs.sub.Unsubscribe()
	}
	c.srv.removeConn(c)
}

func (c *wsConn) keepalive(now time.Time) {
	c.out.CloseIfStuck(now)
	if now.Sub(time.Unix(0, c.lastRead.Load())) > c.srv.cfg.PongWait {
		c.out.Close() // nothing read, not even a pong: the peer is gone
		return
	}
	if now.Sub(c.out.IdleSince()) >= c.srv.cfg.KeepaliveIdle {
		c.out.Send(wsPingFrame)
	}
}

func (c *wsConn) goingAway() { c.out.CloseWith(wsGoingAwayClose, false) }

func (c *wsConn) leftRoom(room string) {
	if sub := c.takeSub(room); sub != nil {
		sub.Unsubscribe()
		c.sendError(natter.Errorf(natter.ENOTFOUND, "no room named %q", room), room)
	}
}

func (c *wsConn) signedOut() { c.out.CloseWith(wsSignedOutClose, false) }

func (c *wsConn) done() <-chan struct{} { return c.out.Done() }
