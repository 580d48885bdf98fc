package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"natter"
	"natter/app"
	"natter/server"
)

// sessionCookie returns the session cookie a sign-in answer sets.
func sessionCookie(t *testing.T, r apiResponse) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, line := range r.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("bad Set-Cookie %q: %v", line, err)
		}
		if c.Value != "" {
			if found != nil {
				t.Fatalf("sign-in set two cookies: %v", r.Header.Values("Set-Cookie"))
			}
			found = c
		}
	}
	if found == nil {
		t.Fatalf("sign-in set no cookie: %v", r.Header)
	}
	return found
}

func cookieHeader(c *http.Cookie) string { return c.Name + "=" + c.Value }

func TestRegister(t *testing.T) {
	ts := startServer(t)

	r := ts.register("alice", "correct horse")
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	user, _ := r.Body["user"].(map[string]any)
	if user["name"] != "alice" {
		t.Fatalf("register answer %s, want {\"user\": {\"name\": \"alice\"}}", r.Raw)
	}

	for _, name := range []string{"a", "0", "a.b_c-d", "9lives", strings.Repeat("z", 32)} {
		if r := ts.register(name, "secret-enough"); r.Status != http.StatusCreated {
			t.Errorf("register valid name %q: %d %s", name, r.Status, r.Raw)
		}
	}
	for _, name := range []string{"", "Alice", "_alice", ".alice", "-alice", "al ice", "alicé", "a/b", "a@b", strings.Repeat("z", 33)} {
		checkError(t, ts.register(name, "secret-enough"), http.StatusBadRequest, "invalid")
	}

	// A refused registration stores nothing: the name is still free afterwards.
	checkError(t, ts.register("bob", "12345"), http.StatusBadRequest, "invalid")
	checkError(t, ts.register("bob", ""), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("POST", "/api/users", "", []byte(`{"name": "bob", "password": `)), http.StatusBadRequest, "invalid")
	if r := ts.register("bob", "123456"); r.Status != http.StatusCreated {
		t.Fatalf("register bob after refusals: %d %s", r.Status, r.Raw)
	}

	// A duplicate is a conflict and does not replace the account's password.
	checkError(t, ts.register("alice", "another password"), http.StatusConflict, "conflict")
	checkError(t, ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": "another password"}), http.StatusUnauthorized, "unauthorized")
	if r := ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": "correct horse"}); r.Status != http.StatusOK {
		t.Fatalf("sign in with the original password after a duplicate registration: %d %s", r.Status, r.Raw)
	}
}

func TestSignIn(t *testing.T) {
	ts := startServer(t)
	if r := ts.register("alice", "correct horse"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}

	r := ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": "correct horse"})
	if r.Status != http.StatusOK {
		t.Fatalf("sign in: %d %s", r.Status, r.Raw)
	}
	tok, _ := r.Body["token"].(string)
	user, _ := r.Body["user"].(map[string]any)
	if tok == "" || user["name"] != "alice" {
		t.Fatalf("sign-in answer %s, want a token and user alice", r.Raw)
	}
	c := sessionCookie(t, r)
	if !c.HttpOnly {
		t.Errorf("session cookie is not HttpOnly: %v", r.Header.Values("Set-Cookie"))
	}
	if c.SameSite != http.SameSiteLaxMode {
		t.Errorf("session cookie SameSite is %v, want Lax: %v", c.SameSite, r.Header.Values("Set-Cookie"))
	}
	// Both the token and the cookie identify alice.
	if r := ts.do("GET", "/api/rooms", tok, nil); r.Status != http.StatusOK {
		t.Fatalf("rooms with the token: %d %s", r.Status, r.Raw)
	}
	if r := ts.do("GET", "/api/rooms", "", nil, "Cookie", cookieHeader(c)); r.Status != http.StatusOK {
		t.Fatalf("rooms with the cookie: %d %s", r.Status, r.Raw)
	}
	m := ts.mustPost(tok, "lobby", "hi")
	if m.Author != "alice" {
		t.Fatalf("message by the signed-in user has author %q", m.Author)
	}

	// A registered name always needs its password.
	checkError(t, ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": "wrong horse"}), http.StatusUnauthorized, "unauthorized")
	checkError(t, ts.do("POST", "/api/session", "", map[string]string{"name": "alice"}), http.StatusUnauthorized, "unauthorized")
	checkError(t, ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": ""}), http.StatusUnauthorized, "unauthorized")

	// An unregistered name signs in as a guest (the harness allows guests).
	g := ts.do("POST", "/api/session", "", map[string]string{"name": "visitor"})
	if g.Status != http.StatusOK {
		t.Fatalf("guest sign in: %d %s", g.Status, g.Raw)
	}
	gu, _ := g.Body["user"].(map[string]any)
	if gt, _ := g.Body["token"].(string); gt == "" || gu["name"] != "visitor" {
		t.Fatalf("guest sign-in answer %s", g.Raw)
	}
	if m := ts.mustPost(g.Body["token"].(string), "lobby", "hello"); m.Author != "visitor" {
		t.Fatalf("guest message has author %q", m.Author)
	}
}

func TestGuestsOff(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.Guests = false })
	checkError(t, ts.do("POST", "/api/session", "", map[string]string{"name": "visitor"}), http.StatusUnauthorized, "unauthorized")
	checkError(t, ts.do("POST", "/api/session", "", map[string]string{"name": "visitor", "password": "whatever1"}), http.StatusUnauthorized, "unauthorized")
	if r := ts.register("alice", "correct horse"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	if r := ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": "correct horse"}); r.Status != http.StatusOK {
		t.Fatalf("registered sign in with guests off: %d %s", r.Status, r.Raw)
	}
}

