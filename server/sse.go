package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"natter"
	"natter/hub"
	"natter/internal/park"
	"natter/internal/sock"
)

// sseHeader starts every event stream. The body ends when the connection closes (no chunking), so
// the hijacked connection can be written by the same Outbox as a WebSocket, and an idle stream
// costs no goroutine of the HTTP server. retry asks browsers to reconnect after 2 s.
const sseHeader = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream; charset=utf-8\r\n" +
	"Cache-Control: no-store\r\n" +
	"Connection: close\r\n" +
	"X-Accel-Buffering: no\r\n" +
	"\r\n" +
	"retry: 2000\n\n"

// sseKeepalive is a comment, which keeps proxies from timing the stream out, plus a ping event,
// which a browser's EventSource (it hides comments) can see, so a page notices a dead stream.
var sseKeepalive = []byte(": keepalive\nevent: ping\ndata: {\"type\":\"ping\"}\n\n")

// handleSSE streams a room as Server-Sent Events, from after Last-Event-ID, or ?after=, or the
// end of the log.
func (s *Server) handleSSE(w http.ResponseWriter, r *http.Request) {
	room, err := s.roomFromPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req := hub.SubscribeRequest{Room: room.Name, User: authFrom(r.Context()).user.Name, Transport: hub.SSE}
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after")} {
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.writeError(w, r, natter.Errorf(natter.EINVALID, "the stream position must be a seq (a whole number >= 0), not %q", v))
			return
		}
		req.After, req.HasAfter = n, true
		break
	}
	if s.draining.Load() {
		s.writeError(w, r, natter.Errorf(natter.EUNAVAILABLE, "shutting down"))
		return
	}
	sl, err := s.takeSlot(r, req.User)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.releaseSlot(sl)
		s.writeError(w, r, natter.Internal("sse hijack", err))
		return
	}
	if brw.Reader.Buffered() > 0 {
		s.releaseSlot(sl)
		conn.Close() // a pipelined request after a stream can never be answered
		return
	}
	c := &sseConn{srv: s}
	if rc := sock.Raw(conn); park.Supported && rc != nil && !s.noPark.Load() {
		// Before the outbox exists, so that its close (which cancels the waiter) sees it.
		c.waiter = park.NewWaiter(rc, c.hungUp)
	}
	c.out = s.newOutbox(conn, c.closed)
	if !s.addConn(c, authFrom(r.Context()), sl) {
		conn.Close()
		return
	}
	c.out.Send([]byte(sseHeader))
	req.Out = c.out
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, _, err := s.hub.Subscribe(ctx, req)
	if err != nil {
		c.out.Close()
		return
	}
	c.sub.Store(sub)
	if c.out.Closed() {
		sub.Unsubscribe()
	}
	if !s.seesStill(authFrom(r.Context()).user, room.Name) {
		c.goingAway()
	}
	if c.waiter != nil {
		err := c.waiter.Arm()
		if err == nil {
			return // parked: no goroutine waits for the client to hang up
		}
		if !errors.Is(err, net.ErrClosed) {
			s.noteParkFailed(err)
		}
	}
	go c.watch(conn)
}

// sseConn is one event stream.
type sseConn struct {
	srv    *Server
	out    *hub.Outbox
	sub    atomicSub
	waiter *park.Waiter // on Linux: closes the stream on any read result, like watch
}

// watch notices a client that hangs up at once (for presence), instead of at the next write.
// Clients send nothing on an event stream, so any read result ends it. Where streams park
// (park.Waiter, on Linux), the waiter does this without a goroutine.
func (c *sseConn) watch(conn net.Conn) {
	var b [1]byte
	conn.Read(b[:])
	c.out.Close()
}

// hungUp runs when a parked stream's socket has something to read: the client hung up or sent
// bytes it must not send.
func (c *sseConn) hungUp() { c.out.Close() }

func (c *sseConn) closed() {
	if c.waiter != nil {
		c.waiter.Cancel()
	}
	if sub := c.sub.Swap(nil); sub != nil {
		sub.Unsubscribe()
	}
	c.srv.removeConn(c)
}

func (c *sseConn) keepalive(now time.Time) {
	c.out.CloseIfStuck(now)
	if now.Sub(c.out.IdleSince()) >= c.srv.cfg.KeepaliveIdle {
		c.out.Send(sseKeepalive)
	}
}

func (c *sseConn) goingAway() { c.out.CloseWith(nil, false) }

func (c *sseConn) leftRoom(room string) {
	if sub := c.sub.p.Load(); sub != nil && sub.Room() == room {
		c.goingAway()
	}
}

// signedOut ends the stream: the client's reconnection then gets 401.
func (c *sseConn) signedOut() { c.goingAway() }

func (c *sseConn) done() <-chan struct{} { return c.out.Done() }
