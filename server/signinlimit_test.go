package server_test

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"natter/app"
)

// signInFrom signs name in as a guest, with X-Forwarded-For set to xff unless it is empty.
func (ts *testServer) signInFrom(name, xff string) apiResponse {
	ts.t.Helper()
	var hdr []string
	if xff != "" {
		hdr = []string{"X-Forwarded-For", xff}
	}
	return ts.do("POST", "/api/session", "", map[string]string{"name": name}, hdr...)
}

// refusedSignIn wants r refused by the per-address limit, naming addr, with Retry-After retry
// and neither a token nor a cookie.
func refusedSignIn(t *testing.T, r apiResponse, addr, retry string) {
	t.Helper()
	checkError(t, r, http.StatusTooManyRequests, "rate_limited")
	if msg := r.errorMessage(); !strings.Contains(msg, "too many sign-ins from "+addr+":") {
		t.Fatalf("refusal %q does not name %s", msg, addr)
	}
	got := r.Header.Get("Retry-After")
	if lo, hi, isRange := strings.Cut(retry, "-"); isRange {
		// A limit kept on Redis counts by Redis's clock, which goes on while the test runs.
		n, err := strconv.Atoi(got)
		if l, _ := strconv.Atoi(lo); err != nil || n < l {
			t.Fatalf("Retry-After %q, want %s", got, retry)
		}
		if h, _ := strconv.Atoi(hi); n > h {
			t.Fatalf("Retry-After %q, want %s", got, retry)
		}
	} else if got != retry {
		t.Fatalf("Retry-After %q, want %s", got, retry)
	}
	if r.Header.Get("Set-Cookie") != "" || r.Body["token"] != nil {
		t.Fatalf("a refused sign-in got a session: %s %v", r.Raw, r.Header)
	}
}

// TestSignInsPerAddress: one address gets SignInRate sign-ins and registrations a minute (in
// bursts of as many), then 429 with Retry-After; a refused registration stores nothing; the
// X-Forwarded-For of a peer that is not a trusted proxy changes nothing, and the first such
// refusal is logged with the flag to set.
func TestSignInsPerAddress(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	ts, logs := startServerLogged(t, func(c *app.Config) {
		c.Server.Now = func() time.Time { return time.Unix(0, clock.Load()) }
		c.Server.SignInRate = 3
	})
	for _, name := range []string{"ann", "ben"} {
		ts.signIn(name)
	}
	if r := ts.register("cat", "password"); r.Status != http.StatusCreated {
		t.Fatalf("register within the limit: %d %s", r.Status, r.Raw)
	}
	refusedSignIn(t, ts.signInFrom("dan", ""), "127.0.0.1", "20")
	refusedSignIn(t, ts.register("dora", "password"), "127.0.0.1", "20")
	// Password sign-ins count as well: the limit is on sessions made, not on guests.
	r := ts.do("POST", "/api/session", "", map[string]string{"name": "cat", "password": "password"})
	refusedSignIn(t, r, "127.0.0.1", "20")
	if strings.Contains(logs.String(), "trusted-proxy") {
		t.Fatalf("logged about a proxy with no X-Forwarded-For: %s", logs.String())
	}
	// Only a trusted proxy's X-Forwarded-For names the client.
	refusedSignIn(t, ts.signInFrom("eve", "203.0.113.9"), "127.0.0.1", "20")
	refusedSignIn(t, ts.signInFrom("fay", "203.0.113.10"), "127.0.0.1", "20")
	if n := strings.Count(logs.String(), "--trusted-proxy"); n != 1 {
		t.Fatalf("%d warnings naming --trusted-proxy, want 1:\n%s", n, logs.String())
	}

	clock.Add(int64(20 * time.Second))
	if r := ts.register("dora", "password"); r.Status != http.StatusCreated {
		t.Fatalf("the refused registration's name, registered after the wait: %d %s", r.Status, r.Raw)
	}
	refusedSignIn(t, ts.signInFrom("gus", ""), "127.0.0.1", "20")
}

