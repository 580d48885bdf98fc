package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"natter/app"
	"natter/server"
)

// refusedWS dials /ws as tok and wants the upgrade refused with status and code.
func refusedWS(t *testing.T, ts *testServer, tok string, status int, code string) {
	t.Helper()
	_, resp, err := ts.tryDialWS("/ws", tok)
	if err == nil || resp == nil {
		t.Fatalf("WebSocket past the limit: %v, want a %d refusal", err, status)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: body}
	json.Unmarshal(body, &r.Body)
	checkError(t, r, status, code)
	if resp.Header.Get("Retry-After") != "5" {
		t.Fatalf("WebSocket refused at a limit: Retry-After %q, want 5", resp.Header.Get("Retry-After"))
	}
}

// TestConnectionLimits: WebSockets, event streams and parked long-polls count against
// MaxUserConns per user (429 rate_limited past it) and MaxConns in all (503 unavailable); a
// refused connection changes nothing, requests that hold no connection are not limited, and a
// closed connection gives its place back.
func TestConnectionLimits(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.MaxConns, c.Server.MaxUserConns = 3, 2 })
	srv := ts.Main.Server()
	alice, bob, carol := ts.signIn("alice"), ts.signIn("bob"), ts.signIn("carol")

	aliceWS := ts.dialWS(alice)
	ts.openSSE("/api/rooms/lobby/events", alice)
	waitFor(t, "alice's two connections", func() bool { return srv.ConnCount() == 2 })
	// Alice's third, on any transport, is over her limit.
	refusedWS(t, ts, alice, http.StatusTooManyRequests, "rate_limited")
	for _, path := range []string{"/api/rooms/lobby/events", "/api/rooms/lobby/messages?after=0&wait=30"} {
		r := ts.do("GET", path, alice, nil)
		checkError(t, r, http.StatusTooManyRequests, "rate_limited")
		if r.Header.Get("Retry-After") != "5" {
			t.Fatalf("GET %s refused: Retry-After %q, want 5", path, r.Header.Get("Retry-After"))
		}
	}
	if n := srv.ConnCount(); n != 2 {
		t.Fatalf("%d connections after refusals, want 2", n)
	}

	// Bob's first fills the server; carol's are refused on every transport.
	ts.dialWS(bob)
	waitFor(t, "three connections", func() bool { return srv.ConnCount() == 3 })
	refusedWS(t, ts, carol, http.StatusServiceUnavailable, "unavailable")
	for _, path := range []string{"/api/rooms/lobby/events", "/api/rooms/lobby/messages?after=0&wait=30"} {
		checkError(t, ts.do("GET", path, carol, nil), http.StatusServiceUnavailable, "unavailable")
	}
	// What holds no connection still works: a read that does not wait, a send.
	if r := ts.do("GET", "/api/rooms/lobby/messages?after=0", carol, nil); r.Status != http.StatusOK {
		t.Fatalf("a read at the connection limit: %d %s", r.Status, r.Raw)
	}
	ts.mustPost(carol, "lobby", "sent while the server is full")

	// A closed connection gives its place back: carol gets in, and alice can open another.
	aliceWS.conn.Close()
	waitFor(t, "alice's WebSocket gone", func() bool { return srv.ConnCount() == 2 })
	carolWS := ts.dialWS(carol)
	carolWS.subscribe("lobby", 0)
	refusedWS(t, ts, alice, http.StatusServiceUnavailable, "unavailable") // full again
	carolWS.conn.Close()
	waitFor(t, "carol's WebSocket gone", func() bool { return srv.ConnCount() == 2 })
	ts.dialWS(alice).subscribe("lobby", 0)
}