func TestSignOutEndsTokenAndCookie(t *testing.T) {
	ts := startServer(t)
	signIn := func() (string, *http.Cookie) {
		r := ts.do("POST", "/api/session", "", map[string]string{"name": "alice"})
		if r.Status != http.StatusOK {
			t.Fatalf("sign in: %d %s", r.Status, r.Raw)
		}
		return r.Body["token"].(string), sessionCookie(t, r)
	}
	works := func(tok string, c *http.Cookie) (bool, bool) {
		byToken := ts.do("GET", "/api/rooms", tok, nil)
		byCookie := ts.do("GET", "/api/rooms", "", nil, "Cookie", cookieHeader(c))
		for _, r := range []apiResponse{byToken, byCookie} {
			if r.Status != http.StatusOK {
				checkError(t, r, http.StatusUnauthorized, "unauthorized")
			}
		}
		return byToken.Status == http.StatusOK, byCookie.Status == http.StatusOK
	}

	// Signed out with the bearer token.
	tok, c := signIn()
	if a, b := works(tok, c); !a || !b {
		t.Fatalf("before sign-out: token works %v, cookie works %v", a, b)
	}
	if r := ts.do("DELETE", "/api/session", tok, nil); r.Status/100 != 2 {
		t.Fatalf("sign out: %d %s", r.Status, r.Raw)
	}
	if a, b := works(tok, c); a || b {
		t.Fatalf("after sign-out: token works %v, cookie works %v", a, b)
	}
	checkError(t, ts.post(tok, "lobby", "still here?", ""), http.StatusUnauthorized, "unauthorized")

	// Signed out with the cookie; another session of the same user is a different session.
	tok2, c2 := signIn()
	tok3, c3 := signIn()
	if r := ts.do("DELETE", "/api/session", "", nil, "Cookie", cookieHeader(c2)); r.Status/100 != 2 {
		t.Fatalf("sign out by cookie: %d %s", r.Status, r.Raw)
	}
	if a, b := works(tok2, c2); a || b {
		t.Fatalf("after sign-out by cookie: token works %v, cookie works %v", a, b)
	}
	if a, b := works(tok3, c3); !a || !b {
		t.Fatalf("signing out one session ended another: token works %v, cookie works %v", a, b)
	}
	if n := ts.lastSeq(tok3, "lobby"); n != 0 {
		t.Fatalf("a refused send stored a message: last_seq %d", n)
	}
}

func TestMissingOrBadAuthIsUnauthorized(t *testing.T) {
	ts := startServer(t)
	revoked := ts.signIn("carol")
	if r := ts.do("DELETE", "/api/session", revoked, nil); r.Status/100 != 2 {
		t.Fatalf("sign out: %d %s", r.Status, r.Raw)
	}
	endpoints := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/session", nil},
		{"DELETE", "/api/session", nil},
		{"GET", "/api/rooms", nil},
		{"POST", "/api/rooms", map[string]string{"name": "sneaky"}},
		{"GET", "/api/rooms/lobby", nil},
		{"GET", "/api/rooms/lobby/messages", nil},
		{"GET", "/api/rooms/lobby/messages?after=0&wait=5", nil},
		{"POST", "/api/rooms/lobby/messages", map[string]string{"body": "sneaky"}},
		{"GET", "/api/rooms/lobby/presence", nil},
		{"GET", "/api/rooms/lobby/events", nil},
		{"GET", "/ws", nil},
	}
	credentials := []struct {
		name string
		hdr  []string
	}{
		{"none", nil},
		{"garbage bearer", []string{"Authorization", "Bearer not-a-token"}},
		{"empty bearer", []string{"Authorization", "Bearer "}},
		{"basic", []string{"Authorization", "Basic YWxpY2U6c2VjcmV0"}},
		{"revoked bearer", []string{"Authorization", "Bearer " + revoked}},
		{"garbage cookie", []string{"Cookie", "natter_session=not-a-token"}},
		{"revoked cookie", []string{"Cookie", "natter_session=" + revoked}},
	}
	for _, e := range endpoints {
		for _, c := range credentials {
			r := ts.do(e.method, e.path, "", e.body, c.hdr...)
			if r.Status != http.StatusUnauthorized || r.errorCode() != "unauthorized" {
				t.Errorf("%s %s with %s credentials: %d %s, want 401 unauthorized", e.method, e.path, c.name, r.Status, r.Raw)
				continue
			}
			checkErrorShape(t, r)
		}
	}
	// The WebSocket handshake is refused too.
	if _, resp, err := ts.tryDialWS("/ws", "not-a-token"); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("WebSocket with a garbage token: err %v, response %v", err, resp)
	}
	ok := ts.signIn("checker")
	if n := ts.lastSeq(ok, "lobby"); n != 0 {
		t.Fatalf("unauthorized sends stored messages: last_seq %d", n)
	}
	if r := ts.do("GET", "/api/rooms/sneaky", ok, nil); r.Status != http.StatusNotFound {
		t.Fatalf("an unauthorized create made a room: %d %s", r.Status, r.Raw)
	}
}

