package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// roomReadSeq returns the read_seq of room in GET /api/rooms and GET /api/rooms/{room} as tok
// sees them (they must agree), and whether there is one.
func roomReadSeq(t *testing.T, ts *testServer, tok, room string) (int64, bool) {
	t.Helper()
	alone := func() (float64, bool) {
		one := ts.do("GET", "/api/rooms/"+room, tok, nil)
		if one.Status != http.StatusOK {
			t.Fatalf("GET room %s: %d %s", room, one.Status, one.Raw)
		}
		seq, ok := one.Body["room"].(map[string]any)["read_seq"].(float64)
		return seq, ok
	}
	// A mark only moves forward, and some move a moment after what moved them (one's own
	// sends): the room read alone before and after the list, the same both times, pins what the
	// list must say.
	for {
		seq, ok := alone()
		list := ts.do("GET", "/api/rooms", tok, nil)
		again, againOK := alone()
		if again != seq || againOK != ok {
			continue // moved meanwhile: read again
		}
		for _, x := range list.Body["rooms"].([]any) {
			x := x.(map[string]any)
			if x["name"] != room {
				continue
			}
			if lseq, lok := x["read_seq"].(float64); lok != ok || lseq != seq {
				t.Fatalf("room %s: read_seq %v (%v) in the list, %v (%v) alone", room, lseq, lok, seq, ok)
			}
			return int64(seq), ok
		}
		t.Fatalf("room %s is not in the list: %s", room, list.Raw)
	}
}

