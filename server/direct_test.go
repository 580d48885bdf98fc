package server_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"natter"
	"natter/app"
)

// TestDirectConversations: POST /api/dms opens the one room of two accounts (made by whichever
// asks first, the same room for the other), which both see and nobody else does; its members and
// title are fixed, nobody moderates it, and its name is kept from everyone who would make it by
// hand.
func TestDirectConversations(t *testing.T) {
	ts := startServer(t)
	ann, dave, carol, gus := ts.account("ann"), ts.account("dave"), ts.account("carol"), ts.signIn("gus")
	name := natter.DirectRoomName("ann", "dave")

	// Someone who would take the pair's name first is refused, and so is any name of the kind.
	for _, n := range []string{name, natter.DirectPrefix + "mine"} {
		checkError(t, ts.do("POST", "/api/rooms", carol, map[string]any{"name": n}), http.StatusBadRequest, "invalid")
		checkError(t, ts.do("POST", "/api/rooms", carol, map[string]any{"name": n, "private": true}), http.StatusBadRequest, "invalid")
	}
	for _, c := range []struct {
		tok, user string
		status    int
		code      string
	}{
		{gus, "ann", http.StatusForbidden, "forbidden"},   // guests have none
		{ann, "gus", http.StatusNotFound, "not_found"},    // nor can one be asked
		{ann, "nobody", http.StatusNotFound, "not_found"}, // no such account
		{ann, "ann", http.StatusBadRequest, "invalid"},    // oneself
		{ann, "Dave!", http.StatusBadRequest, "invalid"},  // not a name
		{ann, "", http.StatusBadRequest, "invalid"},       // none given
	} {
		checkError(t, ts.do("POST", "/api/dms", c.tok, map[string]string{"user": c.user}), c.status, c.code)
	}
	// (That nothing was made shows below: the first open answers 201.)

	open := func(tok, user string, status int) map[string]any {
		t.Helper()
		r := ts.do("POST", "/api/dms", tok, map[string]string{"user": user})
		if r.Status != status {
			t.Fatalf("open %s: %d %s, want %d", user, r.Status, r.Raw, status)
		}
		room := r.Body["room"].(map[string]any)
		direct, _ := room["direct"].([]any)
		if room["name"] != name || room["private"] != true || len(direct) != 2 || direct[0] != "ann" || direct[1] != "dave" {
			t.Fatalf("open %s: %s", user, r.Raw)
		}
		return room
	}
	made := open(ann, "dave", http.StatusCreated)
	again := open(dave, "ann", http.StatusOK)
	open(ann, "dave", http.StatusOK)
	if made["epoch"] != again["epoch"] || made["title"] != "ann, dave" {
		t.Fatalf("made %v, opened again %v", made, again)
	}
	epoch := made["epoch"].(string)

	// Both talk; both list it; nobody else sees it.
	first := ts.mustPost(ann, name, "hi dave")
	c := ts.dialWS(dave)
	c.subscribe(name, 0)
	if f := c.nextExcept("presence", "join", "leave"); f.Type != "message" || !strings.Contains(string(f.Message), "hi dave") {
		t.Fatalf("dave's subscription: %s", f)
	}
	reply := ts.mustPost(dave, name, "hi ann")
	for who, tok := range map[string]string{"ann": ann, "dave": dave} {
		if !ts.listed(t, tok, name) {
			t.Fatalf("%s's room list lacks the conversation", who)
		}
	}
	ts.shutOut(t, name, ann, epoch, carol, "carol", false)
	ts.shutOut(t, name, ann, epoch, gus, "gus", true)

	// Fixed: members, title; and nobody deletes the other's messages, not even who opened it.
	members := ts.do("GET", "/api/rooms/"+name+"/members", dave, nil)
	if got, _ := members.Body["members"].([]any); len(got) != 2 || got[0] != "ann" || got[1] != "dave" {
		t.Fatalf("members: %s", members.Raw)
	}
	checkError(t, ts.do("PUT", "/api/rooms/"+name+"/members/carol", ann, nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("DELETE", "/api/rooms/"+name+"/members/dave", ann, nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("DELETE", "/api/rooms/"+name+"/members/ann", ann, nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("PATCH", "/api/rooms/"+name, ann, map[string]string{"title": "ours"}), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("POST", "/api/rooms/"+name+"/messages", ann, map[string]any{"kind": "delete", "target": reply.Seq}), http.StatusForbidden, "forbidden")
	if r := ts.do("POST", "/api/rooms/"+name+"/messages", ann, map[string]any{"kind": "delete", "target": first.Seq}); r.Status != http.StatusCreated {
		t.Fatalf("ann deletes her own message: %d %s", r.Status, r.Raw)
	}
	if r := ts.do("GET", "/api/rooms/"+name, dave, nil); r.Body["room"].(map[string]any)["title"] != "ann, dave" {
		t.Fatalf("the conversation after the refusals: %s", r.Raw)
	}
	if got, _ := ts.do("GET", "/api/rooms/"+name+"/members", ann, nil).Body["members"].([]any); len(got) != 2 {
		t.Fatalf("members after the refusals: %v", got)
	}

	// Another pair's conversation is another room.
	if r := ts.do("POST", "/api/dms", carol, map[string]string{"user": "ann"}); r.Status != http.StatusCreated || r.Body["room"].(map[string]any)["name"] != natter.DirectRoomName("carol", "ann") {
		t.Fatalf("carol opens one with ann: %d %s", r.Status, r.Raw)
	}
	if ts.listed(t, dave, natter.DirectRoomName("carol", "ann")) {
		t.Fatal("dave sees carol and ann's conversation")
	}
}

// TestRoomCreationLimit: each user makes at most RoomRate rooms a minute, in bursts of
// RoomBurst, direct conversations included; past that a new room is refused with 429 and
// Retry-After and nothing is made, while opening a conversation that exists stays free and other
// users have their own allowance.
func TestRoomCreationLimit(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.RoomRate, c.Server.RoomBurst = 0.01, 2 })
	alice, bob := ts.account("alice"), ts.account("bob")
	for _, name := range []string{"a1", "a2"} {
		if r := ts.do("POST", "/api/rooms", alice, map[string]string{"name": name}); r.Status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Raw)
		}
	}
	refused := func(r apiResponse) {
		t.Helper()
		checkError(t, r, http.StatusTooManyRequests, "rate_limited")
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Fatalf("Retry-After %q, want a whole number of seconds >= 1", r.Header.Get("Retry-After"))
		}
		if !strings.Contains(r.errorMessage(), "making rooms too fast: at most 0.01 a minute (bursts of 2)") {
			t.Fatalf("refusal %q", r.errorMessage())
		}
	}
	refused(ts.do("POST", "/api/rooms", alice, map[string]string{"name": "a3"}))
	refused(ts.do("POST", "/api/dms", alice, map[string]string{"user": "bob"}))
	checkError(t, ts.do("GET", "/api/rooms/a3", alice, nil), http.StatusNotFound, "not_found")
	if r := ts.do("POST", "/api/dms", bob, map[string]string{"user": "alice"}); r.Status != http.StatusCreated {
		t.Fatalf("bob, with his own allowance, opens one: %d %s", r.Status, r.Raw)
	}
	if r := ts.do("POST", "/api/dms", alice, map[string]string{"user": "bob"}); r.Status != http.StatusOK {
		t.Fatalf("alice opens the one bob made: %d %s", r.Status, r.Raw)
	}
}

