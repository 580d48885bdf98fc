package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"natter/app"
)

// TestDeleteRoom: a room's moderators delete it; from then on it does not exist for anyone, on
// any transport: what every connection receives of it ends at once (a WebSocket's subscription
// with the room's not_found, an event stream, a parked long-poll with 404) while the rest goes on, every
// request about it answers 404, lists leave it out, and its name is not used again. Nobody else
// deletes a room, the lobby stays, and a direct conversation is not deleted but closed.
func TestDeleteRoom(t *testing.T) {
	ts, logs := startServerLogged(t, func(c *app.Config) {
		c.Server.Admins = []string{"root"}
	})
	carol, bob, gus, root := ts.account("carol"), ts.account("bob"), ts.signIn("gus"), ts.account("root")
	for _, name := range []string{"doomed", "other"} {
		if r := ts.do("POST", "/api/rooms", carol, map[string]any{"name": name}); r.Status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Raw)
		}
	}
	ts.mustPost(carol, "doomed", "the plan")
	ts.mustPost(bob, "doomed", "count me in")
	epoch := ts.do("GET", "/api/rooms/doomed", bob, nil).Body["room"].(map[string]any)["epoch"].(string)

	checkError(t, ts.do("DELETE", "/api/rooms/doomed", bob, nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("DELETE", "/api/rooms/doomed", gus, nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("DELETE", "/api/rooms/lobby", root, nil), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("DELETE", "/api/rooms/nowhere", carol, nil), http.StatusNotFound, "not_found")
	dm := ts.do("POST", "/api/dms", carol, map[string]string{"user": "bob"})
	dmName := dm.Body["room"].(map[string]any)["name"].(string)
	checkError(t, ts.do("DELETE", "/api/rooms/"+dmName, carol, nil), http.StatusForbidden, "forbidden")
	if page := ts.read(bob, "/api/rooms/doomed/messages?after=0"); len(page.Messages) != 2 {
		t.Fatalf("refused deletions changed the room: %+v", page.Messages)
	}

	// bob receives the room on every transport, and the lobby beside it.
	ws := ts.dialWS(bob)
	ws.subscribe("lobby")
	ws.subscribe("doomed", 2)
	events, lobbyEvents := ts.openSSE("/api/rooms/doomed/events", bob), ts.openSSE("/api/rooms/lobby/events", bob)
	events.waitSubscribed()
	lobbyEvents.waitSubscribed()
	srv := ts.Main.Server()
	conns := srv.ConnCount()
	poll := ts.doAsync("GET", "/api/rooms/doomed/messages?after=2&wait=60", bob, nil)
	waitFor(t, "bob's long-poll parked", func() bool { return srv.ConnCount() == conns+1 })

	if r := ts.do("DELETE", "/api/rooms/doomed", carol, nil); r.Status != http.StatusNoContent {
		t.Fatalf("carol deletes her room: %d %s", r.Status, r.Raw)
	}
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "error" || f.Code != "not_found" || f.Ref == nil || *f.Ref != "doomed" {
		t.Fatalf("bob's WebSocket after the deletion: %s, want the room's not_found", f)
	}
	if err := events.ended(); err == nil {
		t.Fatal("bob's event stream of the room did not end")
	}
	select {
	case r := <-poll:
		checkError(t, r, http.StatusNotFound, "not_found")
		if r.errorMessage() != `no room named "doomed"` {
			t.Fatalf("bob's parked long-poll: %s", r.Raw)
		}
	case <-time.After(guard):
		t.Fatal("bob's parked long-poll was not answered")
	}
	ts.mustPost(carol, "lobby", "the room is gone")
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "message" || f.msg(t).Body != "the room is gone" {
		t.Fatalf("bob's WebSocket after the deletion: %s, want the lobby's message", f)
	}
	if m := lobbyEvents.nextMessage(); m.Body != "the room is gone" {
		t.Fatalf("bob's lobby stream: %+v", m)
	}

	// Gone, for everyone, on every way in.
	for _, tok := range []string{carol, bob, gus, root} {
		for _, req := range []struct{ method, path string }{
			{"GET", "/api/rooms/doomed"},
			{"GET", "/api/rooms/doomed/messages?after=0"},
			{"GET", "/api/rooms/doomed/messages?before=0"},
			{"GET", "/api/rooms/doomed/messages?after=2&wait=1"},
			{"GET", "/api/rooms/doomed/search?q=plan"},
			{"GET", "/api/rooms/doomed/pins"},
			{"GET", "/api/rooms/doomed/presence"},
			{"GET", "/api/rooms/doomed/events"},
			{"GET", "/api/rooms/doomed/members"},
			{"POST", "/api/rooms/doomed/typing"},
			{"PATCH", "/api/rooms/doomed"},
			{"DELETE", "/api/rooms/doomed"},
		} {
			var body any
			if req.method == "PATCH" {
				body = map[string]string{"title": "back"}
			}
			checkError(t, ts.do(req.method, req.path, tok, body), http.StatusNotFound, "not_found")
		}
		checkError(t, ts.post(tok, "doomed", "anyone?", ""), http.StatusNotFound, "not_found")
		if ts.listed(t, tok, "doomed") {
			t.Fatal("the deleted room is still listed")
		}
	}
	checkError(t, ts.do("PUT", "/api/rooms/doomed/read", bob, map[string]any{"seq": 1, "epoch": epoch}), http.StatusNotFound, "not_found")
	ws.send(map[string]any{"type": "subscribe", "room": "doomed", "after": 0})
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "error" || f.Code != "not_found" {
		t.Fatalf("subscribing to the deleted room: %s", f)
	}
	ws.send(map[string]any{"type": "send", "room": "doomed", "body": "hello?", "client_id": "c-late"})
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "error" || f.Code != "not_found" {
		t.Fatalf("sending to the deleted room over the WebSocket: %s", f)
	}
	for _, r := range []map[string]any{{"name": "doomed"}, {"name": "doomed", "private": true}} {
		resp := ts.do("POST", "/api/rooms", root, r)
		checkError(t, resp, http.StatusConflict, "conflict")
		if !strings.Contains(resp.errorMessage(), "deleted") {
			t.Fatalf("making the name again: %q, want it to say the room was deleted", resp.errorMessage())
		}
	}
	if page := ts.read(bob, "/api/rooms/other/messages?after=0"); page.Room != "other" {
		t.Fatalf("the room beside it: %+v", page)
	}

	// An admin deletes anyone's room.
	if r := ts.do("DELETE", "/api/rooms/other", root, nil); r.Status != http.StatusNoContent {
		t.Fatalf("root deletes carol's room: %d %s", r.Status, r.Raw)
	}
	checkError(t, ts.do("GET", "/api/rooms/other", carol, nil), http.StatusNotFound, "not_found")
	for _, line := range []string{`msg="moderation: room deleted" room=doomed by=carol messages=2`, `msg="moderation: room deleted" room=other by=root`} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("the log lacks %s", line)
		}
	}
}

