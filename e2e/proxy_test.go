package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// proxy is a reverse proxy in front of natter that a test can turn against the page, as a
// corporate proxy or a NAT might: it refuses the paths it is told to block, and it can freeze the
// streams (event streams and WebSockets) open at that moment, which then stay open and carry
// nothing more, with no error.
type proxy struct {
	URL string

	mu      sync.Mutex
	blocked []string // path suffixes answered with 502
	live    map[*gate]bool
	opened  int // streams ever opened
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
	p.mu.Unlock()
	if rwc, ok := res.Body.(io.ReadWriteCloser); ok && upgrade {
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
