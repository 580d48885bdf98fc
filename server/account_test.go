package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"natter/ws"
)

// signInPassword signs name in with password and returns the token.
func (ts *testServer) signInPassword(name, password string) string {
	ts.t.Helper()
	r := ts.do("POST", "/api/session", "", map[string]string{"name": name, "password": password})
	if r.Status != http.StatusOK {
		ts.t.Fatalf("sign in %s: %d %s", name, r.Status, r.Raw)
	}
	return r.Body["token"].(string)
}

// account registers name and signs it in with a password, returning the token.
func (ts *testServer) account(name string) string {
	ts.t.Helper()
	if r := ts.register(name, name+"'s password"); r.Status != http.StatusCreated {
		ts.t.Fatalf("register %s: %d %s", name, r.Status, r.Raw)
	}
	return ts.signInPassword(name, name+"'s password")
}

// wantSignedOut wants c closed with 4001 "signed out".
func wantSignedOut(t *testing.T, c *wsClient) {
	t.Helper()
	if ce := c.closed(); ce.Code != ws.CloseSignedOut || ce.Reason != "signed out" {
		t.Fatalf("WebSocket of an ended session closed with %d %q, want %d \"signed out\"", ce.Code, ce.Reason, ws.CloseSignedOut)
	}
}

// TestSignOutClosesItsConnections: signing out closes what the session opened (its WebSocket
// with 4001 "signed out", its event stream, its parked long-poll) and the token stops working;
// another session of the same name keeps its connections.
func TestSignOutClosesItsConnections(t *testing.T) {
	ts := startServer(t)
	a1, a2 := ts.signIn("alice"), ts.signIn("alice")
	ws1 := ts.dialWS(a1)
	ws1.subscribe("lobby", 0)
	sse1 := ts.openSSE("/api/rooms/lobby/events", a1)
	poll := ts.doAsync("GET", "/api/rooms/lobby/messages?after=0&wait=30", a1, nil)
	ws2 := ts.dialWS(a2)
	ws2.subscribe("lobby", 0)
	parked(t, ts, 4)

	if r := ts.do("DELETE", "/api/session", a1, nil); r.Status != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", r.Status, r.Raw)
	}
	wantSignedOut(t, ws1)
	sse1.ended()
	if r := <-poll; r.Status != http.StatusOK || len(decodePage(t, r).Messages) != 0 {
		t.Fatalf("the parked poll of a session signed out: %d %s; want an empty answer", r.Status, r.Raw)
	}
	checkError(t, ts.do("GET", "/api/rooms/lobby/messages?after=0&wait=30", a1, nil), http.StatusUnauthorized, "unauthorized")
	waitFor(t, "the signed-out session's connections gone", func() bool { return ts.Main.Server().ConnCount() == 1 })

	ts.mustPost(a2, "lobby", "still here")
	if m := ws2.nextExcept("presence", "join", "leave").msg(t); m.Body != "still here" {
		t.Fatalf("alice's other session got %q", m.Body)
	}
}

// TestChangePassword: an account changes its password with its current one. The other sessions
// end (their connections close), the one that made the change goes on, and only the new password
// signs in. A wrong current password, a new one registration would refuse, or a guest change
// nothing; wrong current passwords count as failed sign-ins.
func TestChangePassword(t *testing.T) {
	ts := startServer(t)
	if r := ts.register("alice", "old password"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	s1, s2 := ts.signInPassword("alice", "old password"), ts.signInPassword("alice", "old password")
	ws2 := ts.dialWS(s2)
	ws2.subscribe("lobby", 0)
	change := func(tok, current, next string) apiResponse {
		return ts.do("PUT", "/api/account/password", tok, map[string]string{"password": current, "new_password": next})
	}

	checkError(t, change(s1, "wrong", "new password"), http.StatusForbidden, "forbidden")
	checkError(t, change(s1, "old password", "new"), http.StatusBadRequest, "invalid")
	checkError(t, change(ts.signIn("gus"), "", "new password"), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("PUT", "/api/account/password", s1, []byte(`{"password": `)), http.StatusBadRequest, "invalid")
	if r := ts.do("GET", "/api/session", s2, nil); r.Status != http.StatusOK {
		t.Fatalf("a refused change ended another session: %d %s", r.Status, r.Raw)
	}
	ts.signInPassword("alice", "old password") // a refused change kept the old password

	r := change(s1, "old password", "new password")
	if r.Status != http.StatusOK || !strings.Contains(string(r.Raw), `"name":"alice"`) {
		t.Fatalf("change password: %d %s", r.Status, r.Raw)
	}
	wantSignedOut(t, ws2)
	checkError(t, ts.do("GET", "/api/session", s2, nil), http.StatusUnauthorized, "unauthorized")
	if r := ts.do("GET", "/api/session", s1, nil); r.Status != http.StatusOK {
		t.Fatalf("the session that changed the password: %d %s", r.Status, r.Raw)
	}
	checkError(t, ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": "old password"}), http.StatusUnauthorized, "unauthorized")
	s3 := ts.signInPassword("alice", "new password")
	ts.dialWS(s3).subscribe("lobby", 0) // a session made after the change connects at once

	// Guessing the current password from a stolen session is a failed sign-in like any other.
	for i := range 8 { // two failures spent above: the wrong current password, the old password
		checkError(t, change(s1, fmt.Sprint("guess ", i), "another password"), http.StatusForbidden, "forbidden")
	}
	checkError(t, change(s1, "new password", "another password"), http.StatusTooManyRequests, "rate_limited")
}

// TestSignOutEverywhere: DELETE /api/account/sessions ends every session of the account, the
// calling one too, with their connections, and clears the cookie; a new sign-in right after
// works and connects. Guests are refused: their name is not theirs alone.
func TestSignOutEverywhere(t *testing.T) {
	ts := startServer(t)
	if r := ts.register("bob", "password"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	b1, b2 := ts.signInPassword("bob", "password"), ts.signInPassword("bob", "password")
	other := ts.signIn("carol")
	wsB := ts.dialWS(b2)
	wsB.subscribe("lobby", 0)
	wsC := ts.dialWS(other)
	wsC.subscribe("lobby", 0)

	guest := ts.signIn("gus")
	checkError(t, ts.do("DELETE", "/api/account/sessions", guest, nil), http.StatusForbidden, "forbidden")
	if r := ts.do("GET", "/api/session", guest, nil); r.Status != http.StatusOK {
		t.Fatalf("a refused sign-out everywhere ended the guest's session: %d", r.Status)
	}

	r := ts.do("DELETE", "/api/account/sessions", b1, nil)
	if r.Status != http.StatusNoContent || !strings.Contains(r.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign out everywhere: %d %v", r.Status, r.Header)
	}
	wantSignedOut(t, wsB)
	for _, tok := range []string{b1, b2} {
		checkError(t, ts.do("GET", "/api/session", tok, nil), http.StatusUnauthorized, "unauthorized")
	}
	ts.mustPost(other, "lobby", "carol is still here")
	if m := wsC.nextExcept("presence", "join", "leave").msg(t); m.Body != "carol is still here" {
		t.Fatalf("another user's WebSocket got %q", m.Body)
	}
	b3 := ts.signInPassword("bob", "password")
	ts.dialWS(b3).subscribe("lobby", 0)
}