// TestClusterDeleteRoom: a room deleted on one node is gone on the other at once: its
// connections there lose it, and that node answers for it as for no room.
func TestClusterDeleteRoom(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	carol := a.account("carol")
	bobOnB := b.account("bob")
	if r := a.do("POST", "/api/rooms", carol, map[string]any{"name": "doomed"}); r.Status != http.StatusCreated {
		t.Fatalf("create on A: %d %s", r.Status, r.Raw)
	}
	a.mustPost(carol, "doomed", "the plan")
	ws := b.dialWS(bobOnB)
	ws.subscribe("lobby")
	ws.subscribe("doomed", 0)
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "message" || f.msg(t).Body != "the plan" {
		t.Fatalf("bob on B: %s", f)
	}
	b.mustPost(bobOnB, "doomed", "sent on B") // B has sent to it: it knows the room
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "message" {
		t.Fatalf("bob on B: %s", f)
	}
	if r := a.do("DELETE", "/api/rooms/doomed", carol, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete on A: %d %s", r.Status, r.Raw)
	}
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "error" || f.Code != "not_found" || f.Ref == nil || *f.Ref != "doomed" {
		t.Fatalf("bob's WebSocket on B: %s, want the room's not_found", f)
	}
	checkError(t, b.post(bobOnB, "doomed", "still there?", ""), http.StatusNotFound, "not_found")
	checkError(t, b.do("GET", "/api/rooms/doomed/messages?after=0", bobOnB, nil), http.StatusNotFound, "not_found")
	a.mustPost(carol, "lobby", "for everyone")
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "message" || f.msg(t).Body != "for everyone" {
		t.Fatalf("bob's WebSocket on B: %s, want the lobby's message", f)
	}
	checkError(t, b.do("POST", "/api/rooms", bobOnB, map[string]any{"name": "doomed"}), http.StatusConflict, "conflict")
}
