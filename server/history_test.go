package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"natter"
)

// TestEditHistory: a message's history is the message as sent and its edits, oldest first, for
// whoever reads the room; none once it is deleted. A change's seq, a seq that is no message and
// one that is no number are refused. Pins carry the pinned message's latest edit.
func TestEditHistory(t *testing.T) {
	ts := startServer(t)
	alice, bob := ts.account("alice"), ts.account("bob")
	if r := ts.do("POST", "/api/rooms", alice, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	first := ts.mustPost(alice, "ops", "deploy on tuesday")
	change := func(body map[string]any) natter.Message {
		t.Helper()
		r := ts.do("POST", "/api/rooms/ops/messages", alice, body)
		if r.Status != http.StatusCreated {
			t.Fatalf("change %v: %d %s", body, r.Status, r.Raw)
		}
		return messageOf(t, r)
	}
	change(map[string]any{"kind": "edit", "target": first.Seq, "body": "deploy on Tuesday"})
	react := ts.do("POST", "/api/rooms/ops/messages", bob, map[string]any{"kind": "react", "target": first.Seq, "body": "👍"})
	change(map[string]any{"kind": "edit", "target": first.Seq, "body": "deploy on Wednesday"})
	history := func(path string) (natter.Message, []natter.Message) {
		t.Helper()
		r := ts.do("GET", path, bob, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Raw)
		}
		var body struct {
			Room    string
			Message natter.Message
			Edits   []natter.Message
		}
		if err := json.Unmarshal(r.Raw, &body); err != nil || body.Room != "ops" || body.Edits == nil {
			t.Fatalf("GET %s: %s (%v)", path, r.Raw, err)
		}
		return body.Message, body.Edits
	}
	m, edits := history("/api/rooms/ops/messages/1/edits")
	if m.Body != "deploy on tuesday" || len(edits) != 2 || edits[0].Body != "deploy on Tuesday" || edits[1].Body != "deploy on Wednesday" {
		t.Fatalf("the history: %+v, edits %+v", m, edits)
	}

	pins := func() []map[string]any {
		t.Helper()
		var body struct{ Pins []map[string]any }
		if err := json.Unmarshal(ts.do("GET", "/api/rooms/ops/pins", bob, nil).Raw, &body); err != nil {
			t.Fatal(err)
		}
		return body.Pins
	}
	change(map[string]any{"kind": "pin", "target": first.Seq})
	if p := pins(); len(p) != 1 || p[0]["latest_edit"] == nil || p[0]["latest_edit"].(map[string]any)["body"] != "deploy on Wednesday" {
		t.Fatalf("the pin of an edited message: %+v", p)
	}
	plain := ts.mustPost(alice, "ops", "never edited")
	change(map[string]any{"kind": "pin", "target": plain.Seq})
	if p := pins(); len(p) != 2 || p[0]["latest_edit"] != nil {
		t.Fatalf("the pin of a message never edited: %+v", p[0])
	}
	if _, edits := history(fmt.Sprintf("/api/rooms/ops/messages/%d/edits", plain.Seq)); len(edits) != 0 {
		t.Fatalf("a message never edited has edits: %+v", edits)
	}

	checkError(t, ts.do("GET", fmt.Sprintf("/api/rooms/ops/messages/%d/edits", messageOf(t, react).Seq), bob, nil), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("GET", "/api/rooms/ops/messages/999/edits", bob, nil), http.StatusNotFound, "not_found")
	checkError(t, ts.do("GET", "/api/rooms/ops/messages/first/edits", bob, nil), http.StatusBadRequest, "invalid")
	checkError(t, ts.do("GET", "/api/rooms/nowhere/messages/1/edits", bob, nil), http.StatusNotFound, "not_found")

	change(map[string]any{"kind": "delete", "target": first.Seq})
	if m, edits := history("/api/rooms/ops/messages/1/edits"); !m.Deleted || m.Body != "" || len(edits) != 0 {
		t.Fatalf("a deleted message's history: %+v, edits %+v", m, edits)
	}
}
