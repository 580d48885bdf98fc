package server_test

import (
	"net/http"
	"testing"
)

// TestMuteRoom: an account mutes a room for itself (its room views say "muted", anyone else's
// do not) and unmutes it; again is no error; guests, rooms one can't see and rooms that do not
// exist are refused.
func TestMuteRoom(t *testing.T) {
	ts := startServer(t)
	ann, bob, gus := ts.account("ann"), ts.account("bob"), ts.signIn("gus")
	if r := ts.do("POST", "/api/rooms", ann, map[string]any{"name": "noisy"}); r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	if r := ts.do("POST", "/api/rooms", bob, map[string]any{"name": "secret", "private": true}); r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	muted := func(tok string) map[string]bool {
		t.Helper()
		r := ts.do("GET", "/api/rooms", tok, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list: %d %s", r.Status, r.Raw)
		}
		out := map[string]bool{}
		for _, v := range r.Body["rooms"].([]any) {
			room := v.(map[string]any)
			if room["muted"] == true {
				out[room["name"].(string)] = true
			}
		}
		return out
	}
	for _, tok := range []string{ann, bob} {
		if got := muted(tok); len(got) != 0 {
			t.Fatalf("muted rooms at first: %v", got)
		}
	}
	for range 2 {
		if r := ts.do("PUT", "/api/rooms/noisy/mute", ann, nil); r.Status != http.StatusNoContent {
			t.Fatalf("mute: %d %s", r.Status, r.Raw)
		}
	}
	if got := muted(ann); len(got) != 1 || !got["noisy"] {
		t.Fatalf("ann's muted rooms %v, want noisy", got)
	}
	if got := muted(bob); len(got) != 0 {
		t.Fatalf("bob's muted rooms %v, want none: ann muted it for herself", got)
	}
	if r := ts.do("GET", "/api/rooms/noisy", ann, nil); r.Body["room"].(map[string]any)["muted"] != true {
		t.Fatalf("the room read alone: %s", r.Raw)
	}
	checkError(t, ts.do("PUT", "/api/rooms/noisy/mute", gus, nil), http.StatusForbidden, "forbidden")
	checkError(t, ts.do("PUT", "/api/rooms/secret/mute", ann, nil), http.StatusNotFound, "not_found")
	checkError(t, ts.do("PUT", "/api/rooms/nowhere/mute", ann, nil), http.StatusNotFound, "not_found")
	for range 2 {
		if r := ts.do("DELETE", "/api/rooms/noisy/mute", ann, nil); r.Status != http.StatusNoContent {
			t.Fatalf("unmute: %d %s", r.Status, r.Raw)
		}
	}
	if got := muted(ann); len(got) != 0 {
		t.Fatalf("ann's muted rooms %v after unmuting, want none", got)
	}
}
