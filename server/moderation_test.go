package server_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"natter/app"
)

// wantBanFrame wants c's next frame (presence and typing aside) to say user's ban in room is
// banned.
func wantBanFrame(t *testing.T, c *wsClient, room, user string, banned bool) {
	t.Helper()
	f := c.nextExcept("join", "leave", "presence", "typing", "message")
	if f.Type != "ban" || f.Room == nil || *f.Room != room || f.User != user || f.Banned == nil || *f.Banned != banned {
		t.Fatalf("got %s, want a ban frame: %s in %s banned %v", f, user, room, banned)
	}
}

// TestBans: a room's creator bans a user from posting in it. The banned user's messages, edits,
// reactions and typing notices are refused on every way in, with 403 and nothing stored, in that
// room only; they still read it and may delete their own messages. The room's subscribers hear of
// the ban at once (WebSocket frame, SSE event), the room reads "banned" to that user and
// "moderator" to its creator, and only moderators list, make or lift bans. Lifting it lets the
// user post again.
func TestBans(t *testing.T) {
	ts := startServer(t)
	alice, bob, dave := ts.account("alice"), ts.account("bob"), ts.account("dave")
	carol := ts.signIn("carol") // a guest
	if r := ts.do("POST", "/api/rooms", alice, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	own := ts.mustPost(bob, "ops", "bob's first")
	bobWS, daveWS := ts.dialWS(bob), ts.dialWS(dave)
	bobWS.subscribe("ops")
	daveWS.subscribe("ops")
	carolSSE := ts.openSSE("/api/rooms/ops/events", carol)
	carolSSE.waitSubscribed()

	// Only the room's moderator bans.
	checkError(t, ts.do("PUT", "/api/rooms/ops/bans/carol", bob, nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("GET", "/api/rooms/ops/bans", bob, nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("PUT", "/api/rooms/ops/bans/alice", alice, nil), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("PUT", "/api/rooms/ops/bans/Not%20A%20Name", alice, nil), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("PUT", "/api/rooms/nowhere/bans/bob", alice, nil), http.StatusNotFound, "not_found")
	if r := ts.do("PUT", "/api/rooms/lobby/bans/bob", alice, nil); r.Status != http.StatusForbidden {
		t.Fatalf("alice banning in the lobby (no creator): %d %s, want 403", r.Status, r.Raw)
	}

	if r := ts.do("PUT", "/api/rooms/ops/bans/bob", alice, nil); r.Status != http.StatusNoContent {
		t.Fatalf("alice bans bob: %d %s", r.Status, r.Raw)
	}
	wantBanFrame(t, bobWS, "ops", "bob", true)
	wantBanFrame(t, daveWS, "ops", "bob", true)
	if ev := nextSSE(carolSSE, "join", "leave", "presence"); ev.Event != "ban" || ev.Data != `{"type":"ban","room":"ops","user":"bob","banned":true}` {
		t.Fatalf("carol's stream got %q %q, want the ban event", ev.Event, ev.Data)
	}
	if r := ts.do("PUT", "/api/rooms/ops/bans/bob", alice, nil); r.Status != http.StatusNoContent {
		t.Fatalf("banning bob again: %d %s, want 204", r.Status, r.Raw)
	}
	r := ts.do("GET", "/api/rooms/ops/bans", alice, nil)
	bans, _ := r.Body["bans"].([]any)
	if r.Status != http.StatusOK || len(bans) != 1 || bans[0].(map[string]any)["user"] != "bob" || bans[0].(map[string]any)["by"] != "alice" || bans[0].(map[string]any)["at"] == "" {
		t.Fatalf("the bans of ops: %d %s, want bob's, by alice", r.Status, r.Raw)
	}
	room := ts.do("GET", "/api/rooms/ops", bob, nil).Body["room"].(map[string]any)
	if room["banned"] != true || room["moderator"] != nil {
		t.Fatalf("ops as bob reads it: %v, want banned and no moderator", room)
	}
	room = ts.do("GET", "/api/rooms/ops", alice, nil).Body["room"].(map[string]any)
	if room["moderator"] != true || room["banned"] != nil {
		t.Fatalf("ops as alice reads it: %v, want moderator, not banned", room)
	}

	// Refused everywhere, nothing stored.
	last := ts.lastSeq(alice, "ops")
	checkError(t, ts.post(bob, "ops", "still here?", "c-1"), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("POST", "/api/rooms/ops/messages", bob, map[string]any{"kind": "edit", "target": own.Seq, "body": "changed"}), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("POST", "/api/rooms/ops/messages", bob, map[string]any{"kind": "react", "target": own.Seq, "body": "👍"}), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("POST", "/api/rooms/ops/typing", bob, nil), http.StatusForbidden, "forbidden")
	bobWS.send(map[string]string{"type": "send", "room": "ops", "body": "over the socket", "client_id": "c-2"})
	if f := bobWS.nextExcept("join", "leave"); f.Type != "error" || f.Code != "forbidden" || f.Ref == nil || *f.Ref != "c-2" {
		t.Fatalf("bob's send over the WebSocket: %s, want a forbidden error for c-2", f)
	}
	bobWS.send(map[string]string{"type": "typing", "room": "ops"})
	if f := bobWS.nextExcept("join", "leave"); f.Type != "error" || f.Code != "forbidden" || f.Ref == nil || *f.Ref != "ops" {
		t.Fatalf("bob typing over the WebSocket: %s, want a forbidden error for ops", f)
	}
	if got := ts.lastSeq(alice, "ops"); got != last {
		t.Fatalf("ops's last seq %d after the refusals, want %d", got, last)
	}
	// Reading, posting elsewhere and deleting his own message go on.
	if p := ts.read(bob, "/api/rooms/ops/messages?after=0"); len(p.Messages) == 0 {
		t.Fatal("bob reads no messages in ops")
	}
	ts.mustPost(bob, "lobby", "the lobby is not ops")
	if r := ts.do("POST", "/api/rooms/ops/messages", bob, map[string]any{"kind": "delete", "target": own.Seq}); r.Status != http.StatusCreated {
		t.Fatalf("bob deleting his own message while banned: %d %s", r.Status, r.Raw)
	}
	// A guest's name is banned too.
	if r := ts.do("PUT", "/api/rooms/ops/bans/carol", alice, nil); r.Status != http.StatusNoContent {
		t.Fatalf("alice bans carol: %d %s", r.Status, r.Raw)
	}
	checkError(t, ts.post(carol, "ops", "me too?", ""), http.StatusForbidden, "forbidden")
	wantBanFrame(t, daveWS, "ops", "carol", true)

	// Lifted: bob posts again, and everyone hears of it.
	checkError(t, ts.do("DELETE", "/api/rooms/ops/bans/bob", dave, nil), http.StatusForbidden, "forbidden")
	if r := ts.do("DELETE", "/api/rooms/ops/bans/bob", alice, nil); r.Status != http.StatusNoContent {
		t.Fatalf("alice lifts bob's ban: %d %s", r.Status, r.Raw)
	}
	wantBanFrame(t, daveWS, "ops", "bob", false)
	wantBanFrame(t, bobWS, "ops", "carol", true)
	wantBanFrame(t, bobWS, "ops", "bob", false)
	if f := bobWS.sendMessage("ops", "back", "c-3"); f.Type != "ack" {
		t.Fatalf("bob's send after the lift: %s, want an ack", f)
	}
	if r := ts.do("DELETE", "/api/rooms/ops/bans/bob", alice, nil); r.Status != http.StatusNoContent {
		t.Fatalf("lifting a ban that is not there: %d %s, want 204", r.Status, r.Raw)
	}
}

// TestAdmins: the accounts named in Config.Admins moderate every room but direct conversations:
// they ban in rooms they did not make, and can't be banned themselves. A guest of an admin's name
// (while no account has it) is no admin.
func TestAdmins(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.Admins = []string{"root", "boss"} })
	root, alice, bob := ts.account("root"), ts.account("alice"), ts.account("bob")
	boss := ts.signIn("boss") // a guest: no account is named boss
	if r := ts.do("POST", "/api/rooms", alice, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	for _, room := range []string{"ops", "lobby"} {
		if r := ts.do("PUT", "/api/rooms/"+room+"/bans/bob", root, nil); r.Status != http.StatusNoContent {
			t.Fatalf("root bans bob in %s: %d %s", room, r.Status, r.Raw)
		}
		checkError(t, ts.post(bob, room, "hi", ""), http.StatusForbidden, "forbidden")
	}
	if got := ts.do("GET", "/api/rooms/lobby", root, nil).Body["room"].(map[string]any)["moderator"]; got != true {
		t.Fatalf("the lobby as root reads it: moderator %v, want true", got)
	}
	checkError(t, ts.do("PUT", "/api/rooms/ops/bans/root", alice, nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("PUT", "/api/rooms/ops/bans/alice", boss, nil), http.StatusForbidden, "forbidden")
	// The creator is a moderator of ops too, so alice can't be banned from it, even by root.
	checkError(t, ts.do("PUT", "/api/rooms/ops/bans/alice", root, nil), http.StatusForbidden, "forbidden")

	r := ts.do("POST", "/api/dms", alice, map[string]string{"user": "bob"})
	dm := r.Body["room"].(map[string]any)["name"].(string)
	checkError(t, ts.do("PUT", "/api/rooms/"+dm+"/bans/bob", alice, nil), http.StatusForbidden, "forbidden")
}

// TestSuspension: an admin suspends an account: its open connections close and its sessions end
// at once, and it can't sign in again (403, after a right password only) until reinstated. Its
// messages stay. Only admins suspend, an admin can't be suspended, and a missing account is 404.
// Each suspension and reinstatement is in the log, with who made it (as are bans and lifts).
func TestSuspension(t *testing.T) {
	ts, logs := startServerLogged(t, func(c *app.Config) {
		c.Server.Admins = []string{"root"}
	})
	root, alice, bob := ts.account("root"), ts.account("alice"), ts.account("bob")
	msg := ts.mustPost(alice, "lobby", "alice was here")
	aliceWS := ts.dialWS(alice)
	aliceWS.subscribe("lobby")

	checkError(t, ts.do("PUT", "/api/users/alice/suspension", bob, nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("GET", "/api/suspensions", bob, nil), http.StatusForbidden, "forbidden")
	if r := ts.do("GET", "/api/suspensions", root, nil); r.Status != http.StatusOK || string(r.Raw) != `{"users":[]}`+"\n" {
		t.Fatalf("the suspended before any suspension: %d %q", r.Status, r.Raw)
	}
	checkError(t, ts.do("PUT", "/api/users/root/suspension", root, nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("PUT", "/api/users/nobody/suspension", root, nil), http.StatusNotFound, "not_found")
	if r := ts.do("PUT", "/api/users/alice/suspension", root, nil); r.Status != http.StatusNoContent {
		t.Fatalf("root suspends alice: %d %s", r.Status, r.Raw)
	}
	wantSignedOut(t, aliceWS)
	if r := ts.do("GET", "/api/suspensions", root, nil); r.Status != http.StatusOK || string(r.Raw) != `{"users":["alice"]}`+"\n" {
		t.Fatalf("the suspended after alice's suspension: %d %q", r.Status, r.Raw)
	}
	checkError(t, ts.do("GET", "/api/session", alice, nil), http.StatusUnauthorized, "unauthorized")
	checkError(t, ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": "wrong password"}), http.StatusUnauthorized, "unauthorized")
	r := ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": "alice's password"})
	checkError(t, r, http.StatusForbidden, "forbidden")
	if msg := r.errorMessage(); msg != "the account alice is suspended: ask this server's operator" {
		t.Fatalf("alice's sign-in refused with %q", msg)
	}
	// A guest can't take the name either: it is an account's.
	if r := ts.do("POST", "/api/session", "", map[string]string{"name": "alice"}); r.Status == http.StatusOK {
		t.Fatalf("a guest signed in as suspended alice: %s", r.Raw)
	}
	if p := ts.read(bob, "/api/rooms/lobby/messages?after=0"); len(p.Messages) == 0 || p.Messages[0].Seq != msg.Seq {
		t.Fatalf("alice's message after her suspension: %+v, want it kept", p.Messages)
	}

	if r := ts.do("DELETE", "/api/users/alice/suspension", root, nil); r.Status != http.StatusNoContent {
		t.Fatalf("root reinstates alice: %d %s", r.Status, r.Raw)
	}
	alice = ts.signInPassword("alice", "alice's password")
	ts.mustPost(alice, "lobby", "alice is back")
	if r := ts.do("PUT", "/api/rooms/lobby/bans/bob", root, nil); r.Status != http.StatusNoContent {
		t.Fatalf("root bans bob: %d %s", r.Status, r.Raw)
	}
	for _, line := range []string{
		`msg="moderation: account suspended" user=alice by=root`,
		`msg="moderation: account reinstated" user=alice by=root`,
		`msg="moderation: banned from posting" room=lobby user=bob by=root`,
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("the log lacks %s:\n%s", line, logs.String())
		}
	}
}

// TestChangeLimit: the changes one user makes to rooms and accounts (members, bans, renames,
// closed conversations) are limited, and a refused one changes nothing; another user has their
// own allowance. On Redis the allowance holds across the nodes (TestClusterChangeLimit).
func TestChangeLimit(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.ChangeRate, c.Server.ChangeBurst = 0.01, 2 })
	alice, bob := ts.account("alice"), ts.account("bob")
	ts.account("carol")
	if r := ts.do("POST", "/api/rooms", alice, map[string]any{"name": "ops", "private": true}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	for _, who := range []string{"bob", "carol"} {
		if r := ts.do("PUT", "/api/rooms/ops/members/"+who, alice, nil); r.Status != http.StatusNoContent {
			t.Fatalf("add %s: %d %s", who, r.Status, r.Raw)
		}
	}
	for _, r := range []apiResponse{
		ts.do("DELETE", "/api/rooms/ops/members/carol", alice, nil),
		ts.do("PUT", "/api/rooms/ops/bans/carol", alice, nil),
		ts.do("PATCH", "/api/rooms/ops", alice, map[string]string{"title": "Ops"}),
	} {
		checkError(t, r, http.StatusTooManyRequests, "rate_limited")
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Fatalf("Retry-After %q, want a whole number of seconds >= 1", r.Header.Get("Retry-After"))
		}
		if !strings.Contains(r.errorMessage(), "changing rooms and accounts too fast: at most 0.01 changes a minute (bursts of 2)") {
			t.Fatalf("refusal %q", r.errorMessage())
		}
	}
	members := ts.do("GET", "/api/rooms/ops/members", alice, nil).Body["members"].([]any)
	bans := ts.do("GET", "/api/rooms/ops/bans", alice, nil).Body["bans"].([]any)
	title := ts.do("GET", "/api/rooms/ops", alice, nil).Body["room"].(map[string]any)["title"]
	if len(members) != 3 || len(bans) != 0 || title == "Ops" {
		t.Fatalf("after the refusals: members %v, bans %v, title %v; want all three members, no ban, the old title", members, bans, title)
	}
	// Bob's allowance is his own: he leaves.
	if r := ts.do("DELETE", "/api/rooms/ops/members/bob", bob, nil); r.Status != http.StatusNoContent {
		t.Fatalf("bob leaves: %d %s", r.Status, r.Raw)
	}
}

// TestResetPassword: an admin gives an account a new password (its owner lost it): the old one
// no longer signs in, the new one does, and the account's sessions and connections end at once.
// Only admins reset, never another admin's, a password registration would refuse is 400 and
// changes nothing, and a missing account is 404.
func TestResetPassword(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.Admins = []string{"root", "ops"} })
	root, alice := ts.account("root"), ts.account("alice")
	ts.account("ops")
	aliceWS := ts.dialWS(alice)
	aliceWS.subscribe("lobby")
	reset := func(tok, name, password string) apiResponse {
		return ts.do("PUT", "/api/users/"+name+"/password", tok, map[string]string{"new_password": password})
	}
	checkError(t, reset(alice, "alice", "new secret"), http.StatusForbidden, "forbidden")
	checkError(t, reset(root, "ops", "new secret"), http.StatusForbidden, "forbidden")
	checkError(t, reset(root, "nobody", "new secret"), http.StatusNotFound, "not_found")
	checkError(t, reset(root, "alice", "x"), http.StatusBadRequest, "invalid")
	if r := ts.do("GET", "/api/session", alice, nil); r.Status != http.StatusOK {
		t.Fatalf("alice's session after the refusals: %d, want it alive", r.Status)
	}
	if r := reset(root, "alice", "new secret"); r.Status != http.StatusNoContent {
		t.Fatalf("root resets alice's password: %d %s", r.Status, r.Raw)
	}
	wantSignedOut(t, aliceWS)
	checkError(t, ts.do("GET", "/api/session", alice, nil), http.StatusUnauthorized, "unauthorized")
	checkError(t, ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": "alice's password"}), http.StatusUnauthorized, "unauthorized")
	ts.signInPassword("alice", "new secret")
}

// TestBanTerms: a ban may say how long it lasts and why. Bad terms are refused with 400 and
// ban nobody; good ones are kept, listed, told to the room's subscribers and to the banned user
// (on the room and in every refusal). Banning again replaces the terms.
func TestBanTerms(t *testing.T) {
	ts := startServer(t)
	alice, bob, dave := ts.account("alice"), ts.account("bob"), ts.account("dave")
	if r := ts.do("POST", "/api/rooms", alice, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	daveWS := ts.dialWS(dave)
	daveWS.subscribe("ops")
	for _, body := range []any{
		map[string]string{"for": "30s"},
		map[string]string{"for": "367d"},
		map[string]string{"for": "soon"},
		map[string]string{"for": "-1h"},
		map[string]string{"reason": strings.Repeat("x", 201)},
		map[string]string{"reason": "two\nlines"},
		[]byte(`"spam"`),
	} {
		checkError(t, ts.do("PUT", "/api/rooms/ops/bans/bob", alice, body), http.StatusBadRequest, "invalid")
	}
	if r := ts.do("GET", "/api/rooms/ops/bans", alice, nil); r.Status != http.StatusOK || len(r.Body["bans"].([]any)) != 0 {
		t.Fatalf("bans after refused terms: %d %s, want none", r.Status, r.Raw)
	}

	before := time.Now()
	if r := ts.do("PUT", "/api/rooms/ops/bans/bob", alice, map[string]string{"for": "2h", "reason": "links to spam"}); r.Status != http.StatusNoContent {
		t.Fatalf("ban bob for 2h: %d %s", r.Status, r.Raw)
	}
	near2h := func(what, s string) {
		t.Helper()
		until, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || until.Before(before.Add(2*time.Hour)) || until.After(time.Now().Add(2*time.Hour)) {
			t.Fatalf("%s: until %q, want two hours from the ban", what, s)
		}
	}
	var frame struct{ Until, Reason string }
	f := daveWS.nextExcept("join", "leave", "presence")
	if f.Type != "ban" || json.Unmarshal(f.raw, &frame) != nil || frame.Reason != "links to spam" {
		t.Fatalf("the ban frame: %s", f)
	}
	near2h("the ban frame", frame.Until)
	r := ts.do("GET", "/api/rooms/ops/bans", alice, nil)
	b := r.Body["bans"].([]any)[0].(map[string]any)
	if b["user"] != "bob" || b["reason"] != "links to spam" {
		t.Fatalf("the bans: %s", r.Raw)
	}
	near2h("the list", b["until"].(string))
	room := ts.do("GET", "/api/rooms/ops", bob, nil).Body["room"].(map[string]any)
	if room["banned"] != true || room["ban_reason"] != "links to spam" {
		t.Fatalf("ops as bob reads it: %v", room)
	}
	near2h("the room", room["ban_until"].(string))
	r = ts.post(bob, "ops", "hello?", "")
	checkError(t, r, http.StatusForbidden, "forbidden")
	if msg := r.errorMessage(); !strings.Contains(msg, `(links to spam) until `) {
		t.Fatalf("bob's send refused with %q, want the reason and the end", msg)
	}

	// Again, for good and without a reason: the terms are replaced, and told.
	if r := ts.do("PUT", "/api/rooms/ops/bans/bob", alice, nil); r.Status != http.StatusNoContent {
		t.Fatalf("ban bob for good: %d %s", r.Status, r.Raw)
	}
	if f := daveWS.nextExcept("join", "leave", "presence"); f.Type != "ban" || string(f.raw) != `{"type":"ban","room":"ops","user":"bob","banned":true}` {
		t.Fatalf("the second ban frame: %s", f)
	}
	room = ts.do("GET", "/api/rooms/ops", bob, nil).Body["room"].(map[string]any)
	if room["banned"] != true || room["ban_until"] != nil || room["ban_reason"] != nil {
		t.Fatalf("ops as bob reads it after the ban for good: %v", room)
	}
}
