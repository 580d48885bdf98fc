package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRoomsSayWhoIsOnline: the room list (API and page) counts the users online in each room,
// whatever their transport, and the count goes down when they leave.
func TestRoomsSayWhoIsOnline(t *testing.T) {
	ts := startServer(t)
	alice, bob, carol := ts.signIn("alice"), ts.signIn("bob"), ts.signIn("carol")
	ts.mustPost(alice, "lobby", "hi")
	online := func() float64 {
		r := ts.do("GET", "/api/rooms", carol, nil)
		for _, x := range r.Body["rooms"].([]any) {
			if x := x.(map[string]any); x["name"] == "lobby" {
				return x["online"].(float64)
			}
		}
		t.Fatalf("no lobby in %s", r.Raw)
		return 0
	}
	if n := online(); n != 0 {
		t.Fatalf("online %v in an empty lobby", n)
	}
	ws := ts.dialWS(alice)
	ws.subscribe("lobby", 0)
	ts.openSSE("/api/rooms/lobby/events", bob).waitSubscribed()
	ts.dialWS(bob).subscribe("lobby", 0) // bob twice: one user
	waitFor(t, "alice and bob online", func() bool { return online() == 2 })
	req, _ := http.NewRequest("GET", ts.URL+"/", nil)
	req.Header.Set("Authorization", "Bearer "+carol)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), `data-people="2"> · 2 online`) {
		t.Fatalf("the rooms page does not say 2 online:\n%s", page)
	}
	ws.conn.Close()
	waitFor(t, "alice gone", func() bool { return online() == 1 })
}
