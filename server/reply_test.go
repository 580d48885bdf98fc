package server_test

import (
	"fmt"
	"natter/app"
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

// TestReactions: anyone, guests too, may put a reaction (an emoji) on a message and take it off;
// each is a change of the message, delivered and stored like an edit. A reaction on nothing, on
// a change, with spaces or too long, or without its emoji, is refused and stores nothing.
func TestReactions(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.Metrics = true })
	alice, gus := ts.account("alice"), ts.signIn("gus")
	watch := ts.dialWS(alice)
	watch.subscribe("lobby", 0)
	m := ts.mustPost(alice, "lobby", "ship it?")
	if r := ts.do("POST", "/api/rooms/lobby/messages", gus, map[string]any{"kind": "react", "target": m.Seq, "body": "🚢"}); r.Status != http.StatusCreated || !strings.Contains(string(r.Raw), `"kind":"react","target":1`) {
		t.Fatalf("a guest's reaction: %d %s", r.Status, r.Raw)
	}
	c := ts.dialWS(gus)
	c.send(map[string]any{"type": "send", "room": "lobby", "kind": "unreact", "target": m.Seq, "body": "🚢", "client_id": "c-off"})
	if f := c.nextExcept("presence", "join", "leave"); f.Type != "ack" || f.Seq == nil || *f.Seq != 3 {
		t.Fatalf("unreact over WebSocket: %s", f)
	}
	for i, want := range []string{`"body":"ship it?"`, `"kind":"react"`, `"kind":"unreact"`} {
		if f := watch.nextExcept("presence", "join", "leave"); f.Type != "message" || !strings.Contains(string(f.Message), want) {
			t.Fatalf("delivered %d: %s, want %s", i, f, want)
		}
	}
	for _, body := range []map[string]any{
		{"kind": "react", "target": 99, "body": "👍"},
		{"kind": "react", "target": 2, "body": "👍"},
		{"kind": "react", "target": m.Seq, "body": "two words"},
		{"kind": "react", "target": m.Seq, "body": strings.Repeat("👍", 17)},
		{"kind": "react", "target": m.Seq},
		{"kind": "unreact", "body": "👍"},
	} {
		r := ts.do("POST", "/api/rooms/lobby/messages", gus, body)
		if r.Status != http.StatusNotFound && r.Status != http.StatusBadRequest {
			t.Fatalf("%v: %d %s, want 400 or 404", body, r.Status, r.Raw)
		}
	}
	if n := ts.lastSeq(alice, "lobby"); n != 3 {
		t.Fatalf("last_seq %d after refused reactions, want 3", n)
	}
	if v := scrape(t, ts)[`natter_message_changes_total{kind="reaction"}`]; v != 2 {
		t.Fatalf(`natter_message_changes_total{kind="reaction"} = %v, want 2`, v)
	}
}

// TestRenameRoom: the account that created a room may give it a new title (PATCH
// /api/rooms/{room}), which its subscribers hear at once (a "room" frame or event); anyone
// else, a guest, a bad title or an unknown room is refused and changes and tells nothing.
func TestRenameRoom(t *testing.T) {
	ts := startServer(t)
	alice, bob, gus := ts.account("alice"), ts.account("bob"), ts.signIn("gus")
	if r := ts.do("POST", "/api/rooms", alice, map[string]string{"name": "ops", "title": "Ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	// Bob has the room open over a WebSocket and an event stream: each rename reaches both.
	c := ts.dialWS(bob)
	c.subscribe("ops")
	stream := ts.openSSE("/api/rooms/ops/events", bob)
	stream.waitSubscribed()
	told := func(title, topic string) {
		t.Helper()
		if f := c.nextExcept("presence", "join", "leave"); f.Type != "room" || f.Room == nil || *f.Room != "ops" || f.Title == nil || *f.Title != title || f.Topic == nil || *f.Topic != topic {
			t.Fatalf("bob's WebSocket: %s, want the room's title %q and topic %q", f, title, topic)
		}
		for {
			ev := stream.next()
			if ev.Event == "room" {
				if ev.Data != fmt.Sprintf(`{"type":"room","room":"ops","title":%q,"topic":%q}`, title, topic) {
					t.Fatalf("bob's event stream: %q, want the title %q and topic %q", ev.Data, title, topic)
				}
				break
			}
		}
	}
	r := ts.do("PATCH", "/api/rooms/ops", alice, map[string]string{"title": "Operations"})
	if r.Status != http.StatusOK || r.Body["room"].(map[string]any)["title"] != "Operations" {
		t.Fatalf("rename: %d %s", r.Status, r.Raw)
	}
	told("Operations", "")
	checkError(t, ts.do("PATCH", "/api/rooms/ops", bob, map[string]string{"title": "Bob's"}), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("PATCH", "/api/rooms/ops", gus, map[string]string{"title": "Gus's"}), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("PATCH", "/api/rooms/lobby", alice, map[string]string{"title": "Mine"}), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("PATCH", "/api/rooms/ops", alice, map[string]string{"title": strings.Repeat("x", 201)}), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("PATCH", "/api/rooms/ops", alice, map[string]string{}), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("PATCH", "/api/rooms/nowhere", alice, map[string]string{"title": "x"}), http.StatusNotFound, "not_found")
	login := ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": "alice's password"})
	cookie := cookieHeader(sessionCookie(t, login))
	checkError(t, ts.do("PATCH", "/api/rooms/ops", "", map[string]string{"title": "Evil"}, "Cookie", cookie, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), http.StatusForbidden, "forbidden")
	if got := ts.do("GET", "/api/rooms/ops", bob, nil).Body["room"].(map[string]any)["title"]; got != "Operations" {
		t.Fatalf("title after refused renames: %v", got)
	}
	// The refusals told nobody anything: the next thing bob hears is the next rename.
	if r := ts.do("PATCH", "/api/rooms/ops", alice, map[string]string{"title": ""}); r.Status != http.StatusOK {
		t.Fatalf("rename to the name: %d %s", r.Status, r.Raw)
	}
	told("ops", "")

	// The topic: alone, or with the title; refused as a whole if either is bad.
	r = ts.do("PATCH", "/api/rooms/ops", alice, map[string]string{"topic": "deploys on Tuesdays"})
	if r.Status != http.StatusOK || r.Body["room"].(map[string]any)["topic"] != "deploys on Tuesdays" {
		t.Fatalf("set the topic: %d %s", r.Status, r.Raw)
	}
	told("ops", "deploys on Tuesdays")
	checkError(t, ts.do("PATCH", "/api/rooms/ops", alice, map[string]string{"title": "Ops", "topic": "two\nlines"}), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("PATCH", "/api/rooms/ops", alice, map[string]string{"topic": strings.Repeat("x", 251)}), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("PATCH", "/api/rooms/ops", bob, map[string]string{"topic": "bob's"}), http.StatusForbidden, "forbidden")
	if got := ts.do("GET", "/api/rooms/ops", bob, nil).Body["room"].(map[string]any); got["title"] != "ops" || got["topic"] != "deploys on Tuesdays" {
		t.Fatalf("the room after refused changes: %v", got)
	}
	if r := ts.do("PATCH", "/api/rooms/ops", alice, map[string]string{"title": "Ops", "topic": ""}); r.Status != http.StatusOK {
		t.Fatalf("a new title, no topic: %d %s", r.Status, r.Raw)
	}
	told("Ops", "")
	if listed := ts.do("GET", "/api/rooms", bob, nil).Raw; strings.Contains(string(listed), "Tuesdays") {
		t.Fatalf("the list still has the cleared topic: %s", listed)
	}
}