// TestCloseDirect: closing a direct conversation (DELETE /api/dms/{user}) leaves it out of the
// closer's room lists (the API's and the pages') until something new is posted in it, by either
// account, or the closer opens it again; the other account keeps it listed, and the closer still
// reads it by its address. Guests, oneself, unknown accounts and pairs with no conversation are
// refused.
func TestCloseDirect(t *testing.T) {
	ts := startServer(t)
	ann, dave, carol := ts.account("ann"), ts.account("dave"), ts.account("carol")
	r := ts.do("POST", "/api/dms", ann, map[string]string{"user": "dave"})
	if r.Status != http.StatusCreated {
		t.Fatalf("open: %d %s", r.Status, r.Raw)
	}
	dm := r.Body["room"].(map[string]any)["name"].(string)
	ts.mustPost(ann, dm, "hi dave")
	roomsPage := func(tok string) string {
		t.Helper()
		resp := ts.do("GET", "/", tok, nil, "Accept", "text/html")
		if resp.Status != http.StatusOK {
			t.Fatalf("GET /: %d", resp.Status)
		}
		return string(resp.Raw)
	}
	if !ts.listed(t, ann, dm) || !strings.Contains(roomsPage(ann), `data-room="`+dm+`"`) {
		t.Fatal("the conversation is not in ann's lists before she closes it")
	}

	if r := ts.do("DELETE", "/api/dms/dave", ann, nil); r.Status != http.StatusNoContent {
		t.Fatalf("ann closes it: %d %s", r.Status, r.Raw)
	}
	if ts.listed(t, ann, dm) || strings.Contains(roomsPage(ann), `data-room="`+dm+`"`) {
		t.Fatal("the closed conversation is still in ann's lists")
	}
	if !ts.listed(t, dave, dm) {
		t.Fatal("ann's closing took the conversation out of dave's list")
	}
	if p := ts.read(ann, "/api/rooms/"+dm+"/messages?after=0"); len(p.Messages) != 1 {
		t.Fatalf("ann reads %d messages in the closed conversation, want 1", len(p.Messages))
	}
	// Closed again: no error. Then dave answers: it is back.
	if r := ts.do("DELETE", "/api/dms/dave", ann, nil); r.Status != http.StatusNoContent {
		t.Fatalf("closing again: %d %s", r.Status, r.Raw)
	}
	ts.mustPost(dave, dm, "hi ann")
	if !ts.listed(t, ann, dm) {
		t.Fatal("dave's new message did not bring the conversation back to ann's list")
	}
	// Closed, then opened again by ann.
	if r := ts.do("DELETE", "/api/dms/dave", ann, nil); r.Status != http.StatusNoContent {
		t.Fatalf("closing: %d %s", r.Status, r.Raw)
	}
	if r := ts.do("POST", "/api/dms", ann, map[string]string{"user": "dave"}); r.Status != http.StatusOK || !ts.listed(t, ann, dm) {
		t.Fatalf("ann opening it again: %d %s, listed %v", r.Status, r.Raw, ts.listed(t, ann, dm))
	}

	checkError(t, ts.do("DELETE", "/api/dms/dave", ts.signIn("guest1"), nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("DELETE", "/api/dms/ann", ann, nil), http.StatusNotFound, "not_found")
	checkError(t, ts.do("DELETE", "/api/dms/nobody", ann, nil), http.StatusNotFound, "not_found")
	checkError(t, ts.do("DELETE", "/api/dms/carol", ann, nil), http.StatusNotFound, "not_found")
	checkError(t, ts.do("DELETE", "/api/dms/Bad%20Name", carol, nil), http.StatusNotFound, "not_found")
}