// TestQueryTokenOnlyOnStreams: ?token= is for /ws and the SSE URL, where browsers can't set
// headers; elsewhere it does not authenticate, so tokens don't end up in ordinary URLs.
func TestQueryTokenOnlyOnStreams(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	checkError(t, ts.do("GET", "/api/rooms?token="+tok, "", nil), http.StatusUnauthorized, "unauthorized")
	checkError(t, ts.do("POST", "/api/rooms/lobby/messages?token="+tok, "", map[string]string{"body": "x"}), http.StatusUnauthorized, "unauthorized")

	c, _, err := ts.tryDialWS("/ws?token="+tok, "")
	if err != nil {
		t.Fatalf("WebSocket with ?token=: %v", err)
	}
	c.subscribe("lobby")
	c.sendMessage("lobby", "via query token", "q1")

	s := ts.openSSE("/api/rooms/lobby/events?after=0&token="+tok, "")
	if m := s.nextMessage(); m.Body != "via query token" || m.Author != "alice" {
		t.Fatalf("SSE with ?token= streamed %+v", m)
	}
}

// TestCrossSiteCookieRequests: a browser attaches the session cookie to requests other sites
// trigger, so a cookie-authenticated request that changes state from another site is refused and
// stores nothing. A bearer token can't be attached by another site, so it passes.
func TestCrossSiteCookieRequests(t *testing.T) {
	ts := startServer(t)
	r := ts.do("POST", "/api/session", "", map[string]string{"name": "alice"})
	if r.Status != http.StatusOK {
		t.Fatalf("sign in: %d %s", r.Status, r.Raw)
	}
	tok, cookie := r.Body["token"].(string), cookieHeader(sessionCookie(t, r))

	crossSite := [][]string{
		{"Cookie", cookie, "Origin", "https://evil.example"},
		{"Cookie", cookie, "Sec-Fetch-Site", "cross-site"},
		{"Cookie", cookie, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
	}
	for _, hdr := range crossSite {
		checkError(t, ts.do("POST", "/api/rooms/lobby/messages", "", map[string]string{"body": "forged"}, hdr...), http.StatusForbidden, "forbidden")
		checkError(t, ts.do("POST", "/api/rooms", "", map[string]string{"name": "forged"}, hdr...), http.StatusForbidden, "forbidden")
	}
	if n := ts.lastSeq(tok, "lobby"); n != 0 {
		t.Fatalf("cross-site posts stored messages: last_seq %d", n)
	}
	if r := ts.do("GET", "/api/rooms/forged", tok, nil); r.Status != http.StatusNotFound {
		t.Fatalf("a cross-site create made a room: %d %s", r.Status, r.Raw)
	}

	// The same cookie from the site itself works, and so does a bearer token from anywhere.
	sameSite := [][]string{
		{"Cookie", cookie},
		{"Cookie", cookie, "Origin", ts.URL, "Sec-Fetch-Site", "same-origin"},
	}
	for i, hdr := range sameSite {
		r := ts.do("POST", "/api/rooms/lobby/messages", "", map[string]string{"body": "same site " + strconv.Itoa(i)}, hdr...)
		if r.Status != http.StatusCreated {
			t.Fatalf("same-site cookie post %v: %d %s", hdr[2:], r.Status, r.Raw)
		}
	}
	r = ts.do("POST", "/api/rooms/lobby/messages", tok, map[string]string{"body": "bearer"}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if r.Status != http.StatusCreated {
		t.Fatalf("bearer post with a foreign Origin: %d %s", r.Status, r.Raw)
	}
	if n := ts.lastSeq(tok, "lobby"); n != 3 {
		t.Fatalf("last_seq %d, want 3", n)
	}
}

func TestRooms(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")

	list := func() map[string]map[string]any {
		t.Helper()
		r := ts.do("GET", "/api/rooms", tok, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list rooms: %d %s", r.Status, r.Raw)
		}
		rooms, ok := r.Body["rooms"].([]any)
		if !ok {
			t.Fatalf("list rooms: %s, want {\"rooms\": [...]}", r.Raw)
		}
		out := map[string]map[string]any{}
		for _, x := range rooms {
			room, _ := x.(map[string]any)
			name, _ := room["name"].(string)
			_, hasTitle := room["title"].(string)
			_, hasSeq := room["last_seq"].(float64)
			if name == "" || !hasTitle || !hasSeq {
				t.Fatalf("room %v lacks name, title or last_seq", x)
			}
			out[name] = room
		}
		return out
	}

	rooms := list()
	if lobby := rooms["lobby"]; lobby == nil || lobby["last_seq"] != 0.0 {
		t.Fatalf("a new server's rooms: %v, want lobby with last_seq 0", rooms)
	}

	r := ts.do("POST", "/api/rooms", tok, map[string]string{"name": "ops", "title": "Operations"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create room: %d %s", r.Status, r.Raw)
	}
	room, _ := r.Body["room"].(map[string]any)
	if room["name"] != "ops" || room["title"] != "Operations" || room["last_seq"] != 0.0 {
		t.Fatalf("create answer %s", r.Raw)
	}
	checkError(t, ts.do("POST", "/api/rooms", tok, map[string]string{"name": "ops", "title": "Other"}), http.StatusConflict, "conflict")
	checkError(t, ts.do("POST", "/api/rooms", tok, map[string]string{"name": "lobby"}), http.StatusConflict, "conflict")

	ts.mustPost(tok, "ops", "one")
	ts.mustPost(tok, "ops", "two")
	rooms = list()
	if ops := rooms["ops"]; ops == nil || ops["title"] != "Operations" || ops["last_seq"] != 2.0 {
		t.Fatalf("ops after two messages and a conflicting create: %v", ops)
	}
	if rooms["lobby"]["last_seq"] != 0.0 {
		t.Fatalf("messages to ops changed lobby: %v", rooms["lobby"])
	}

	for _, name := range []string{"a", "0", "a_b-c", strings.Repeat("r", 64)} {
		if r := ts.do("POST", "/api/rooms", tok, map[string]string{"name": name}); r.Status != http.StatusCreated {
			t.Errorf("create valid room %q: %d %s", name, r.Status, r.Raw)
		}
	}
	before := len(list())
	for _, name := range []string{"", "Ops", "-ops", "_ops", "o.ps", "o ps", "ops/x", "öps", strings.Repeat("r", 65)} {
		checkError(t, ts.do("POST", "/api/rooms", tok, map[string]string{"name": name}), http.StatusBadRequest, "invalid")
	}
	checkError(t, ts.do("POST", "/api/rooms", tok, []byte(`{"name": "broken"`)), http.StatusBadRequest, "invalid")
	if after := len(list()); after != before {
		t.Fatalf("invalid creates changed the room list from %d to %d rooms", before, after)
	}
}

func TestUnknownRoomIsNotFound(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	for _, room := range []string{"nope", "NOPE", "no.pe"} {
		for _, e := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/api/rooms/" + room, nil},
			{"GET", "/api/rooms/" + room + "/messages", nil},
			{"GET", "/api/rooms/" + room + "/messages?after=0", nil},
			{"GET", "/api/rooms/" + room + "/messages?after=0&wait=30", nil},
			{"GET", "/api/rooms/" + room + "/messages?before=5", nil},
			{"POST", "/api/rooms/" + room + "/messages", map[string]string{"body": "hello?"}},
			{"GET", "/api/rooms/" + room + "/presence", nil},
			{"GET", "/api/rooms/" + room + "/events", nil},
		} {
			r := ts.do(e.method, e.path, tok, e.body)
			if r.Status != http.StatusNotFound || r.errorCode() != "not_found" {
				t.Errorf("%s %s: %d %s, want 404 not_found", e.method, e.path, r.Status, r.Raw)
				continue
			}
			checkErrorShape(t, r)
		}
	}
	if r := ts.do("GET", "/api/rooms/nope", tok, nil); r.Status != http.StatusNotFound {
		t.Fatalf("a post to an unknown room created it: %d %s", r.Status, r.Raw)
	}
}

func TestPostMessage(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")

	r := ts.post(tok, "lobby", "hello", "c-7f3a")
	if r.Status != http.StatusCreated {
		t.Fatalf("post: %d %s", r.Status, r.Raw)
	}
	var answer map[string]json.RawMessage
	json.Unmarshal(r.Raw, &answer)
	m := checkMessageJSON(t, answer["message"])
	if m.Room != "lobby" || m.Seq != 1 || m.ClientID != "c-7f3a" || m.Author != "alice" || m.Body != "hello" {
		t.Fatalf("first message %+v", m)
	}
	if m.TS.Location().String() != "UTC" {
		t.Fatalf("ts %v is not UTC", m.TS)
	}

	// Each next message is exactly one more, per room.
	if m2 := ts.mustPost(tok, "lobby", "again"); m2.Seq != 2 || m2.ID == m.ID {
		t.Fatalf("second message %+v after %+v", m2, m)
	}
	if r := ts.do("POST", "/api/rooms", tok, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	if m3 := ts.mustPost(tok, "ops", "elsewhere"); m3.Seq != 1 || m3.Room != "ops" {
		t.Fatalf("first message in ops %+v", m3)
	}

	// A read returns the stored message unchanged.
	page := ts.read(tok, "/api/rooms/lobby/messages?after=0")
	if page.Room != "lobby" || page.LastSeq != 2 || len(page.Messages) != 2 {
		t.Fatalf("read back %+v", page)
	}
	got := page.Messages[0]
	if got.ID != m.ID || got.Seq != 1 || got.Body != "hello" || got.ClientID != "c-7f3a" || got.Author != "alice" || !got.TS.Equal(m.TS) {
		t.Fatalf("read back %+v, posted %+v", got, m)
	}
}

func TestIdempotentClientID(t *testing.T) {
	ts := startServer(t)
	alice, bob := ts.signIn("alice"), ts.signIn("bob")
	if r := ts.do("POST", "/api/rooms", alice, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}

	r := ts.post(alice, "lobby", "one", "dup")
	if r.Status != http.StatusCreated {
		t.Fatalf("first send: %d %s", r.Status, r.Raw)
	}
	orig := messageOf(t, r)

	// The same author, room and client_id: 200 with the original, even with another body.
	for _, body := range []string{"one", "two"} {
		r := ts.post(alice, "lobby", body, "dup")
		if r.Status != http.StatusOK {
			t.Fatalf("repeat send (%q): %d %s, want 200", body, r.Status, r.Raw)
		}
		again := messageOf(t, r)
		if again.ID != orig.ID || again.Seq != orig.Seq || again.Body != "one" || !again.TS.Equal(orig.TS) {
			t.Fatalf("repeat send answered %+v, want the original %+v", again, orig)
		}
	}
	if n := ts.lastSeq(alice, "lobby"); n != orig.Seq {
		t.Fatalf("repeats stored messages: last_seq %d, want %d", n, orig.Seq)
	}

	// Another author, or another room, is another message.
	r = ts.post(bob, "lobby", "bob's", "dup")
	if r.Status != http.StatusCreated {
		t.Fatalf("bob with alice's client_id: %d %s, want 201", r.Status, r.Raw)
	}
	if m := messageOf(t, r); m.Seq != orig.Seq+1 || m.Author != "bob" {
		t.Fatalf("bob's message %+v", m)
	}
	r = ts.post(alice, "ops", "in ops", "dup")
	if r.Status != http.StatusCreated {
		t.Fatalf("alice's client_id in another room: %d %s, want 201", r.Status, r.Raw)
	}

	// Concurrent repeats still store one message.
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Go(func() { statuses[i] = ts.post(alice, "lobby", "racing", "race").Status })
	}
	wg.Wait()
	created := 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Fatalf("concurrent repeat answered %d", s)
		}
	}
	if created != 1 {
		t.Fatalf("%d concurrent sends with one client_id were created, want 1 (statuses %v)", created, statuses)
	}
	if n := ts.lastSeq(alice, "lobby"); n != orig.Seq+2 {
		t.Fatalf("last_seq %d after the race, want %d", n, orig.Seq+2)
	}
}

