package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestReplies: a message may answer an earlier message of its room (reply_to), over HTTP or
// WebSocket; it is delivered and read back with reply_to. A reply to nothing, to a change, or
// a change that is a reply is refused and stores nothing.
func TestReplies(t *testing.T) {
	ts := startServer(t)
	alice, bob := ts.account("alice"), ts.signIn("bob")
	watch := ts.dialWS(alice)
	watch.subscribe("lobby", 0)
	q := ts.mustPost(alice, "lobby", "lunch?")
	r := ts.do("POST", "/api/rooms/lobby/messages", bob, map[string]any{"body": "yes", "reply_to": q.Seq})
	if r.Status != http.StatusCreated || !strings.Contains(string(r.Raw), `"reply_to":1}`) {
		t.Fatalf("reply over HTTP: %d %s", r.Status, r.Raw)
	}
	c := ts.dialWS(bob)
	c.send(map[string]any{"type": "send", "room": "lobby", "body": "at noon", "client_id": "c-r2", "reply_to": q.Seq})
	if f := c.nextExcept("presence", "join", "leave"); f.Type != "ack" || f.Seq == nil || *f.Seq != 3 {
		t.Fatalf("reply over WebSocket: %s", f)
	}
	for i, want := range []string{`"body":"lunch?"`, `"body":"yes"`, `"body":"at noon"`} {
		f := watch.nextExcept("presence", "join", "leave")
		if f.Type != "message" || !strings.Contains(string(f.Message), want) || strings.Contains(string(f.Message), "reply_to") != (i > 0) {
			t.Fatalf("delivered %d: %s, want %s with reply_to only on the replies", i, f, want)
		}
	}
	if page := ts.read(alice, "/api/rooms/lobby/messages?after=0"); len(page.Messages) != 3 || page.Messages[1].ReplyTo != 1 || page.Messages[2].ReplyTo != 1 || page.Messages[0].ReplyTo != 0 {
		t.Fatalf("read back: %+v", page.Messages)
	}

	if r := ts.do("POST", "/api/rooms/lobby/messages", alice, map[string]any{"kind": "edit", "target": q.Seq, "body": "lunch at one?"}); r.Status != http.StatusCreated {
		t.Fatalf("edit: %d %s", r.Status, r.Raw)
	}
	for _, c := range []struct {
		body   map[string]any
		status int
		code   string
	}{
		{map[string]any{"body": "to nothing", "reply_to": 99}, http.StatusNotFound, "not_found"},
		{map[string]any{"body": "to an edit", "reply_to": 4}, http.StatusBadRequest, "invalid"},
		{map[string]any{"body": "backwards", "reply_to": -1}, http.StatusBadRequest, "invalid"},
		{map[string]any{"kind": "edit", "target": 2, "body": "an edit that replies", "reply_to": 1}, http.StatusBadRequest, "invalid"},
	} {
		checkError(t, ts.do("POST", "/api/rooms/lobby/messages", bob, c.body), c.status, c.code)
	}
	if n := ts.lastSeq(alice, "lobby"); n != 4 {
		t.Fatalf("last_seq %d after refused replies, want 4", n)
	}
}
