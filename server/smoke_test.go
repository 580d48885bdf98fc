package server_test

import "testing"

func TestSmokeSendAndRead(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	r := ts.do("POST", "/api/rooms/lobby/messages", tok, map[string]string{"body": "hi", "client_id": "c1"})
	if r.Status != 201 {
		t.Fatalf("post: %d %s", r.Status, r.Raw)
	}
	r = ts.do("POST", "/api/rooms/lobby/messages", tok, map[string]string{"body": "hi", "client_id": "c1"})
	if r.Status != 200 {
		t.Fatalf("repost: %d %s", r.Status, r.Raw)
	}
	r = ts.do("GET", "/api/rooms/lobby/messages?after=0", tok, nil)
	t.Logf("%d %s", r.Status, r.Raw)
	r = ts.do("GET", "/api/rooms", tok, nil)
	t.Logf("%d %s", r.Status, r.Raw)
}
