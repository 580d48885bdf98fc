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