// TestParkedPollsCountAndGiveBack: a parked long-poll holds a place until it is answered; then
// the place is free for the next.
func TestParkedPollsCountAndGiveBack(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.MaxUserConns = 1 })
	alice := ts.signIn("alice")
	answer := ts.doAsync("GET", "/api/rooms/lobby/messages?after=0&wait=30", alice, nil)
	parked(t, ts, 1)
	checkError(t, ts.do("GET", "/api/rooms/lobby/messages?after=0&wait=30", alice, nil), http.StatusTooManyRequests, "rate_limited")
	ts.mustPost(alice, "lobby", "wakes the poll")
	if r := <-answer; r.Status != http.StatusOK {
		t.Fatalf("parked poll: %d %s", r.Status, r.Raw)
	}
	waitFor(t, "the poll's place given back", func() bool { return ts.Main.Server().ConnCount() == 0 })
	for range 3 { // one at a time, each answered when its wait ends
		if r := ts.do("GET", "/api/rooms/lobby/messages?after=1&wait=0.05", alice, nil); r.Status != http.StatusOK {
			t.Fatalf("a poll after the first was answered: %d %s", r.Status, r.Raw)
		}
	}
}

// TestRefusedPollIsNotOnline: a long-poll refused a place by the connection limits does not put
// its user online; one that parks does.
func TestRefusedPollIsNotOnline(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.MaxConns = 1 })
	alice, bob := ts.signIn("alice"), ts.signIn("bob")
	answer := ts.doAsync("GET", "/api/rooms/lobby/messages?after=0&wait=30", alice, nil)
	parked(t, ts, 1)
	checkError(t, ts.do("GET", "/api/rooms/lobby/messages?after=0&wait=30", bob, nil), http.StatusServiceUnavailable, "unavailable")
	var p struct{ Online []string }
	if err := json.Unmarshal(ts.do("GET", "/api/rooms/lobby/presence", bob, nil).Raw, &p); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Online, []string{"alice"}) {
		t.Fatalf("online %q with alice's poll parked and bob's refused, want only alice", p.Online)
	}
	ts.mustPost(bob, "lobby", "wakes alice")
	<-answer
}

// TestMaxConnsDefault: with no MaxConns, the limit is DefaultMaxConns or the open-file limit less
// its reserve (1,024, or a quarter of a lower limit), whichever is lower, so the server refuses connections before it runs out of file
// descriptors to accept them with.
func TestMaxConnsDefault(t *testing.T) {
	ts := startServer(t)
	got, perUser, perAddr := ts.Main.Server().ConnLimits()
	want := server.DefaultMaxConns
	if n := server.OpenFileLimit(); n > 0 {
		want = min(want, n-min(server.FileReserve, n/4))
	}
	for _, c := range []struct{ limit, budget int }{{0, 0}, {1024, 768}, {4096, 3072}, {20000, 18976}, {1 << 20, 1<<20 - 1024}} {
		if got := server.FileBudget(c.limit); got != c.budget {
			t.Errorf("an open-file limit of %d allows %d connections, want %d", c.limit, got, c.budget)
		}
	}
	if got != want {
		t.Fatalf("MaxConns %d, want %d", got, want)
	}
	if got <= 0 || perUser != server.DefaultMaxUserConns || perAddr != server.DefaultMaxAddrConns {
		t.Fatalf("limits %d in all, %d per user, %d per address: want a limit in all, %d per user and %d per address by default", got, perUser, perAddr, server.DefaultMaxUserConns, server.DefaultMaxAddrConns)
	}
}

// refusedForAddr wants r refused by the per-address connection limit, naming addr.
func refusedForAddr(t *testing.T, r apiResponse, addr string) {
	t.Helper()
	checkError(t, r, http.StatusTooManyRequests, "rate_limited")
	if msg := r.errorMessage(); !strings.Contains(msg, addr+" already has") || !strings.Contains(msg, "one client address") {
		t.Fatalf("refusal %q does not name the address %s and its limit", msg, addr)
	}
	if r.Header.Get("Retry-After") != "5" {
		t.Fatalf("Retry-After %q, want 5", r.Header.Get("Retry-After"))
	}
}

