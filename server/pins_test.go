package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"natter"
	"natter/app"
)

// TestPins: a room's moderator pins and unpins messages; the entries reach subscribers like any
// change, and GET .../pins lists the pinned messages, the latest first, with each message. Others
// (guests included) may not pin; a change, a missing or deleted message, a pin with a body, an
// unpin of what is not pinned and a pin past the limit are refused, storing nothing. Deleting a
// pinned message unpins it. In a direct conversation both accounts pin.
func TestPins(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.Metrics = true })
	alice, bob, gus := ts.account("alice"), ts.account("bob"), ts.signIn("gus")
	if r := ts.do("POST", "/api/rooms", alice, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	first := ts.mustPost(bob, "ops", "the runbook is at /wiki/ops")
	second := ts.mustPost(alice, "ops", "deploys on Tuesdays")
	watch := ts.dialWS(bob)
	watch.subscribe("ops")
	change := func(tok string, body map[string]any) apiResponse {
		return ts.do("POST", "/api/rooms/ops/messages", tok, body)
	}
	pins := func(tok string) []struct {
		natter.Pin
		Message natter.Message
	} {
		t.Helper()
		r := ts.do("GET", "/api/rooms/ops/pins", tok, nil)
		var body struct {
			Room string
			Pins []struct {
				natter.Pin
				Message natter.Message
			}
		}
		if r.Status != http.StatusOK || json.Unmarshal(r.Raw, &body) != nil || body.Room != "ops" || body.Pins == nil {
			t.Fatalf("GET pins: %d %s", r.Status, r.Raw)
		}
		return body.Pins
	}
	if p := pins(bob); len(p) != 0 {
		t.Fatalf("pins of a new room: %+v", p)
	}

	for _, c := range []struct {
		tok    string
		body   map[string]any
		status int
		code   string
	}{
		{bob, map[string]any{"kind": "pin", "target": first.Seq}, http.StatusForbidden, "forbidden"},
		{gus, map[string]any{"kind": "pin", "target": first.Seq}, http.StatusForbidden, "forbidden"},
		{alice, map[string]any{"kind": "pin", "target": 99}, http.StatusNotFound, "not_found"},
		{alice, map[string]any{"kind": "pin", "target": first.Seq, "body": "why"}, http.StatusBadRequest, "invalid"},
		{alice, map[string]any{"kind": "unpin", "target": first.Seq}, http.StatusConflict, "conflict"},
	} {
		checkError(t, change(c.tok, c.body), c.status, c.code)
	}
	if r := change(alice, map[string]any{"kind": "pin", "target": first.Seq}); r.Status != http.StatusCreated {
		t.Fatalf("alice pins bob's message: %d %s", r.Status, r.Raw)
	}
	if f := watch.nextExcept("presence", "join", "leave"); f.Type != "message" || f.msg(t).Kind != natter.KindPin || f.msg(t).Target != first.Seq {
		t.Fatalf("the pin's entry on bob's socket: %s", f)
	}
	if r := change(alice, map[string]any{"kind": "pin", "target": second.Seq}); r.Status != http.StatusCreated {
		t.Fatalf("alice pins her message: %d %s", r.Status, r.Raw)
	}
	p := pins(gus)
	if len(p) != 2 || p[0].Seq != second.Seq || p[1].Seq != first.Seq || p[1].By != "alice" || p[1].Message.Body != "the runbook is at /wiki/ops" || p[0].At.IsZero() {
		t.Fatalf("pins: %+v", p)
	}
	checkError(t, change(alice, map[string]any{"kind": "pin", "target": 3}), http.StatusBadRequest, "invalid") // a change

	// Unpinned, and a deleted message leaves the list.
	if r := change(alice, map[string]any{"kind": "unpin", "target": second.Seq}); r.Status != http.StatusCreated {
		t.Fatalf("unpin: %d %s", r.Status, r.Raw)
	}
	if r := change(bob, map[string]any{"kind": "delete", "target": first.Seq}); r.Status != http.StatusCreated {
		t.Fatalf("bob deletes his pinned message: %d %s", r.Status, r.Raw)
	}
	if p := pins(alice); len(p) != 0 {
		t.Fatalf("pins after the unpin and the deletion: %+v", p)
	}
	checkError(t, change(alice, map[string]any{"kind": "pin", "target": first.Seq}), http.StatusConflict, "conflict")

	// At most natter.MaxPins at once.
	for i := range natter.MaxPins + 1 {
		m := ts.mustPost(alice, "ops", fmt.Sprint("note ", i))
		r := change(alice, map[string]any{"kind": "pin", "target": m.Seq})
		if i < natter.MaxPins && r.Status != http.StatusCreated {
			t.Fatalf("pin %d: %d %s", i+1, r.Status, r.Raw)
		}
		if i == natter.MaxPins {
			checkError(t, r, http.StatusConflict, "conflict")
			if n := ts.lastSeq(alice, "ops"); n != m.Seq {
				t.Fatalf("the refused pin stored something: last seq %d, want %d", n, m.Seq)
			}
		}
	}
	if p := pins(alice); len(p) != natter.MaxPins {
		t.Fatalf("%d pins, want %d", len(p), natter.MaxPins)
	}
	if v := scrape(t, ts)[`natter_message_changes_total{kind="pin"}`]; v != natter.MaxPins+3 {
		t.Fatalf(`natter_message_changes_total{kind="pin"} = %v, want %d`, v, natter.MaxPins+3)
	}

	// A direct conversation: both accounts pin.
	r := ts.do("POST", "/api/dms", alice, map[string]string{"user": "bob"})
	dm := r.Body["room"].(map[string]any)["name"].(string)
	m := ts.mustPost(alice, dm, "my address: 1 Main St")
	if r := ts.do("POST", "/api/rooms/"+dm+"/messages", bob, map[string]any{"kind": "pin", "target": m.Seq}); r.Status != http.StatusCreated {
		t.Fatalf("bob pins in the conversation: %d %s", r.Status, r.Raw)
	}
	if r := ts.do("GET", "/api/rooms/"+dm+"/pins", gus, nil); r.Status != http.StatusNotFound {
		t.Fatalf("a stranger reads the conversation's pins: %d %s", r.Status, r.Raw)
	}
}