func TestMessageBodyLimits(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")

	// asciiJSON encodes a send request escaping everything but ASCII, as many JSON libraries
	// do by default (Python's json.dumps, for one).
	asciiJSON := func(body string) []byte {
		var b strings.Builder
		b.WriteString(`{"body": "`)
		for _, r := range body {
			if r < 0x80 {
				b.WriteRune(r)
				continue
			}
			for _, u := range utf16Units(r) {
				fmt.Fprintf(&b, `\u%04x`, u)
			}
		}
		b.WriteString(`"}`)
		return []byte(b.String())
	}

	good := []struct {
		name string
		body any
		want string
	}{
		{"one char", map[string]string{"body": "x"}, "x"},
		{"4096 ASCII", map[string]string{"body": strings.Repeat("a", 4096)}, strings.Repeat("a", 4096)},
		{"4096 two-byte chars", map[string]string{"body": strings.Repeat("é", 4096)}, strings.Repeat("é", 4096)},
		{"4096 four-byte chars", map[string]string{"body": strings.Repeat("😀", 4096)}, strings.Repeat("😀", 4096)},
		{"4096 chars as \\u escapes", asciiJSON(strings.Repeat("é", 4096)), strings.Repeat("é", 4096)},
		{"4096 astral chars as surrogate pairs", asciiJSON(strings.Repeat("😀", 4096)), strings.Repeat("😀", 4096)},
		{"client_id of 64 chars", map[string]string{"body": "cid64", "client_id": strings.Repeat("c", 64)}, "cid64"},
		{"client_id of 64 multi-byte chars", map[string]string{"body": "cid64mb", "client_id": strings.Repeat("ç", 64)}, "cid64mb"},
	}
	seq := int64(0)
	for _, c := range good {
		r := ts.do("POST", "/api/rooms/lobby/messages", tok, c.body)
		if r.Status != http.StatusCreated {
			t.Errorf("%s: %d %.200s, want 201", c.name, r.Status, r.Raw)
			continue
		}
		seq++
		if m := messageOf(t, r); m.Body != c.want || m.Seq != seq {
			t.Errorf("%s: stored seq %d body of %d bytes, want seq %d and the body sent", c.name, m.Seq, len(m.Body), seq)
		}
	}

	bad := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"empty body", map[string]string{"body": ""}, 400, "invalid"},
		{"no body", map[string]string{"client_id": "x"}, 400, "invalid"},
		{"4097 ASCII", map[string]string{"body": strings.Repeat("a", 4097)}, 413, "too_large"},
		{"4097 two-byte chars", map[string]string{"body": strings.Repeat("é", 4097)}, 413, "too_large"},
		{"4097 four-byte chars", map[string]string{"body": strings.Repeat("😀", 4097)}, 413, "too_large"},
		{"a huge body", map[string]string{"body": strings.Repeat("a", 1<<20)}, 413, "too_large"},
		{"invalid UTF-8 in the body", []byte("{\"body\": \"caf\xe9\"}"), 400, "invalid"},
		{"a lone continuation byte", []byte("{\"body\": \"\x80\"}"), 400, "invalid"},
		{"invalid UTF-8 in the client_id", []byte("{\"body\": \"ok\", \"client_id\": \"\xc3\"}"), 400, "invalid"},
		{"invalid UTF-8 outside strings", []byte("{\"body\": \"ok\"}\xff"), 400, "invalid"},
		{"truncated JSON", []byte(`{"body": "hi"`), 400, "invalid"},
		{"not JSON", []byte(`body=hi`), 400, "invalid"},
		{"a JSON string", []byte(`"hi"`), 400, "invalid"},
		{"a JSON array", []byte(`[{"body": "hi"}]`), 400, "invalid"},
		{"null", []byte(`null`), 400, "invalid"},
		{"an empty request", []byte(``), 400, "invalid"},
		{"a number body", []byte(`{"body": 5}`), 400, "invalid"},
		{"client_id of 65 chars", map[string]string{"body": "x", "client_id": strings.Repeat("c", 65)}, 400, "invalid"},
		{"client_id of 65 multi-byte chars", map[string]string{"body": "x", "client_id": strings.Repeat("ç", 65)}, 400, "invalid"},
	}
	for _, c := range bad {
		r := ts.do("POST", "/api/rooms/lobby/messages", tok, c.body)
		if r.Status != c.status || r.errorCode() != c.code {
			t.Errorf("%s: %d %.200s, want %d %s", c.name, r.Status, r.Raw, c.status, c.code)
			continue
		}
		checkErrorShape(t, r)
	}
	if n := ts.lastSeq(tok, "lobby"); n != seq {
		t.Fatalf("last_seq %d after %d good and %d bad sends: a bad request stored something", n, seq, len(bad))
	}
}