// TestConnectionsPerAddress: WebSockets, event streams and parked long-polls count against
// MaxAddrConns per client address whoever's they are (users sharing a host, guest names made up
// by one), then 429 rate_limited naming the address; a refusal changes nothing, requests that
// hold no connection go on, a closed connection gives its place back, the refusals are counted
// in /metrics, and an untrusted peer's X-Forwarded-For changes nothing (and is logged once).
func TestConnectionsPerAddress(t *testing.T) {
	ts, logs := startServerLogged(t, func(c *app.Config) {
		c.Server.MaxAddrConns = 2
		c.Server.Metrics = true
	})
	srv := ts.Main.Server()
	alice, bob, carol := ts.signIn("alice"), ts.signIn("bob"), ts.signIn("carol")
	aliceWS := ts.dialWS(alice)
	ts.openSSE("/api/rooms/lobby/events", bob)
	waitFor(t, "two connections", func() bool { return srv.ConnCount() == 2 })

	_, resp, err := ts.tryDialWS("/ws", carol)
	if err == nil || resp == nil {
		t.Fatalf("carol's WebSocket past the address's limit: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: body}
	json.Unmarshal(body, &r.Body)
	refusedForAddr(t, r, "127.0.0.1")
	refusedForAddr(t, ts.do("GET", "/api/rooms/lobby/events", carol, nil), "127.0.0.1")
	refusedForAddr(t, ts.do("GET", "/api/rooms/lobby/messages?after=0&wait=30", carol, nil), "127.0.0.1")
	if strings.Contains(logs.String(), "trusted-proxy") {
		t.Fatalf("logged about a proxy with no X-Forwarded-For: %s", logs.String())
	}
	// A peer that is not a trusted proxy cannot name another client.
	for range 2 {
		refusedForAddr(t, ts.do("GET", "/api/rooms/lobby/events", carol, nil, "X-Forwarded-For", "203.0.113.7"), "127.0.0.1")
	}
	if n := strings.Count(logs.String(), "--trusted-proxy"); n != 1 || !strings.Contains(logs.String(), "connections refused") {
		t.Fatalf("%d warnings naming --trusted-proxy, want 1 about connections:\n%s", n, logs.String())
	}
	if n := srv.ConnCount(); n != 2 {
		t.Fatalf("%d connections after refusals, want 2", n)
	}
	// What holds no connection still works.
	if r := ts.do("GET", "/api/rooms/lobby/messages?after=0", carol, nil); r.Status != http.StatusOK {
		t.Fatalf("a read at the address's limit: %d %s", r.Status, r.Raw)
	}
	ts.mustPost(carol, "lobby", "sent at the address's limit")
	m := scrape(t, ts)
	if v := m[`natter_connections_refused_total{limit="address"}`]; v != 5 {
		t.Fatalf(`natter_connections_refused_total{limit="address"} = %v, want 5`, v)
	}
	if v := m[`natter_connection_limit{scope="address"}`]; v != 2 {
		t.Fatalf(`natter_connection_limit{scope="address"} = %v, want 2`, v)
	}

	// A closed connection gives its place back.
	aliceWS.conn.Close()
	waitFor(t, "alice's WebSocket gone", func() bool { return srv.ConnCount() == 1 })
	ts.dialWS(carol).subscribe("lobby", 0)
	refusedForAddr(t, ts.do("GET", "/api/rooms/lobby/events", alice, nil), "127.0.0.1")
}

// TestConnectionsPerAddressBehindAProxy: behind a trusted proxy each client counts on its own,
// as X-Forwarded-For names it, and IPv6 clients by their /64.
func TestConnectionsPerAddressBehindAProxy(t *testing.T) {
	ts := startServer(t, func(c *app.Config) {
		c.Server.MaxAddrConns = 1
		c.Server.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	srv := ts.Main.Server()
	alice, bob, carol, dan := ts.signIn("alice"), ts.signIn("bob"), ts.signIn("carol"), ts.signIn("dan")
	ts.dialWS(alice, "X-Forwarded-For", "203.0.113.7")
	refusedForAddr(t, ts.do("GET", "/api/rooms/lobby/events", bob, nil, "X-Forwarded-For", "203.0.113.7"), "203.0.113.7")
	ts.openSSE("/api/rooms/lobby/events", bob, "X-Forwarded-For", "203.0.113.8")
	ts.openSSE("/api/rooms/lobby/events", carol, "X-Forwarded-For", "2001:db8:1:2::1")
	refusedForAddr(t, ts.do("GET", "/api/rooms/lobby/messages?after=0&wait=30", dan, nil, "X-Forwarded-For", "2001:db8:1:2::ff"), "2001:db8:1:2::/64")
	ts.openSSE("/api/rooms/lobby/events", dan, "X-Forwarded-For", "2001:db8:1:3::1")
	waitFor(t, "four connections", func() bool { return srv.ConnCount() == 4 })
}