// TestReadMarks: an account's read mark moves forward only, shows as read_seq in the room list
// and the room (to that account only), and counts as "N new" on the rooms page; a mark outside
// the log, of another epoch, of an unknown room, without its fields, from a guest, or from another
// site with the cookie, is refused and changes nothing.
func TestReadMarks(t *testing.T) {
	ts := startServer(t)
	if r := ts.register("alice", "password"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	login := ts.do("POST", "/api/session", "", map[string]string{"name": "alice", "password": "password"})
	alice, cookie := login.Body["token"].(string), cookieHeader(sessionCookie(t, login))
	if r := ts.register("bob", "password"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	bob := ts.signInPassword("bob", "password")
	carol := ts.account("carol")
	guest := ts.signIn("gus")
	ts.fill(bob, "lobby", 5)
	epoch := ts.do("GET", "/api/rooms/lobby", alice, nil).Body["room"].(map[string]any)["epoch"].(string)
	mark := func(tok string, body any, hdr ...string) apiResponse {
		return ts.do("PUT", "/api/rooms/lobby/read", tok, body, hdr...)
	}

	if _, ok := roomReadSeq(t, ts, alice, "lobby"); ok {
		t.Fatal("a read_seq before any mark")
	}
	if r := mark(alice, map[string]any{"seq": 3, "epoch": epoch}); r.Status != http.StatusNoContent {
		t.Fatalf("mark: %d %s", r.Status, r.Raw)
	}
	if r := mark(alice, map[string]any{"seq": 2, "epoch": epoch}); r.Status != http.StatusNoContent {
		t.Fatalf("a mark behind: %d %s", r.Status, r.Raw)
	}
	if seq, ok := roomReadSeq(t, ts, alice, "lobby"); !ok || seq != 3 {
		t.Fatalf("alice's read_seq %d (%v), want 3", seq, ok)
	}
	if _, ok := roomReadSeq(t, ts, carol, "lobby"); ok {
		t.Fatal("carol sees a read_seq: alice's mark is hers")
	}

	checkError(t, mark(alice, map[string]any{"seq": 6, "epoch": epoch}), http.StatusBadRequest, "invalid")
	checkError(t, mark(alice, map[string]any{"seq": -1, "epoch": epoch}), http.StatusBadRequest, "invalid")
	checkError(t, mark(alice, map[string]any{"epoch": epoch}), http.StatusBadRequest, "invalid")
	checkError(t, mark(alice, map[string]any{"seq": 4}), http.StatusBadRequest, "invalid")
	checkError(t, mark(alice, map[string]any{"seq": 4, "epoch": "another"}), http.StatusConflict, "conflict")
	checkError(t, ts.do("PUT", "/api/rooms/nowhere/read", alice, map[string]any{"seq": 1, "epoch": epoch}), http.StatusNotFound, "not_found")
	checkError(t, mark(guest, map[string]any{"seq": 4, "epoch": epoch}), http.StatusForbidden, "forbidden")
	checkError(t, mark("", map[string]any{"seq": 5, "epoch": epoch}, "Cookie", cookie, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), http.StatusForbidden, "forbidden")
	if seq, _ := roomReadSeq(t, ts, alice, "lobby"); seq != 3 {
		t.Fatalf("alice's read_seq %d after refused marks, want 3", seq)
	}
	if _, ok := roomReadSeq(t, ts, guest, "lobby"); ok {
		t.Fatal("a guest has a read_seq")
	}

	// An edit after the mark is not a new message: alice has 2 unread (4 and 5), not 3.
	if r := ts.do("POST", "/api/rooms/lobby/messages", bob, map[string]any{"kind": "edit", "target": 5, "body": "fill 4, fixed"}); r.Status != http.StatusCreated {
		t.Fatalf("bob's edit: %d %s", r.Status, r.Raw)
	}
	if r := ts.do("GET", "/api/rooms/lobby", alice, nil); r.Body["room"].(map[string]any)["unread"] != float64(2) {
		t.Fatalf("alice's unread after an edit: %s, want 2", r.Raw)
	}

	// The rooms page counts what alice has not read; the room page carries her mark.
	page := func(path string) string {
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		req.Header.Set("Cookie", cookie)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if html := page("/"); !strings.Contains(html, `data-unread="2">2 new<`) {
		t.Fatalf("the rooms page does not count alice's 2 unread messages:\n%s", html)
	}
	if html := page("/rooms/lobby"); !strings.Contains(html, `data-read-seq="3"`) || !strings.Contains(html, `data-epoch="`+epoch+`"`) {
		t.Fatalf("the room page lacks alice's mark:\n%s", html)
	}
	if r := mark("", map[string]any{"seq": 6, "epoch": epoch}, "Cookie", cookie, "Origin", ts.URL, "Sec-Fetch-Site", "same-origin"); r.Status != http.StatusNoContent {
		t.Fatalf("a mark from the site itself with the cookie: %d %s", r.Status, r.Raw)
	}
	if html := page("/"); strings.Contains(html, "data-unread") {
		t.Fatalf("the rooms page counts unread messages after alice read them all:\n%s", html)
	}
}

// TestReadMarkOverWebSocket: a read frame moves the account's mark as PUT .../read does, with no
// answer; a refused one is answered by an error frame with ref "read", and the connection goes on.
func TestReadMarkOverWebSocket(t *testing.T) {
	ts := startServer(t)
	alice, guest := ts.account("alice"), ts.signIn("gus")
	ts.fill(guest, "lobby", 4)
	epoch := ts.do("GET", "/api/rooms/lobby", alice, nil).Body["room"].(map[string]any)["epoch"].(string)
	c := ts.dialWS(alice)
	c.send(map[string]any{"type": "read", "room": "lobby", "epoch": epoch, "seq": 3})
	c.send(map[string]any{"type": "ping"})
	if f := c.next(); f.Type != "pong" {
		t.Fatalf("after a read frame: %s, want no answer (then the pong)", f)
	}
	if seq, ok := roomReadSeq(t, ts, alice, "lobby"); !ok || seq != 3 {
		t.Fatalf("read_seq %d (%v) after the frame, want 3", seq, ok)
	}
	for _, c2 := range []struct {
		frame map[string]any
		code  string
	}{
		{map[string]any{"type": "read", "room": "lobby", "epoch": epoch, "seq": 9}, "invalid"},
		{map[string]any{"type": "read", "room": "lobby", "epoch": epoch}, "invalid"},
		{map[string]any{"type": "read", "room": "lobby", "epoch": "other", "seq": 4}, "conflict"},
		{map[string]any{"type": "read", "room": "nowhere", "epoch": epoch, "seq": 1}, "not_found"},
	} {
		c.send(c2.frame)
		if f := c.next(); f.Type != "error" || f.Code != c2.code || f.Ref == nil || *f.Ref != "read" {
			t.Fatalf("%v: %s, want an error %s with ref read", c2.frame, f, c2.code)
		}
	}
	g := ts.dialWS(guest)
	g.send(map[string]any{"type": "read", "room": "lobby", "epoch": epoch, "seq": 1})
	if f := g.next(); f.Type != "error" || f.Code != "forbidden" || f.Ref == nil || *f.Ref != "read" {
		t.Fatalf("a guest's read frame: %s", f)
	}
	if seq, _ := roomReadSeq(t, ts, alice, "lobby"); seq != 3 {
		t.Fatalf("read_seq %d after refused frames, want 3", seq)
	}
}

// TestMentionsCounted: among an account's unread messages of a room, those in which someone else
// names it with "@name" are counted beside the unread count, in the list and the room alike; a
// deleted one, a name inside another word and changes do not count, and reading past them
// clears the count.
func TestMentionsCounted(t *testing.T) {
	ts := startServer(t)
	alice, bob := ts.account("alice"), ts.account("bob")
	mine := ts.mustPost(alice, "lobby", "I am here")
	waitFor(t, "alice's mark at her message", func() bool {
		seq, ok := roomReadSeq(t, ts, alice, "lobby")
		return ok && seq == mine.Seq
	})
	for _, body := range []string{"hi @alice", "@alicex is someone else", "mail x@alice.example", "@Alice, again"} {
		ts.mustPost(bob, "lobby", body)
	}
	secret := ts.mustPost(bob, "lobby", "@alice the secret")
	if r := ts.do("POST", "/api/rooms/lobby/messages", bob, map[string]any{"kind": "delete", "target": secret.Seq}); r.Status != http.StatusCreated {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	if r := ts.do("POST", "/api/rooms/lobby/messages", bob, map[string]any{"kind": "react", "target": mine.Seq, "body": "@alice"}); r.Status != http.StatusCreated {
		t.Fatalf("react: %d %s", r.Status, r.Raw) // a change: it names nobody
	}
	mentions := func(body map[string]any) any { return body["mentions"] }
	one := ts.do("GET", "/api/rooms/lobby", alice, nil).Body["room"].(map[string]any)
	if mentions(one) != float64(2) || one["unread"] != float64(5) {
		t.Fatalf("the lobby alone: mentions %v, unread %v; want 2 of 5", mentions(one), one["unread"])
	}
	var listed map[string]any
	for _, x := range ts.do("GET", "/api/rooms", alice, nil).Body["rooms"].([]any) {
		if x.(map[string]any)["name"] == "lobby" {
			listed = x.(map[string]any)
		}
	}
	if mentions(listed) != float64(2) {
		t.Fatalf("the lobby in the list: mentions %v, want 2", mentions(listed))
	}
	if m := ts.do("GET", "/api/rooms/lobby", bob, nil).Body["room"].(map[string]any); mentions(m) != nil {
		t.Fatalf("bob, named by nobody: mentions %v", mentions(m))
	}
	// Counted on as messages come (the node reads only the new ones).
	ts.mustPost(bob, "lobby", "and a third time, @alice")
	ts.mustPost(bob, "lobby", "nothing for her")
	if m := ts.do("GET", "/api/rooms/lobby", alice, nil).Body["room"].(map[string]any); mentions(m) != float64(3) || m["unread"] != float64(7) {
		t.Fatalf("after two more: mentions %v, unread %v; want 3 of 7", mentions(m), m["unread"])
	}
	last := ts.lastSeq(alice, "lobby")
	if r := ts.do("PUT", "/api/rooms/lobby/read", alice, map[string]any{"seq": last, "epoch": one["epoch"]}); r.Status != http.StatusNoContent {
		t.Fatalf("mark read: %d %s", r.Status, r.Raw)
	}
	waitFor(t, "no mentions once read", func() bool {
		return mentions(ts.do("GET", "/api/rooms/lobby", alice, nil).Body["room"].(map[string]any)) == nil
	})
	ts.mustPost(bob, "lobby", "@alice, one more")
	if m := ts.do("GET", "/api/rooms/lobby", alice, nil).Body["room"].(map[string]any); mentions(m) != float64(1) {
		t.Fatalf("a mention after the new mark: %v, want 1", mentions(m))
	}
}