// utf16Units returns r as UTF-16 code units (a surrogate pair above U+FFFF).
func utf16Units(r rune) []rune {
	if r < 0x10000 {
		return []rune{r}
	}
	r -= 0x10000
	return []rune{0xd800 + (r >> 10), 0xdc00 + (r & 0x3ff)}
}

// checkRun asserts that page holds exactly the messages from..to, oldest first (none if to < from).
func checkRun(t *testing.T, what string, page messagePage, from, to int64) {
	t.Helper()
	want := max(0, to-from+1)
	if int64(len(page.Messages)) != want {
		t.Fatalf("%s: %d messages, want seq %d..%d", what, len(page.Messages), from, to)
	}
	for i, m := range page.Messages {
		if m.Seq != from+int64(i) || m.Body != fmt.Sprintf("fill %d", m.Seq-1) {
			t.Fatalf("%s: message %d is seq %d %q, want seq %d", what, i, m.Seq, m.Body, from+int64(i))
		}
	}
}

func TestReadMessages(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	const n = 250
	if last := ts.fill(tok, "lobby", n); last != n {
		t.Fatalf("filled up to seq %d, want %d", last, n)
	}
	read := func(query string) messagePage {
		t.Helper()
		p := ts.read(tok, "/api/rooms/lobby/messages"+query)
		if p.Room != "lobby" || p.LastSeq != n {
			t.Fatalf("%s: room %q last_seq %d, want lobby %d", query, p.Room, p.LastSeq, n)
		}
		return p
	}
	cases := []struct {
		query    string
		from, to int64
	}{
		{"?after=0", 1, 100}, // default limit 100
		{"?after=0&limit=7", 1, 7},
		{"?after=10&limit=5", 11, 15},
		{"?after=240", 241, 250},
		{"?after=249&limit=1000", 250, 250},
		{"?after=250", 1, 0},
		{"?after=9999", 1, 0},
		{"?after=0&limit=1000", 1, 250},
		{"?before=11&limit=5", 6, 10},
		{"?before=3", 1, 2},
		{"?before=1", 1, 0},
		{"?before=251&limit=3", 248, 250},
		{"?before=200", 100, 199}, // default limit 100, just before 200
		{"", 151, 250},            // newest 100
		{"?limit=7", 244, 250},    // newest 7
		{"?limit=1000", 1, 250},
	}
	for _, c := range cases {
		checkRun(t, c.query, read(c.query), c.from, c.to)
	}
	epoch := read("").Epoch
	for _, q := range []string{"?after=0", "?before=5", "?after=250&wait=0"} {
		if e := read(q).Epoch; e != epoch {
			t.Fatalf("epoch changed between reads: %q, then %q", epoch, e)
		}
	}
	for _, q := range []string{"?after=x", "?after=-1", "?before=x", "?limit=x", "?after=1&before=5", "?wait=x&after=0"} {
		checkError(t, ts.do("GET", "/api/rooms/lobby/messages"+q, tok, nil), http.StatusBadRequest, "invalid")
	}
}

