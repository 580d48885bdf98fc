package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"natter/ws"
)

// proxy is a reverse proxy in front of natter that a test can turn against the page, as a
// corporate proxy or a NAT might: it refuses the paths it is told to block, and it can freeze the
// streams (event streams and WebSockets) open at that moment, which then stay open and carry
// nothing more, with no error. It can also lose single requests and WebSocket frames while the
// connection carries on as if nothing happened.
type proxy struct {
	URL string

	mu        sync.Mutex
	blocked   []string // path suffixes answered with 502
	live      map[*gate]bool
	opened    int                                 // streams ever opened
	drop      func(toServer bool, f wsFrame) bool // WebSocket frames to lose, on sockets opened while set
	dropped   int                                 // frames and requests lost so far
	swallowed int                                 // message POSTs still to lose
}

// wsFrame is what the proxy's drop rule sees of a natter WebSocket frame, in either direction.
type wsFrame struct {
	Type     string `json:"type"`
	ClientID string `json:"client_id"`
	Message  struct {
		Body string `json:"body"`
	} `json:"message"`
	Body string `json:"body"` // a send's
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{live: make(map[*gate]bool)}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	rp.ModifyResponse = p.wrap
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		blocked := p.blocked
		p.mu.Unlock()
		for _, b := range blocked {
			if strings.HasSuffix(r.URL.Path, b) {
				http.Error(w, "blocked by the proxy", http.StatusBadGateway)
				return
			}
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages") && p.swallow() {
			io.Copy(io.Discard, r.Body) // read whole, so that the end of the connection is noticed
			<-r.Context().Done()        // natter never hears of it, and the browser never hears back
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.URL = srv.URL
	// Registered before the pages are, so it runs after they close (cleanups run last-in
	// first-out), since an open event stream keeps Close waiting.
	t.Cleanup(func() {
		p.mu.Lock()
		for g := range p.live {
			g.end()
		}
		p.mu.Unlock()
		srv.CloseClientConnections()
		srv.Close()
	})
	return p
}

// block makes the proxy refuse requests whose path ends in one of suffixes, and only those.
func (p *proxy) block(suffixes ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = suffixes
}

// freeze silences every stream open now, and answers how many there were.
func (p *proxy) freeze() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for g := range p.live {
		g.freeze()
	}
	return len(p.live)
}

// dropFrames makes WebSockets opened from now on lose every text frame for which drop (called
// with the proxy locked) answers true; toServer is the frame's direction. nil stops the losing.
func (p *proxy) dropFrames(drop func(toServer bool, f wsFrame) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop = drop
}

// swallowPosts makes the proxy lose the next n message POSTs: each is held open, unanswered and
// never passed on, until the browser gives up on it.
func (p *proxy) swallowPosts(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.swallowed = n
}

func (p *proxy) swallow() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.swallowed <= 0 {
		return false
	}
	p.swallowed--
	p.dropped++
	return true
}

// lost answers how many frames and requests the proxy has lost.
func (p *proxy) lost() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// streams answers how many streams have been opened through the proxy.
func (p *proxy) streams() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opened
}

// wrap puts a gate on the body of each stream: an event stream, or an upgraded connection's
// server-to-browser side.
func (p *proxy) wrap(res *http.Response) error {
	upgrade := res.StatusCode == http.StatusSwitchingProtocols
	if !upgrade && !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		return nil
	}
	g := &gate{ctx: res.Request.Context(), body: res.Body, frozen: make(chan struct{}), ended: make(chan struct{})}
	g.onClose = func() {
		p.mu.Lock()
		delete(p.live, g)
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.live[g] = true
	p.opened++
	filter := p.drop != nil
	p.mu.Unlock()
	if rwc, ok := res.Body.(io.ReadWriteCloser); ok && upgrade {
		if filter {
			rwc = p.filtered(rwc)
			g.body = rwc
		}
		res.Body = gatedConn{gate: g, w: rwc}
	} else {
		res.Body = g
	}
	return nil
}

// gate passes a response body through until frozen; then it holds every read until the
// connection ends, so the browser hears nothing more.
type gate struct {
	ctx     context.Context
	body    io.ReadCloser
	frozen  chan struct{}
	ended   chan struct{}
	once    sync.Once
	endOnce sync.Once
	onClose func()
}

func (g *gate) freeze() { g.once.Do(func() { close(g.frozen) }) }
func (g *gate) end()    { g.endOnce.Do(func() { close(g.ended) }) }

func (g *gate) Read(b []byte) (int, error) {
	if g.isFrozen() {
		return 0, g.hold()
	}
	n, err := g.body.Read(b)
	if g.isFrozen() { // frozen during the read: this data never arrives either
		return 0, g.hold()
	}
	return n, err
}

func (g *gate) isFrozen() bool {
	select {
	case <-g.frozen:
		return true
	default:
		return false
	}
}

// hold waits until the browser or the test ends the connection.
func (g *gate) hold() error {
	select {
	case <-g.ctx.Done():
	case <-g.ended:
	}
	return io.EOF
}

func (g *gate) Close() error {
	g.end()
	g.onClose()
	return g.body.Close()
}

// gatedConn is an upgraded connection: reads (server to browser) go through the gate, and once
// frozen, writes (browser to server) are dropped, so that neither end hears the other.
type gatedConn struct {
	*gate
	w io.ReadWriteCloser
}

func (c gatedConn) Write(b []byte) (int, error) {
	if c.isFrozen() {
		return len(b), nil
	}
	return c.w.Write(b)
}

// filtered relays a WebSocket frame by frame in both directions, losing those the drop rule
// picks; the rest pass re-encoded, which the peers can't tell from the originals.
func (p *proxy) filtered(up io.ReadWriteCloser) io.ReadWriteCloser {
	down, downW := io.Pipe() // natter's frames that pass, for the browser
	upR, upW := io.Pipe()    // the browser's bytes, to be filtered
	go func() { downW.CloseWithError(p.relay(downW, up, false)) }()
	go func() {
		upR.CloseWithError(p.relay(up, upR, true))
		up.Close()
	}()
	return filteredConn{down, upW, up}
}

// relay copies frames from src to dst until src ends, dropping those the rule picks.
func (p *proxy) relay(dst io.Writer, src io.Reader, toServer bool) error {
	r := ws.NewReader(src, toServer, 0)
	for {
		op, data, err := r.ReadMessage()
		var closed *ws.CloseError
		if errors.As(err, &closed) {
			op, data, err = ws.OpClose, ws.ClosePayload(closed.Code, closed.Reason), nil
		}
		if err != nil {
			return err
		}
		if op == ws.OpText {
			var f wsFrame
			_ = json.Unmarshal(data, &f)
			p.mu.Lock()
			lose := p.drop != nil && p.drop(toServer, f)
			if lose {
				p.dropped++
			}
			p.mu.Unlock()
			if lose {
				continue
			}
		}
		var b []byte
		if toServer {
			b = ws.AppendMaskedFrame(nil, op, data, [4]byte{0x6e, 0x61, 0x74, 0x74})
		} else {
			b = ws.AppendFrame(nil, op, data)
		}
		if _, err := dst.Write(b); err != nil {
			return err
		}
	}
}

type filteredConn struct {
	down *io.PipeReader
	upW  *io.PipeWriter
	up   io.ReadWriteCloser
}

func (c filteredConn) Read(b []byte) (int, error)  { return c.down.Read(b) }
func (c filteredConn) Write(b []byte) (int, error) { return c.upW.Write(b) }

func (c filteredConn) Close() error {
	c.upW.Close()
	c.down.Close()
	return c.up.Close()
}
