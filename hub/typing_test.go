package hub_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"natter/hub"
)

// TestTypingNotices: a notice reaches the room's subscribers but the typer's, at most one per
// user and room every TypingEvery (a later one passes again, another user's is separate); each
// notice passed on goes to the sink, and a remote one is passed on here but not back to the sink.
func TestTypingNotices(t *testing.T) {
	h, _ := openHub(t)
	h.SetTypingEvery(50 * time.Millisecond)
	var mu sync.Mutex
	var sunk []string
	h.SetTypingSink(func(room, user string) {
		mu.Lock()
		sunk = append(sunk, room+" "+user)
		mu.Unlock()
	})
	notices := make(map[string]<-chan string)
	for _, user := range []string{"ann", "bob"} {
		srv, cli := tcpPair(t)
		if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", User: user, Out: hub.NewOutbox(srv, 0, nil), Transport: hub.SSE}); err != nil {
			t.Fatal(err)
		}
		ch := make(chan string, 64)
		sseData(cli, func(event, data string) {
			if event == "typing" {
				var f struct{ Type, Room, User string }
				json.Unmarshal([]byte(data), &f)
				ch <- f.Room + " " + f.User
			}
		}, func() { close(ch) })
		notices[user] = ch
	}
	want := func(who, notice string) {
		t.Helper()
		select {
		case got := <-notices[who]:
			if got != notice {
				t.Fatalf("%s got the notice %q, want %q", who, got, notice)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s got no notice, want %q", who, notice)
		}
	}

	if !h.Typing("lobby", "bob") {
		t.Fatal("bob's first notice was dropped")
	}
	want("ann", "lobby bob")
	if h.Typing("lobby", "bob") {
		t.Fatal("bob's second notice at once was passed on")
	}
	if !h.Typing("lobby", "ann") {
		t.Fatal("ann's notice was dropped for bob's")
	}
	want("bob", "lobby ann")
	time.Sleep(60 * time.Millisecond) // past the hub's TypingEvery for this test
	if !h.Typing("lobby", "bob") {
		t.Fatal("bob's notice after TypingEvery was dropped")
	}
	want("ann", "lobby bob")
	h.RemoteTyping("lobby", "cat")
	want("ann", "lobby cat")
	want("bob", "lobby cat")
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sunk, []string{"lobby bob", "lobby ann", "lobby bob"}) {
		t.Fatalf("the sink got %q, want the three notices passed on here", sunk)
	}
	select {
	case n := <-notices["bob"]:
		t.Fatalf("bob got a notice of %q: his own, or a dropped one", n)
	default:
	}
}
