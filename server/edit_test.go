package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"natter"
)

// TestEditAndDelete: an author changes their own message by sending an edit or a deletion, over
// HTTP or WebSocket; it is a new entry of the log, delivered like a message. Changing another's
// message, a message that is not there, or a change itself is refused and stores nothing, and so
// is any change by a guest.
func TestEditAndDelete(t *testing.T) {
	ts := startServer(t)
	alice, bob, guest := ts.account("alice"), ts.account("bob"), ts.signIn("gus")
	watch := ts.dialWS(bob)
	watch.subscribe("lobby", 0)
	first := ts.mustPost(alice, "lobby", "helo")
	second := ts.mustPost(bob, "lobby", "bob's")
	change := func(tok string, body map[string]any) apiResponse {
		return ts.do("POST", "/api/rooms/lobby/messages", tok, body)
	}

	r := change(alice, map[string]any{"kind": "edit", "target": first.Seq, "body": "hello"})
	if r.Status != http.StatusCreated {
		t.Fatalf("edit: %d %s", r.Status, r.Raw)
	}
	var edit struct{ Message natter.Message }
	json.Unmarshal(r.Raw, &edit)
	if edit.Message.Kind != natter.KindEdit || edit.Message.Target != first.Seq || edit.Message.Body != "hello" || edit.Message.Seq != 3 {
		t.Fatalf("edit stored as %+v", edit.Message)
	}

	for _, c := range []struct {
		tok    string
		body   map[string]any
		status int
		code   string
	}{
		{bob, map[string]any{"kind": "edit", "target": first.Seq, "body": "not mine"}, http.StatusForbidden, "forbidden"},
		{bob, map[string]any{"kind": "delete", "target": first.Seq}, http.StatusForbidden, "forbidden"},
		{alice, map[string]any{"kind": "edit", "target": 99, "body": "x"}, http.StatusNotFound, "not_found"},
		{alice, map[string]any{"kind": "edit", "target": 3, "body": "an edit of an edit"}, http.StatusBadRequest, "invalid"},
		{alice, map[string]any{"kind": "delete", "target": first.Seq, "body": "why"}, http.StatusBadRequest, "invalid"},
		{alice, map[string]any{"kind": "edit", "target": first.Seq}, http.StatusBadRequest, "invalid"},
		{alice, map[string]any{"kind": "edit", "body": "no target"}, http.StatusBadRequest, "invalid"},
		{alice, map[string]any{"kind": "pin", "target": first.Seq, "body": "x"}, http.StatusBadRequest, "invalid"},
		{alice, map[string]any{"target": first.Seq, "body": "a target without a kind"}, http.StatusBadRequest, "invalid"},
		// A guest name is anyone's who picks it: guests change nothing, their own included.
		{guest, map[string]any{"kind": "delete", "target": 3}, http.StatusForbidden, "forbidden"},
	} {
		checkError(t, change(c.tok, c.body), c.status, c.code)
	}
	ts.mustPost(guest, "lobby", "gus was here")
	checkError(t, change(guest, map[string]any{"kind": "edit", "target": 4, "body": "gus's own"}), http.StatusForbidden, "forbidden")
	if n := ts.lastSeq(alice, "lobby"); n != 4 {
		t.Fatalf("last_seq %d after refused changes, want 4", n)
	}

	// Over the WebSocket, acknowledged like a send; every subscriber gets the entries in order.
	watch.send(map[string]any{"type": "send", "room": "lobby", "kind": "delete", "target": second.Seq, "client_id": "c-del"})
	var got []natter.Message
	acked := false
	for len(got) < 5 || !acked {
		f := watch.nextExcept("presence", "join", "leave")
		switch f.Type {
		case "ack":
			if f.Seq == nil || *f.Seq != 5 || f.ClientID == nil || *f.ClientID != "c-del" {
				t.Fatalf("ack %s, want seq 5 for c-del", f)
			}
			acked = true
		case "message":
			var m natter.Message
			json.Unmarshal(f.Message, &m)
			got = append(got, m)
		default:
			t.Fatalf("unexpected frame %s", f)
		}
	}
	want := []struct {
		kind   string
		target int64
		body   string
	}{{"", 0, "helo"}, {"", 0, "bob's"}, {"edit", first.Seq, "hello"}, {"", 0, "gus was here"}, {"delete", second.Seq, ""}}
	for i, m := range got {
		if m.Seq != int64(i+1) || m.Kind != want[i].kind || m.Target != want[i].target || m.Body != want[i].body {
			t.Fatalf("entry %d delivered as %+v, want %+v", i+1, m, want[i])
		}
	}
	watch.send(map[string]any{"type": "send", "room": "lobby", "kind": "edit", "target": first.Seq, "body": "bob again", "client_id": "c-no"})
	if f := watch.nextExcept("presence", "join", "leave"); f.Type != "error" || f.Code != "forbidden" || f.Ref == nil || *f.Ref != "c-no" {
		t.Fatalf("bob's edit of alice's message over the WebSocket: %s, want a forbidden error for c-no", f)
	}
	page := ts.read(alice, "/api/rooms/lobby/messages?after=0")
	if len(page.Messages) != 5 || page.Messages[4].Kind != natter.KindDelete || page.Messages[2].Target != first.Seq {
		t.Fatalf("the log read back: %+v", page.Messages)
	}
	// The room counts its messages, not the changes: 3 of the 5 entries.
	room := ts.do("GET", "/api/rooms/lobby", alice, nil).Body["room"].(map[string]any)
	if room["messages"] != float64(3) || room["last_seq"] != float64(5) {
		t.Fatalf("the lobby: %v messages, last_seq %v; want 3 and 5", room["messages"], room["last_seq"])
	}
}