// TestSignInsPerAddressBehindAProxy: behind a trusted proxy each client counts on its own, as
// the nearest untrusted hop of X-Forwarded-For; what a client wrote further left is not
// believed; an IPv6 client counts by its /64; and a request the proxy did not mark counts as
// the proxy.
func TestSignInsPerAddressBehindAProxy(t *testing.T) {
	ts := startServer(t, func(c *app.Config) {
		c.Server.SignInRate = 2
		c.Server.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	})
	ok := func(r apiResponse) {
		t.Helper()
		if r.Status != http.StatusOK {
			t.Fatalf("sign-in within its client's allowance: %d %s", r.Status, r.Raw)
		}
	}
	for _, client := range []string{"203.0.113.5", "203.0.113.6"} {
		ok(ts.signInFrom("a", client))
		ok(ts.signInFrom("b", client))
		refusedSignIn(t, ts.signInFrom("c", client), client, "30")
	}
	// A client that made up hops on the left is still the hop the proxy saw.
	refusedSignIn(t, ts.signInFrom("d", "198.51.100.1, 203.0.113.5"), "203.0.113.5", "30")
	// Trusted proxies in the chain are skipped, in one header or several.
	ok(ts.signInFrom("e", "203.0.113.7, 10.1.2.3"))
	ok(ts.do("POST", "/api/session", "", map[string]string{"name": "f"}, "X-Forwarded-For", "203.0.113.7:4711"))
	refusedSignIn(t, ts.signInFrom("g", "203.0.113.7 , 10.9.9.9"), "203.0.113.7", "30")
	// IPv6 clients count by /64.
	ok(ts.signInFrom("h", "2001:db8::1"))
	ok(ts.signInFrom("i", "[2001:db8::2]:443"))
	refusedSignIn(t, ts.signInFrom("j", "2001:db8::ffff:3"), "2001:db8::/64", "30")
	ok(ts.signInFrom("k", "2001:db8:0:1::1"))
	// Unmarked, or marked with something that is not an address: the proxy itself.
	ok(ts.signInFrom("l", ""))
	ok(ts.signInFrom("m", "203.0.113.8, unknown"))
	refusedSignIn(t, ts.signInFrom("n", ""), "127.0.0.1", "30")
}

// TestSignInsPerAddressForwarded: a trusted proxy may name the client in Forwarded (RFC 7239)
// instead: for= with or without quotes, brackets and a port, in any case, among other
// parameters; trusted hops are skipped; "unknown" or an obfuscated name is the proxy itself; and
// X-Forwarded-For, when there is one, is what counts.
func TestSignInsPerAddressForwarded(t *testing.T) {
	ts := startServer(t, func(c *app.Config) {
		c.Server.SignInRate = 1
		c.Server.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	})
	fwd := func(name, value string, more ...string) apiResponse {
		return ts.do("POST", "/api/session", "", map[string]string{"name": name}, append([]string{"Forwarded", value}, more...)...)
	}
	ok := func(r apiResponse) {
		t.Helper()
		if r.Status != http.StatusOK {
			t.Fatalf("sign-in within its client's allowance: %d %s", r.Status, r.Raw)
		}
	}
	ok(fwd("a", "for=203.0.113.5"))
	refusedSignIn(t, fwd("b", `for="203.0.113.5:4711";proto=https`), "203.0.113.5", "60")
	ok(fwd("c", `for="[2001:db8::1]:4711";proto=https`))
	refusedSignIn(t, fwd("d", `proto=http;For="[2001:db8::2]"`), "2001:db8::/64", "60")
	ok(fwd("e", "for=198.51.100.9, for=10.0.0.2"))
	refusedSignIn(t, fwd("f", "for=198.51.100.9;by=10.0.0.1"), "198.51.100.9", "60")
	ok(fwd("g", "for=unknown"))
	refusedSignIn(t, fwd("h", "for=_hidden"), "127.0.0.1", "60")
	ok(fwd("i", "for=203.0.113.5", "X-Forwarded-For", "203.0.113.50"))
}
