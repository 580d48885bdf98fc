package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPrivateRooms: a private room is seen only by its members. To anyone else (another
// account, a guest) every request about it, over every transport, answers as for a room that
// does not exist, stores nothing, and room lists leave it out; once a member adds an account,
// it sees the room like any other.
func TestPrivateRooms(t *testing.T) {
	ts := startServer(t)
	carol, bob, gus := ts.account("carol"), ts.account("bob"), ts.signIn("gus")
	checkError(t, ts.do("POST", "/api/rooms", gus, map[string]any{"name": "guests", "private": true}), http.StatusForbidden, "forbidden")
	r := ts.do("POST", "/api/rooms", carol, map[string]any{"name": "secret", "title": "Secret", "private": true})
	if r.Status != http.StatusCreated || r.Body["room"].(map[string]any)["private"] != true {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	ts.mustPost(carol, "secret", "the plan")
	epoch := r.Body["room"].(map[string]any)["epoch"].(string)

	listed := func(tok string) bool { t.Helper(); return ts.listed(t, tok, "secret") }
	shut := func(tok, who string) { t.Helper(); ts.shutOut(t, "secret", carol, epoch, tok, who, who == "gus") }
	shut(bob, "bob")
	shut(gus, "gus")

	checkError(t, ts.do("PUT", "/api/rooms/secret/members/nobody", carol, nil), http.StatusNotFound, "not_found")
	checkError(t, ts.do("PUT", "/api/rooms/secret/members/gus", carol, nil), http.StatusNotFound, "not_found")
	checkError(t, ts.do("PUT", "/api/rooms/lobby/members/bob", carol, nil), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("DELETE", "/api/rooms/lobby/members/bob", carol, nil), http.StatusBadRequest, "invalid")
	if r := ts.do("PUT", "/api/rooms/secret/members/bob", carol, nil); r.Status != http.StatusNoContent {
		t.Fatalf("add bob: %d %s", r.Status, r.Raw)
	}
	var members struct {
		Private bool
		Members []string
	}
	json.Unmarshal(ts.do("GET", "/api/rooms/secret/members", bob, nil).Raw, &members)
	if !members.Private || !slices.Equal(members.Members, []string{"bob", "carol"}) {
		t.Fatalf("members %+v", members)
	}
	if !listed(bob) {
		t.Fatal("bob, a member now, does not see the room in his list")
	}
	c := ts.dialWS(bob)
	c.subscribe("secret", 0)
	if f := c.nextExcept("presence", "join", "leave"); f.Type != "message" || !strings.Contains(string(f.Message), "the plan") {
		t.Fatalf("bob's subscription: %s", f)
	}
	ts.mustPost(bob, "secret", "bob was added")
	if page := ts.search(bob, "secret", "q=plan"); len(page.Messages) != 1 {
		t.Fatalf("bob's search: %+v", page)
	}
	shut(gus, "gus") // still

	// Taken out again: what bob receives of the room ends at once on every transport (his
	// WebSocket's subscription with the error a subscribe would now get, his event stream, his
	// parked long-poll), what he receives of other rooms goes on, and the room is shut to him.
	checkError(t, ts.do("DELETE", "/api/rooms/secret/members/carol", bob, nil), http.StatusBadRequest, "invalid")
	dan := ts.account("dan")
	if r := ts.do("PUT", "/api/rooms/secret/members/dan", bob, nil); r.Status != http.StatusNoContent {
		t.Fatalf("bob adds dan: %d %s", r.Status, r.Raw)
	}
	checkError(t, ts.do("DELETE", "/api/rooms/secret/members/bob", dan, nil), http.StatusForbidden, "forbidden")
	c.send(map[string]any{"type": "subscribe", "room": "lobby"})
	for f := c.next(); f.Type != "subscribed"; f = c.next() { // past the room's messages
	}
	secretEvents, lobbyEvents := ts.openSSE("/api/rooms/secret/events", bob), ts.openSSE("/api/rooms/lobby/events", bob)
	secretEvents.waitSubscribed()
	lobbyEvents.waitSubscribed()
	srv := ts.Main.Server()
	conns := srv.ConnCount()
	poll := ts.doAsync("GET", fmt.Sprintf("/api/rooms/secret/messages?after=%d&wait=60", ts.lastSeq(carol, "secret")), bob, nil)
	waitFor(t, "bob's long-poll parked", func() bool { return srv.ConnCount() == conns+1 })
	if r := ts.do("DELETE", "/api/rooms/secret/members/bob", carol, nil); r.Status != http.StatusNoContent {
		t.Fatalf("carol removes bob: %d %s", r.Status, r.Raw)
	}
	if f := c.nextExcept("presence", "join", "leave", "message"); f.Type != "error" || f.Code != "not_found" || f.Ref == nil || *f.Ref != "secret" {
		t.Fatalf("bob's WebSocket after his removal: %s, want the room's not_found", f)
	}
	if err := secretEvents.ended(); err == nil {
		t.Fatal("bob's event stream of the room did not end")
	}
	select {
	case r := <-poll:
		if r.Status != http.StatusOK || len(r.Body["messages"].([]any)) != 0 {
			t.Fatalf("bob's parked long-poll: %d %s", r.Status, r.Raw)
		}
	case <-time.After(guard):
		t.Fatal("bob's parked long-poll was not answered")
	}
	ts.mustPost(carol, "secret", "after bob")
	ts.mustPost(carol, "lobby", "still here, bob?")
	if f := c.nextExcept("presence", "join", "leave"); f.Type != "message" || f.msg(t).Room != "lobby" {
		t.Fatalf("bob's WebSocket after his removal: %s, want the lobby's message and nothing of the room", f)
	}
	if m := lobbyEvents.nextMessage(); m.Body != "still here, bob?" {
		t.Fatalf("bob's lobby stream: %+v", m)
	}
	shut(bob, "bob")
	if r := ts.do("DELETE", "/api/rooms/secret/members/dan", dan, nil); r.Status != http.StatusNoContent {
		t.Fatalf("dan leaves: %d %s", r.Status, r.Raw)
	}
	shut(dan, "dan")
}

// TestPrivateRoomPages: the rooms page and a room page show a private room to its members only;
// to anyone else its page is the not-found page.
func TestPrivateRoomPages(t *testing.T) {
	ts := startServer(t)
	carol, bob := ts.account("carol"), ts.account("bob")
	if r := ts.do("POST", "/api/rooms", carol, map[string]any{"name": "secret", "private": true}); r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	page := func(tok, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.AddCookie(&http.Cookie{Name: "natter_session", Value: tok})
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, html := page(carol, "/rooms/secret"); code != http.StatusOK || !strings.Contains(html, `data-room="secret"`) {
		t.Fatalf("carol's room page: %d", code)
	}
	if _, html := page(carol, "/"); !strings.Contains(html, `data-room="secret"`) {
		t.Fatal("carol's rooms page lacks her private room")
	}
	if code, _ := page(bob, "/rooms/secret"); code != http.StatusNotFound {
		t.Fatalf("bob's page of the private room: %d, want 404", code)
	}
	if _, html := page(bob, "/"); strings.Contains(html, `data-room="secret"`) {
		t.Fatal("bob's rooms page lists the private room")
	}
	if _, html := page(bob, "/rooms/lobby"); strings.Contains(html, `data-room="secret"`) {
		t.Fatal("the rooms beside bob's lobby list the private room")
	}
}

// listed reports whether tok's room list has room.
func (ts *testServer) listed(t *testing.T, tok, room string) bool {
	t.Helper()
	for _, x := range ts.do("GET", "/api/rooms", tok, nil).Body["rooms"].([]any) {
		if x.(map[string]any)["name"] == room {
			return true
		}
	}
	return false
}

// shutOut checks that the private room (of epoch, with member among its members) is shut to
// tok (who, a guest or not): every request about it, over every transport, answers as for a room that does not
// exist and stores nothing, and tok's room list leaves it out.
func (ts *testServer) shutOut(t *testing.T, room, member, epoch, tok, who string, guest bool) {
	t.Helper()
	before := ts.lastSeq(member, room)
	if ts.listed(t, tok, room) {
		t.Fatalf("%s's room list has the private room", who)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/rooms/" + room},
		{"GET", "/api/rooms/" + room + "/messages?after=0"},
		{"GET", "/api/rooms/" + room + "/messages?after=1&wait=1"},
		{"GET", "/api/rooms/" + room + "/messages?before=2"},
		{"GET", "/api/rooms/" + room + "/search?q=plan"},
		{"GET", "/api/rooms/" + room + "/presence"},
		{"GET", "/api/rooms/" + room + "/members"},
		{"GET", "/api/rooms/" + room + "/events"},
		{"POST", "/api/rooms/" + room + "/typing"},
		{"PUT", "/api/rooms/" + room + "/members/" + who},
		{"PATCH", "/api/rooms/" + room},
	} {
		var body any
		if c.method == "PATCH" {
			body = map[string]string{"title": "mine"}
		}
		res := ts.do(c.method, c.path, tok, body)
		checkError(t, res, http.StatusNotFound, "not_found")
		if msg := res.errorMessage(); msg != fmt.Sprintf("no room named %q", room) {
			t.Fatalf("%s %s for %s: %q, want the answer for a room that does not exist", c.method, c.path, who, msg)
		}
	}
	checkError(t, ts.do("POST", "/api/rooms/"+room+"/messages", tok, map[string]string{"body": "let me in"}), http.StatusNotFound, "not_found")
	// A guest's mark is refused anywhere, for being a guest: that says nothing of the room.
	markStatus, markCode := http.StatusNotFound, "not_found"
	if guest {
		markStatus, markCode = http.StatusForbidden, "forbidden"
	}
	checkError(t, ts.do("PUT", "/api/rooms/"+room+"/read", tok, map[string]any{"seq": 1, "epoch": epoch}), markStatus, markCode)
	c := ts.dialWS(tok)
	c.send(map[string]any{"type": "subscribe", "room": room, "after": 0})
	if f := c.next(); f.Type != "error" || f.Code != "not_found" || f.Ref == nil || *f.Ref != room {
		t.Fatalf("%s subscribing over WebSocket: %s", who, f)
	}
	c.send(map[string]any{"type": "send", "room": room, "body": "let me in", "client_id": "c-in"})
	if f := c.next(); f.Type != "error" || f.Code != "not_found" {
		t.Fatalf("%s sending over WebSocket: %s", who, f)
	}
	c.send(map[string]any{"type": "read", "room": room, "epoch": epoch, "seq": 1})
	if f := c.next(); f.Type != "error" || f.Code != markCode {
		t.Fatalf("%s marking over WebSocket: %s", who, f)
	}
	if n := ts.lastSeq(member, room); n != before {
		t.Fatalf("last_seq %d after %s's attempts, want %d", n, who, before)
	}
}