// TestEditGuestMessagesOfALaterAccount: an account registered with a name that guests used before
// can't change what those guests wrote, only its own.
func TestEditGuestMessagesOfALaterAccount(t *testing.T) {
	ts := startServer(t)
	guest := ts.signIn("dora")
	before := ts.mustPost(guest, "lobby", "a guest called dora")
	dora := ts.account("dora")
	own := ts.mustPost(dora, "lobby", "the account dora")
	checkError(t, ts.do("POST", "/api/rooms/lobby/messages", dora, map[string]any{"kind": "delete", "target": before.Seq}), http.StatusForbidden, "forbidden")
	if r := ts.do("POST", "/api/rooms/lobby/messages", dora, map[string]any{"kind": "delete", "target": own.Seq}); r.Status != http.StatusCreated {
		t.Fatalf("the account deleting its own message: %d %s", r.Status, r.Raw)
	}
}

// TestRoomCreatorDeletes: the account that created a room may delete anyone's message in it (not
// edit it); others may not, in that room or elsewhere; a room a guest created has no such owner,
// even once an account of the same name exists.
func TestRoomCreatorDeletes(t *testing.T) {
	ts := startServer(t)
	alice, bob, gus := ts.account("alice"), ts.account("bob"), ts.signIn("gus")
	if r := ts.do("POST", "/api/rooms", alice, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	change := func(tok, room string, body map[string]any) apiResponse {
		return ts.do("POST", "/api/rooms/"+room+"/messages", tok, body)
	}
	spam := ts.mustPost(bob, "ops", "buy now")
	guests := ts.mustPost(gus, "ops", "a guest's spam")
	mine := ts.mustPost(alice, "ops", "alice's")
	checkError(t, change(alice, "ops", map[string]any{"kind": "edit", "target": spam.Seq, "body": "tamed"}), http.StatusForbidden, "forbidden")
	checkError(t, change(bob, "ops", map[string]any{"kind": "delete", "target": mine.Seq}), http.StatusForbidden, "forbidden")
	for _, target := range []int64{spam.Seq, guests.Seq} {
		if r := change(alice, "ops", map[string]any{"kind": "delete", "target": target}); r.Status != http.StatusCreated {
			t.Fatalf("the creator deleting message %d: %d %s", target, r.Status, r.Raw)
		}
	}
	// The lobby has no creator.
	lobby := ts.mustPost(bob, "lobby", "in the lobby")
	checkError(t, change(alice, "lobby", map[string]any{"kind": "delete", "target": lobby.Seq}), http.StatusForbidden, "forbidden")

	// A room created by a guest: the account of that name that came later owns nothing.
	if r := ts.do("POST", "/api/rooms", ts.signIn("dan"), map[string]string{"name": "dans"}); r.Status != http.StatusCreated {
		t.Fatalf("create dans: %d %s", r.Status, r.Raw)
	}
	other := ts.mustPost(bob, "dans", "bob in dan's room")
	dan := ts.account("dan")
	checkError(t, change(dan, "dans", map[string]any{"kind": "delete", "target": other.Seq}), http.StatusForbidden, "forbidden")
}
