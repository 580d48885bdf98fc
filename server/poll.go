package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"natter"
	"natter/hub"
)

// pollWriteTimeout bounds the write of a long-poll's answer: a client that reads nothing for
// that long loses the connection, and resumes from its cursor on the next.
const pollWriteTimeout = 10 * time.Second

// parkedPoll is a long-poll waiting for its room's next message. Its connection is hijacked from
// the HTTP server and nothing runs for it while it waits: no goroutine, no buffers, just this
// struct, a hub callback and a runtime timer. That is what lets one node hold tens of thousands of
// long-polling clients. Once answered, the connection goes back to net/http through the server's
// Listener for the client's next request, unless the client asked to close it or there is no
// such listener; then the answer says Connection: close.
type parkedPoll struct {
	srv       *Server
	conn      net.Conn
	room      string
	q         readQuery
	deadline  time.Time
	keepAlive bool // the client may send its next request on conn

	mu       sync.Mutex
	answered bool
	waiter   *hub.Waiter
	timer    *time.Timer
	finished chan struct{}
}

// park hijacks the request's connection and waits for a publish to room, the deadline, or
// shutdown. notify is the hub channel taken before the store read that found nothing: if it is
// already closed, a message arrived in between and the poll answers at once. A poll refused a
// place by the connection limits (takeSlot) gets their error, which the caller answers.
func (s *Server) park(w http.ResponseWriter, r *http.Request, room string, q readQuery, notify <-chan struct{}) error {
	user := authFrom(r.Context()).user.Name
	sl, err := s.takeSlot(r, user)
	if err != nil {
		return err
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.releaseSlot(sl)
		return natter.Internal("park long-poll", err)
	}
	p := &parkedPoll{srv: s, conn: conn, room: room, q: q, deadline: s.now().Add(q.wait), finished: make(chan struct{})}
	// Bytes the client sent after its request (pipelining, which browsers don't do) would be
	// lost to net/http: such a connection is closed after the answer, as is one whose client
	// asked for that.
	p.keepAlive = r.ProtoAtLeast(1, 1) && !r.Close && brw.Reader.Buffered() == 0
	if !s.addConn(p, authFrom(r.Context()), sl) {
		go p.answer(false)
		return nil
	}
	if !s.seesStill(authFrom(r.Context()).user, room) {
		go p.finish(false)
		return nil
	}
	p.mu.Lock()
	p.waiter = s.hub.OnPublish(room, p.wake)
	p.timer = time.AfterFunc(q.wait, func() { p.finish(false) })
	p.mu.Unlock()
	select {
	case <-notify:
		p.wake()
	default:
	}
	return nil
}

// wake runs in the publishing goroutine: it only hands off.
func (p *parkedPoll) wake() { go p.woken() }

// woken answers the poll if the room has a message after its cursor. A publish of a seq the poll
// already has is no answer: the message was committed before the poll looked at the room, and the
// hub published it (on its own goroutine) only after the poll had parked. The poll then waits on
// for the next publish, as the protocol says, instead of answering with nothing.
func (p *parkedPoll) woken() {
	for {
		notify, published := p.srv.hub.NotifyAfter(p.room)
		if published > p.q.after || p.srv.draining.Load() {
			p.finish(true)
			return
		}
		p.mu.Lock()
		if p.answered {
			p.mu.Unlock()
			return
		}
		w := p.srv.hub.OnPublish(p.room, p.wake)
		p.waiter = w
		p.mu.Unlock()
		select {
		case <-notify:
			// Published in between: that publish did not see the new waiter. Look again.
			if !w.Cancel() {
				return // it fired after all, and its own woken call answers
			}
		default:
			return
		}
	}
}

// finish answers the poll once: with the messages after its cursor when woken, with none when its
// wait is over or the server is shutting down.
func (p *parkedPoll) finish(woken bool) {
	p.mu.Lock()
	if p.answered {
		p.mu.Unlock()
		return
	}
	p.answered = true
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.waiter != nil {
		p.waiter.Cancel()
	}
	p.mu.Unlock()
	p.answer(woken)
}

func (p *parkedPoll) answer(read bool) {
	reuse := p.srv.reuse.Load()
	keep := p.keepAlive && reuse != nil && !p.srv.draining.Load()
	defer func() {
		// A panic here ends this poll's connection only, as net/http does for a handler; the
		// server goes on.
		if v := recover(); v != nil {
			p.srv.logPanic("a long-poll answer", v)
			keep = false
		}
		// Removed before the connection goes back: once it does, the client's next request
		// may be answered at once, and this poll must no longer count as parked by then.
		p.srv.removeConn(p)
		if !keep || !reuse.keep(p.conn, p.srv.cfg.IdleTimeout) {
			p.conn.Close()
		}
		close(p.finished)
	}()
	// Every poll of the room parked at the same cursor wakes on the same publish and would read
	// the same page: one read and one encoding serve all of them (10,000 pollers, one read).
	status, body := p.readAnswer(read)
	connection := ""
	if !keep {
		connection = "Connection: close\r\n"
	}
	head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: %d\r\n%s\r\n",
		status, http.StatusText(status), len(body), connection)
	p.conn.SetWriteDeadline(time.Now().Add(time.Duration(p.srv.pollWrite.Load())))
	bufs := net.Buffers{[]byte(head), body}
	if _, err := bufs.WriteTo(p.conn); err != nil {
		keep = false
		return
	}
	if keep {
		// net/http sets its own read deadlines but, without a WriteTimeout, no write deadline:
		// the one set above would fail the connection's next answers once it passed.
		p.conn.SetDeadline(time.Time{})
	}
}