func TestReadLimitIsClampedTo1000(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 1,005 messages")
	}
	ts := startServer(t)
	tok := ts.signIn("alice")
	const n = 1005
	ts.fill(tok, "lobby", n)
	checkRun(t, "after=0&limit=5000", ts.read(tok, "/api/rooms/lobby/messages?after=0&limit=5000"), 1, 1000)
	checkRun(t, "after=0&limit=1001", ts.read(tok, "/api/rooms/lobby/messages?after=0&limit=1001"), 1, 1000)
	checkRun(t, "limit=5000", ts.read(tok, "/api/rooms/lobby/messages?limit=5000"), 6, 1005)
	checkRun(t, "before=1005&limit=2000", ts.read(tok, "/api/rooms/lobby/messages?before=1005&limit=2000"), 5, 1004)
}

func TestLogSurvivesRestart(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	if r := ts.do("POST", "/api/rooms", tok, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	ts.fill(tok, "lobby", 3)
	ts.fill(tok, "ops", 2)
	opsOrig := messageOf(t, ts.post(tok, "ops", "idempotent", "before-restart"))
	lobby := ts.read(tok, "/api/rooms/lobby/messages?after=0")
	ops := ts.read(tok, "/api/rooms/ops/messages?after=0")

	ts.restart()
	tok = ts.signIn("alice")
	for _, before := range []messagePage{lobby, ops} {
		after := ts.read(tok, "/api/rooms/"+before.Room+"/messages?after=0")
		if after.Epoch != before.Epoch || after.LastSeq != before.LastSeq {
			t.Fatalf("%s: epoch %q last_seq %d before the restart, %q %d after", before.Room, before.Epoch, before.LastSeq, after.Epoch, after.LastSeq)
		}
		if len(after.Messages) != len(before.Messages) {
			t.Fatalf("%s: %d messages before the restart, %d after", before.Room, len(before.Messages), len(after.Messages))
		}
		for i, m := range after.Messages {
			b := before.Messages[i]
			if m.ID != b.ID || m.Seq != b.Seq || m.Body != b.Body || m.Author != b.Author || !m.TS.Equal(b.TS) {
				t.Fatalf("%s: message %+v before the restart, %+v after", before.Room, b, m)
			}
		}
	}
	// Seqs go on where they stopped, and a client_id sent before the restart is still known.
	if m := ts.mustPost(tok, "lobby", "after restart"); m.Seq != lobby.LastSeq+1 {
		t.Fatalf("first seq after the restart is %d, want %d", m.Seq, lobby.LastSeq+1)
	}
	r := ts.post(tok, "ops", "retry after restart", "before-restart")
	if r.Status != http.StatusOK || messageOf(t, r).ID != opsOrig.ID {
		t.Fatalf("repeat of a pre-restart client_id: %d %s, want 200 with the original", r.Status, r.Raw)
	}
}

func TestLongPoll(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	first := ts.mustPost(tok, "lobby", "already here")

	// A message after the cursor exists: the answer comes at once (a 60 s wait would outlast
	// the client's timeout) and holds it.
	p := ts.read(tok, "/api/rooms/lobby/messages?after=0&wait=60")
	if len(p.Messages) != 1 || p.Messages[0].ID != first.ID {
		t.Fatalf("poll with a message waiting: %+v", p)
	}

	// Nothing after the cursor: the request waits, and a message posted meanwhile ends the wait
	// in that same answer.
	done := ts.doAsync("GET", "/api/rooms/lobby/messages?after=1&wait=30", tok, nil)
	parked(t, ts, 1)
	select {
	case r := <-done:
		t.Fatalf("poll answered before anything was posted: %d %s", r.Status, r.Raw)
	default:
	}
	posted := ts.mustPost(tok, "lobby", "wake up")
	r := <-done
	if r.Status != http.StatusOK {
		t.Fatalf("woken poll: %d %s", r.Status, r.Raw)
	}
	p = decodePage(t, r)
	if len(p.Messages) != 1 || p.Messages[0].ID != posted.ID || p.Messages[0].Seq != 2 || p.LastSeq < 2 {
		t.Fatalf("woken poll answered %s, want the message posted during the wait", r.Raw)
	}

	// A waiting poll honours its limit and cursor.
	done = ts.doAsync("GET", "/api/rooms/lobby/messages?after=2&limit=2&wait=30", tok, nil)
	parked(t, ts, 1)
	ts.fill(tok, "lobby", 1)
	p = decodePage(t, <-done)
	if len(p.Messages) < 1 || len(p.Messages) > 2 || p.Messages[0].Seq != 3 {
		t.Fatalf("woken poll with limit 2 answered %+v", p)
	}

	// The wait passes with nothing new: an empty list, not null, with the room's position.
	r = ts.do("GET", "/api/rooms/lobby/messages?after=3&wait=1", tok, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("expired poll: %d %s", r.Status, r.Raw)
	}
	if msgs, ok := r.Body["messages"].([]any); !ok || len(msgs) != 0 {
		t.Fatalf("expired poll answered %s, want \"messages\": []", r.Raw)
	}
	if p := decodePage(t, r); p.LastSeq != 3 || p.Epoch == "" {
		t.Fatalf("expired poll answered %s", r.Raw)
	}
}

// TestUpToDatePollParksWithoutReading: a poll whose cursor is already the room's last seq (the
// usual poll) parks without reading the log; a poll without a wait, or behind, still reads.
func TestUpToDatePollParksWithoutReading(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	ts.mustPost(tok, "lobby", "one")
	srv := ts.Main.Server()
	before := server.AfterReads(srv)
	done := ts.doAsync("GET", "/api/rooms/lobby/messages?after=1&wait=30", tok, nil)
	parked(t, ts, 1)
	if n := server.AfterReads(srv) - before; n != 0 {
		t.Fatalf("an up-to-date poll read the log %d times before parking", n)
	}
	ts.mustPost(tok, "lobby", "two")
	if p := decodePage(t, <-done); len(p.Messages) != 1 || p.Messages[0].Seq != 2 {
		t.Fatalf("woken poll answered %+v", p)
	}
	// The same cursor without a wait is a plain read.
	before = server.AfterReads(srv)
	if p := ts.read(tok, "/api/rooms/lobby/messages?after=1"); len(p.Messages) != 1 {
		t.Fatalf("read after 1: %+v", p)
	}
	if n := server.AfterReads(srv) - before; n != 1 {
		t.Fatalf("a read without a wait read the log %d times, want 1", n)
	}
}

// TestLongPollIgnoresStalePublish: the hub publishes on its own goroutine, so a message committed
// before a poll parks may be published after. That publish must not end the wait with nothing: the
// poll waits on for a message after its cursor. The test publishes seq 1 again by hand to make the
// late publish happen every time.
func TestLongPollIgnoresStalePublish(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	first := ts.mustPost(tok, "lobby", "already here")
	done := ts.doAsync("GET", "/api/rooms/lobby/messages?after=1&wait=30", tok, nil)
	parked(t, ts, 1)
	ts.Main.Hub().Publish([]natter.Message{first})
	posted := ts.mustPost(tok, "lobby", "the answer")
	r := <-done
	p := decodePage(t, r)
	if len(p.Messages) != 1 || p.Messages[0].ID != posted.ID {
		t.Fatalf("poll woken by a stale publish answered %s, want the next message", r.Raw)
	}
}

// parked waits until n long-polls (or other live connections) are held by the server.
func parked(t *testing.T, ts *testServer, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d parked poll(s)", n), func() bool { return ts.Main.Server().ConnCount() >= n })
}

func TestRateLimit(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.SendRate, c.Server.SendBurst = 1, 2 })
	alice := ts.signIn("alice")
	for i := range 2 {
		if r := ts.post(alice, "lobby", fmt.Sprintf("burst %d", i), ""); r.Status != http.StatusCreated {
			t.Fatalf("send %d within the burst: %d %s", i, r.Status, r.Raw)
		}
	}
	r := ts.post(alice, "lobby", "one too many", "")
	checkError(t, r, http.StatusTooManyRequests, "rate_limited")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q, want a whole number of seconds >= 1", r.Header.Get("Retry-After"))
	}
	if n := ts.lastSeq(alice, "lobby"); n != 2 {
		t.Fatalf("last_seq %d: the refused send was stored", n)
	}

	// The limit is per user and covers the WebSocket too.
	bob := ts.dialWS(ts.signIn("bob"))
	bob.sendMessage("lobby", "b1", "b1")
	bob.sendMessage("lobby", "b2", "b2")
	bob.send(map[string]string{"type": "send", "room": "lobby", "body": "b3", "client_id": "b3"})
	f := bob.expect("error")
	if f.Code != "rate_limited" || f.Ref == nil || *f.Ref != "b3" {
		t.Fatalf("third WebSocket send: %s, want rate_limited with ref b3", f)
	}
	var hint struct {
		RetryAfterMS int64 `json:"retry_after_ms"`
	}
	if json.Unmarshal(f.raw, &hint); hint.RetryAfterMS < 1 {
		t.Fatalf("rate_limited frame without retry_after_ms: %s", f)
	}
	if n := ts.lastSeq(alice, "lobby"); n != 4 {
		t.Fatalf("last_seq %d, want 4", n)
	}
}

