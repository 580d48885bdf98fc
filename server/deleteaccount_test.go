package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"natter/app"
)

// TestDeleteAccount: an account deletes itself with its password: every session ends with its
// connections, it leaves its private rooms, its name can't be signed in with (a password or as a
// guest) or registered again, and nobody can reach it; asked to, the words of everything it
// wrote are erased first, in their places. Guests have no account to delete, a wrong password
// deletes nothing, and without the erasing its messages stay.
func TestDeleteAccount(t *testing.T) {
	ts, logs := startServerLogged(t, func(c *app.Config) {
		c.Server.Admins = []string{"root"}
	})
	ann, bob, root, gus := ts.account("ann"), ts.account("bob"), ts.account("root"), ts.signIn("gus")
	annAgain := ts.signInPassword("ann", "ann's password")
	if r := ts.do("POST", "/api/rooms", bob, map[string]any{"name": "secret", "private": true}); r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	if r := ts.do("PUT", "/api/rooms/secret/members/ann", bob, nil); r.Status != http.StatusNoContent {
		t.Fatalf("add ann: %d %s", r.Status, r.Raw)
	}
	mine := ts.mustPost(ann, "lobby", "my address is 12 Elm Street")
	ts.mustPost(ann, "secret", "between us")
	ts.mustPost(bob, "lobby", "bob was here")
	ws := ts.dialWS(annAgain)
	ws.subscribe("lobby")

	checkError(t, ts.do("DELETE", "/api/account", gus, map[string]any{"password": ""}), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("DELETE", "/api/account", ann, map[string]any{"password": "wrong"}), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("DELETE", "/api/account", ann, map[string]any{}), http.StatusForbidden, "forbidden")
	if r := ts.do("GET", "/api/session", ann, nil); r.Status != http.StatusOK {
		t.Fatalf("ann after refused deletions: %d %s", r.Status, r.Raw)
	}

	if r := ts.do("DELETE", "/api/account", ann, map[string]any{"password": "ann's password", "erase_messages": true}); r.Status != http.StatusNoContent {
		t.Fatalf("ann deletes her account: %d %s", r.Status, r.Raw)
	}
	wantSignedOut(t, ws)
	for _, tok := range []string{ann, annAgain} {
		checkError(t, ts.do("GET", "/api/session", tok, nil), http.StatusUnauthorized, "unauthorized")
	}
	for _, pw := range []string{"ann's password", ""} {
		r := ts.do("POST", "/api/session", "", map[string]string{"name": "ann", "password": pw})
		checkError(t, r, http.StatusForbidden, "forbidden")
		if !strings.Contains(r.errorMessage(), "was deleted") {
			t.Fatalf("signing in as ann (password %q): %q", pw, r.errorMessage())
		}
	}
	checkError(t, ts.register("ann", "a new password"), http.StatusConflict, "conflict")
	checkError(t, ts.do("POST", "/api/dms", bob, map[string]string{"user": "ann"}), http.StatusNotFound, "not_found")
	checkError(t, ts.do("PUT", "/api/rooms/secret/members/ann", bob, nil), http.StatusNotFound, "not_found")
	checkError(t, ts.do("PUT", "/api/users/ann/password", root, map[string]string{"new_password": "taken over"}), http.StatusNotFound, "not_found")
	var members struct{ Members []string }
	if err := json.Unmarshal(ts.do("GET", "/api/rooms/secret/members", bob, nil).Raw, &members); err != nil {
		t.Fatal(err)
	}
	if len(members.Members) != 1 || members.Members[0] != "bob" {
		t.Fatalf("secret's members after ann's deletion: %v", members.Members)
	}
	page := ts.read(bob, "/api/rooms/lobby/messages?after=0")
	for _, m := range page.Messages {
		switch {
		case m.Seq == mine.Seq && (!m.Deleted || m.Body != "" || m.Author != "ann"):
			t.Fatalf("ann's message after the erasing: %+v", m)
		case m.Author == "bob" && m.Body != "bob was here":
			t.Fatalf("bob's message: %+v", m)
		}
	}
	if p := ts.read(bob, "/api/rooms/secret/messages?after=0"); len(p.Messages) != 1 || !p.Messages[0].Deleted {
		t.Fatalf("ann's message in the private room: %+v", p.Messages)
	}

	// Without the erasing, the messages stay.
	if r := ts.do("DELETE", "/api/account", bob, map[string]any{"password": "bob's password"}); r.Status != http.StatusNoContent {
		t.Fatalf("bob deletes his account: %d %s", r.Status, r.Raw)
	}
	if p := ts.read(root, "/api/rooms/lobby/messages?after=0"); p.Messages[len(p.Messages)-1].Body != "bob was here" {
		t.Fatalf("bob's message after his deletion without erasing: %+v", p.Messages)
	}
	for _, line := range []string{`msg="account deleted" user=ann erased_messages=true erased=2 rooms_left=1`, `msg="account deleted" user=bob erased_messages=false`} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("the log lacks %s", line)
		}
	}
}
