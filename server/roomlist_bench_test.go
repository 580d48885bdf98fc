package server_test

import (
	"fmt"
	"net/http"
	"testing"

	"natter/app"
)

// BenchmarkRoomListWithDirects: the room list of an account on a server that holds 990 direct
// conversations of others (every pair of 45 accounts), none of them its own. Each conversation
// is private, so the list must leave every one out; a direct conversation's two members are in
// the room itself, so this reads no membership from the store.
func BenchmarkRoomListWithDirects(b *testing.B) {
	ts := startServer(b, func(c *app.Config) { c.Server.RoomRate = -1 }) // 44 conversations a user
	const people = 45
	toks := make([]string, people)
	for i := range toks {
		toks[i] = ts.account(fmt.Sprintf("user%02d", i))
	}
	for i := range toks {
		for j := i + 1; j < people; j++ {
			if r := ts.do("POST", "/api/dms", toks[i], map[string]string{"user": fmt.Sprintf("user%02d", j)}); r.Status != http.StatusCreated {
				b.Fatalf("open: %d %s", r.Status, r.Raw)
			}
		}
	}
	outsider := ts.account("outsider")
	if n := len(ts.do("GET", "/api/rooms", toks[0], nil).Body["rooms"].([]any)); n != people {
		b.Fatalf("user00 lists %d rooms, want the lobby and its %d conversations", n, people-1)
	}
	b.ResetTimer()
	for b.Loop() {
		if n := len(ts.do("GET", "/api/rooms", outsider, nil).Body["rooms"].([]any)); n != 1 {
			b.Fatalf("the outsider lists %d rooms, want the lobby", n)
		}
	}
}

// BenchmarkRoomListWithMentions: the room list of an account that has read none of 30 rooms of
// 250 messages each, every tenth naming it: each room's mentions are counted among its newest 200
// unread messages (one store read per room with unread messages).
func BenchmarkRoomListWithMentions(b *testing.B) {
	ts := startServer(b, func(c *app.Config) { c.Server.RoomRate, c.Server.SendRate = -1, -1 })
	alice, bob := ts.account("alice"), ts.account("bob")
	const rooms, each = 30, 250
	for i := range rooms {
		name := fmt.Sprintf("room%02d", i)
		r := ts.do("POST", "/api/rooms", bob, map[string]string{"name": name})
		if r.Status != http.StatusCreated {
			b.Fatalf("create: %d %s", r.Status, r.Raw)
		}
		epoch := r.Body["room"].(map[string]any)["epoch"]
		if r := ts.do("PUT", "/api/rooms/"+name+"/read", alice, map[string]any{"seq": 0, "epoch": epoch}); r.Status != http.StatusNoContent {
			b.Fatalf("mark: %d %s", r.Status, r.Raw)
		}
		for j := range each {
			body := fmt.Sprint("message ", j)
			if j%10 == 0 {
				body = fmt.Sprint("@alice, message ", j)
			}
			ts.mustPost(bob, name, body)
		}
	}
	want := float64(200 / 10)
	b.ResetTimer()
	for b.Loop() {
		for _, x := range ts.do("GET", "/api/rooms", alice, nil).Body["rooms"].([]any) {
			if r := x.(map[string]any); r["name"] != "lobby" && r["mentions"] != want {
				b.Fatalf("room %v: mentions %v, want %v", r["name"], r["mentions"], want)
			}
		}
	}
}