// readAnswer reads and encodes the answer, shared with every poll parked at the same cursor. A
// panic in it is logged and answered with 500, like any internal error.
func (p *parkedPoll) readAnswer(read bool) (status int, body []byte) {
	defer func() {
		if v := recover(); v != nil {
			p.srv.logPanic("a long-poll answer", v)
			status, body = http.StatusInternalServerError, internalErrorBody
		}
	}()
	return p.srv.pollAnswers.do(pollAnswerKey{p.room, p.q.after, p.q.limit, read}, func() (int, []byte) {
		return p.srv.readPollAnswer(p.room, p.q, read)
	})
}

func (p *parkedPoll) keepalive(time.Time) {}

func (p *parkedPoll) goingAway() { go p.finish(false) }

func (p *parkedPoll) leftRoom(room string) {
	if p.room == room {
		p.goingAway()
	}
}

// signedOut answers the poll (with nothing new): the client's next poll then gets 401.
func (p *parkedPoll) signedOut() { p.goingAway() }

func (p *parkedPoll) done() <-chan struct{} { return p.finished }

// readPollAnswer reads and encodes a long-poll's answer: the messages after q.after (when read),
// or an error.
func (s *Server) readPollAnswer(room string, q readQuery, read bool) (int, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var msgs []natter.Message
	var err error
	if read {
		msgs, err = s.store.MessagesAfter(ctx, room, q.after, q.limit)
	}
	var r natter.Room
	if err == nil {
		r, err = s.store.Room(ctx, room)
	}
	status, body := http.StatusOK, []byte(nil)
	if err != nil {
		if natter.ErrorCode(err) == natter.ENOTFOUND {
			err = natter.Errorf(natter.ENOTFOUND, "no room named %q", room) // deleted while the poll waited
		} else {
			s.logger.Error("long-poll answer failed", "room", room, "err", err)
		}
		status = statusFor(natter.ErrorCode(err))
		body, _ = json.Marshal(errorBody{Error: errorDetail{Code: natter.ErrorCode(err), Message: natter.ErrorMessage(err)}})
	} else {
		if msgs == nil {
			msgs = []natter.Message{}
		}
		body, _ = json.Marshal(messagesBody{Room: r.Name, Epoch: r.Epoch, LastSeq: r.LastSeq, Messages: msgs})
	}
	return status, append(body, '\n')
}

// pollAnswerKey names a long-poll answer: polls with the same key get the same bytes.
type pollAnswerKey struct {
	room  string
	after int64
	limit int
	read  bool
}

// pollAnswerGroup runs one read for every concurrent long-poll answer with the same key: those
// that ask while it runs wait for it and share its result (read-only). One that asks after it
// has finished reads again, so no answer is older than its poll's wake-up.
type pollAnswerGroup struct {
	mu      sync.Mutex
	flights map[pollAnswerKey]*pollAnswerFlight
	reads   atomic.Int64 // reads run, for tests
	joined  atomic.Int64 // answers that shared another's read, for tests
	hook    func()       // tests: runs before each read
}

type pollAnswerFlight struct {
	done   chan struct{}
	status int
	body   []byte
}

func (g *pollAnswerGroup) do(k pollAnswerKey, read func() (int, []byte)) (int, []byte) {
	g.mu.Lock()
	if f, ok := g.flights[k]; ok {
		g.mu.Unlock()
		g.joined.Add(1)
		<-f.done
		return f.status, f.body
	}
	if g.flights == nil {
		g.flights = make(map[pollAnswerKey]*pollAnswerFlight)
	}
	f := &pollAnswerFlight{done: make(chan struct{})}
	g.flights[k] = f
	g.mu.Unlock()
	g.reads.Add(1)
	// If read panics, the polls sharing it answer 500 and the panic goes on to the caller's
	// recovery (parkedPoll.answer): none of them waits for ever.
	f.status, f.body = http.StatusInternalServerError, internalErrorBody
	defer func() {
		g.mu.Lock()
		delete(g.flights, k)
		g.mu.Unlock()
		close(f.done)
	}()
	if g.hook != nil {
		g.hook()
	}
	f.status, f.body = read()
	return f.status, f.body
}

// internalErrorBody answers a request that hit a bug.
var internalErrorBody = func() []byte {
	b, _ := json.Marshal(errorBody{Error: errorDetail{Code: natter.EINTERNAL, Message: "internal error"}})
	return append(b, '\n')
}()