// TestUnknownEndpointsUseTheErrorShape: every /api/ answer that is an error, even for a path or
// method the server doesn't have, is the contract's JSON error.
func TestUnknownEndpointsUseTheErrorShape(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	for _, e := range []struct{ method, path string }{
		{"GET", "/api/nothing"},
		{"PUT", "/api/rooms"},
		{"DELETE", "/api/rooms/lobby"},
		{"PATCH", "/api/rooms/lobby/messages"},
		{"GET", "/api/rooms/lobby/messages/1"},
	} {
		r := ts.do(e.method, e.path, tok, nil)
		if r.Status < 400 {
			t.Errorf("%s %s: %d %s", e.method, e.path, r.Status, r.Raw)
			continue
		}
		checkErrorShape(t, r)
	}
	// A body over any sane size is too_large, not a dropped connection.
	for _, path := range []string{"/api/users", "/api/session", "/api/rooms"} {
		big := []byte(`{"name": "` + strings.Repeat("a", 2<<20) + `"}`)
		checkError(t, ts.do("POST", path, tok, big), http.StatusRequestEntityTooLarge, "too_large")
	}
}

// TestFailedSignInsAreLimited: an account takes 10 failed password sign-ins in a row, then one
// every 10 s; past that its sign-ins are refused with 429 and Retry-After (the right password
// too, or the guessing would go on), other accounts and guests are not, and once the wait is over
// the right password works.
func TestFailedSignInsAreLimited(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	ts := startServer(t, func(c *app.Config) { c.Server.Now = func() time.Time { return time.Unix(0, clock.Load()) } })
	if r := ts.register("alice", "correct horse"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	if r := ts.register("bob", "battery staple"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	signIn := func(name, password string) apiResponse {
		return ts.do("POST", "/api/session", "", map[string]string{"name": name, "password": password})
	}
	for i := range 10 {
		checkError(t, signIn("alice", fmt.Sprint("guess ", i)), http.StatusUnauthorized, "unauthorized")
	}
	r := signIn("alice", "guess 10")
	checkError(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.Header.Get("Retry-After") != "10" {
		t.Fatalf("Retry-After %q, want 10", r.Header.Get("Retry-After"))
	}
	checkError(t, signIn("alice", "correct horse"), http.StatusTooManyRequests, "rate_limited")
	if r := signIn("bob", "battery staple"); r.Status != http.StatusOK {
		t.Fatalf("bob while alice is limited: %d %s", r.Status, r.Raw)
	}
	if r := signIn("guest-gail", ""); r.Status != http.StatusOK {
		t.Fatalf("a guest while alice is limited: %d %s", r.Status, r.Raw)
	}
	clock.Add(int64(10 * time.Second))
	if r := signIn("alice", "correct horse"); r.Status != http.StatusOK {
		t.Fatalf("alice after the wait: %d %s", r.Status, r.Raw)
	}
	// Right passwords cost nothing: alice signs in again and again.
	for range 20 {
		if r := signIn("alice", "correct horse"); r.Status != http.StatusOK {
			t.Fatalf("alice signing in with her password: %d %s", r.Status, r.Raw)
		}
	}
}
