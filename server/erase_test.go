package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"natter"
)

// TestDeleteErases: once a message is deleted, no read serves its words, nor those of its edits:
// history (after, before, the newest page), a long-poll, an SSE replay and a WebSocket replay
// all carry the entries with an empty body and "deleted": true, in their places; search finds
// nothing. A moderator's deletion erases too. An edit, a reaction or a second deletion of a
// deleted message is refused with 409 and stores nothing.
func TestDeleteErases(t *testing.T) {
	ts := startServer(t)
	checkErases(t, ts, ts)
}

// TestClusterDeleteErases: the same on two nodes sharing Redis, the changes made on one and read
// on the other.
func TestClusterDeleteErases(t *testing.T) {
	nodes := startCluster(t, 2)
	checkErases(t, nodes[0], nodes[1])
}

func checkErases(t *testing.T, w, r *testServer) {
	alice, bob := w.account("alice"), w.account("bob")
	aliceR := r.signInPassword("alice", "alice's password")
	if rr := w.do("POST", "/api/rooms", alice, map[string]string{"name": "ops"}); rr.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", rr.Status, rr.Raw)
	}
	change := func(tok string, body map[string]any) apiResponse {
		return w.do("POST", "/api/rooms/ops/messages", tok, body)
	}
	keep := w.mustPost(alice, "ops", "good morning")
	secret := w.mustPost(alice, "ops", "my password is hunter2")
	if rr := change(alice, map[string]any{"kind": "edit", "target": secret.Seq, "body": "my password is hunter3"}); rr.Status != http.StatusCreated {
		t.Fatalf("edit: %d %s", rr.Status, rr.Raw)
	}
	spam := w.mustPost(bob, "ops", "buy cheap spamspam")
	if rr := change(alice, map[string]any{"kind": "delete", "target": secret.Seq}); rr.Status != http.StatusCreated {
		t.Fatalf("delete: %d %s", rr.Status, rr.Raw)
	}
	// alice made the room: she moderates it, and deletes bob's spam.
	if rr := change(alice, map[string]any{"kind": "delete", "target": spam.Seq}); rr.Status != http.StatusCreated {
		t.Fatalf("the moderator's delete: %d %s", rr.Status, rr.Raw)
	}
	const last = 6
	erased := map[int64]bool{secret.Seq: true, 3: true, spam.Seq: true}
	words := [][]byte{[]byte("hunter"), []byte("spamspam")}
	checkPage := func(how string, raw []byte, msgs []natter.Message, from int64) {
		t.Helper()
		for _, w := range words {
			if bytes.Contains(raw, w) {
				t.Fatalf("%s serves deleted words: %s", how, raw)
			}
		}
		for i, m := range msgs {
			if m.Seq != from+int64(i) {
				t.Fatalf("%s: entry %d has seq %d, want %d", how, i, m.Seq, from+int64(i))
			}
			if erased[m.Seq] != (m.Deleted && m.Body == "") || (m.Seq == keep.Seq && m.Body != "good morning") {
				t.Fatalf("%s: entry %+v", how, m)
			}
		}
	}
	for _, q := range []string{"?after=0", "?before=7&limit=10", "", "?after=1&limit=2", "?before=4&limit=2", "?after=0&wait=5"} {
		rr := r.do("GET", "/api/rooms/ops/messages"+q, aliceR, nil)
		var page struct{ Messages []natter.Message }
		if rr.Status != http.StatusOK || json.Unmarshal(rr.Raw, &page) != nil || len(page.Messages) == 0 {
			t.Fatalf("GET %s: %d %s", q, rr.Status, rr.Raw)
		}
		checkPage("GET messages"+q, rr.Raw, page.Messages, page.Messages[0].Seq)
	}

	sse := r.openSSE("/api/rooms/ops/events?after=0", aliceR)
	var replay []natter.Message
	var raw bytes.Buffer
	for len(replay) < last {
		m := sse.nextMessage()
		b, _ := json.Marshal(m)
		raw.Write(b)
		replay = append(replay, m)
	}
	checkPage("the SSE replay", raw.Bytes(), replay, 1)

	c := r.dialWS(aliceR)
	c.subscribe("ops", 0)
	replay, raw = nil, bytes.Buffer{}
	for len(replay) < last {
		f := c.nextExcept("presence", "join", "leave")
		if f.Type != "message" {
			t.Fatalf("WebSocket replay: %s", f)
		}
		raw.Write(f.Message)
		var m natter.Message
		json.Unmarshal(f.Message, &m)
		replay = append(replay, m)
	}
	checkPage("the WebSocket replay", raw.Bytes(), replay, 1)

	for _, q := range []string{"hunter2", "hunter3", "spamspam", "from:bob"} {
		rr := r.do("GET", "/api/rooms/ops/search?q="+q, aliceR, nil)
		if rr.Status != http.StatusOK || bytes.Contains(rr.Raw, []byte("hunter")) || bytes.Contains(rr.Raw, []byte("spamspam")) {
			t.Fatalf("search %s: %d %s", q, rr.Status, rr.Raw)
		}
		if ms, _ := rr.Body["messages"].([]any); len(ms) != 0 {
			t.Fatalf("search %s finds %s", q, rr.Raw)
		}
	}

	for i, body := range []map[string]any{
		{"kind": "edit", "target": secret.Seq, "body": "hunter4"},
		{"kind": "react", "target": secret.Seq, "body": "👍"},
		{"kind": "delete", "target": secret.Seq},
	} {
		body["client_id"] = fmt.Sprint("again-", i)
		checkError(t, change(alice, body), http.StatusConflict, "conflict")
	}
	if n := w.lastSeq(alice, "ops"); n != last {
		t.Fatalf("last_seq %d after refused changes of a deleted message, want %d", n, last)
	}
}
