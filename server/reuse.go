package server

import (
	"net"
	"net/http"
	"sync"
	"time"

	"natter/internal/sock"
)

// Listener returns ln wrapped so that the connections of answered long-polls come back through
// it: a parked long-poll holds a connection hijacked from net/http (so that it costs no goroutine
// while it waits), and net/http has no way to take a hijacked connection back. Handed to the
// wrapper's Accept instead, the connection is served again by net/http like a new one, and the
// client keeps it for its next poll (HTTP keep-alive) instead of opening another connection, and
// leaving a socket in TIME_WAIT, for every message.
//
// Serve the returned listener with the http.Server whose handler is s, and set that server's
// ConnState to s.ConnState. Without them (a server run on a listener of its own), long-poll
// answers close their connection.
func (s *Server) Listener(ln net.Listener) net.Listener {
	l := &reuseListener{
		Listener: ln,
		back:     make(chan net.Conn),
		accepted: make(chan acceptResult),
		pumpDone: make(chan struct{}),
		closed:   make(chan struct{}),
		fresh:    make(map[net.Conn]struct{}),
	}
	go l.pump()
	s.reuse.Store(l)
	return l
}

// ConnState is the http.Server ConnState hook that goes with Listener. net/http counts a
// connection handed back as new, and its Shutdown waits up to 5 seconds for a new connection's
// first request; the listener closes those still waiting for one when it is closed, so it must
// know which have had a request since.
func (s *Server) ConnState(c net.Conn, st http.ConnState) {
	if l := s.reuse.Load(); l != nil && st != http.StateNew {
		l.mu.Lock()
		delete(l.fresh, c)
		l.mu.Unlock()
	}
}

// reuseListener is the listener Listener returns: Accept yields new connections of the wrapped
// listener and connections handed back by give.
type reuseListener struct {
	net.Listener
	back     chan net.Conn
	accepted chan acceptResult
	pumpDone chan struct{} // closed when the wrapped listener failed for good; err says why
	err      error
	closed   chan struct{}
	once     sync.Once

	mu    sync.Mutex
	fresh map[net.Conn]struct{} // handed back, and no request read from them since
}

type acceptResult struct {
	c   net.Conn
	err error
}

// pump accepts from the wrapped listener until it fails for good or the wrapper is closed.
func (l *reuseListener) pump() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- acceptResult{c, err}:
		case <-l.closed:
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			if ne, ok := err.(interface{ Temporary() bool }); ok && ne.Temporary() {
				continue // net/http backs off and accepts again
			}
			l.err = err
			close(l.pumpDone)
			return
		}
	}
}

func (l *reuseListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.back:
		return c, nil
	case r := <-l.accepted:
		return r.c, r.err
	case <-l.pumpDone:
		return nil, l.err
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close closes the wrapped listener and the connections handed back that wait for their next
// request (a client retries a request on a kept connection that closes); connections handed back
// after it are closed by their giver.
func (l *reuseListener) Close() error {
	l.once.Do(func() {
		l.mu.Lock()
		close(l.closed)
		for c := range l.fresh {
			c.Close()
		}
		clear(l.fresh)
		l.mu.Unlock()
	})
	return l.Listener.Close()
}

// keep waits for the client's next request on c, then hands c back to be served. net/http counts
// a connection handed back as new and gives it ReadHeaderTimeout (10 s) from then, not the
// IdleTimeout (120 s) of a kept-alive connection: a client that pauses between polls would find
// the connection closed. So c waits here, on a goroutine of its own (a small stack: the 8 KiB of
// net/http's buffers come only with the request), until its next request's first bytes come or
// the client hangs up, and is closed if nothing comes within idle. Where the socket can't be
// watched, c goes back at once. It reports false, and c is the caller's to close, if the
// listener is closed.
func (l *reuseListener) keep(c net.Conn, idle time.Duration) bool {
	rc := sock.Raw(c)
	if rc == nil {
		return l.give(c)
	}
	if !l.addFresh(c) { // Close closes it while it waits
		return false
	}
	go func() {
		c.SetReadDeadline(time.Now().Add(idle))
		if err := sock.WaitReadable(rc); err != nil {
			// Idle too long, or closed by Close.
			l.forget(c)
			c.Close()
			return
		}
		c.SetReadDeadline(time.Time{})
		l.handBack(c)
	}()
	return true
}

// handBack hands c, already among the fresh connections, to Accept; it closes c if the listener
// is closed first.
func (l *reuseListener) handBack(c net.Conn) {
	select {
	case l.back <- c:
	case <-l.closed:
		l.forget(c)
		c.Close()
	}
}

// forget drops c from the fresh connections.
func (l *reuseListener) forget(c net.Conn) {
	l.mu.Lock()
	delete(l.fresh, c)
	l.mu.Unlock()
}

// give hands c back to be served again at once. It reports false, and c is the caller's to
// close, if the listener is closed.
func (l *reuseListener) give(c net.Conn) bool {
	if !l.addFresh(c) {
		return false
	}
	l.handBack(c)
	return true
}

// addFresh counts c among the connections handed back and not yet served again, which Close
// closes. It reports false if the listener is closed.
func (l *reuseListener) addFresh(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
		return false
	default:
	}
	l.fresh[c] = struct{}{}
	return true
}
