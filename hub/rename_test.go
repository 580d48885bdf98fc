package hub_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"natter"
	"natter/hub"
)

// TestRenames: a room's new title or topic reaches its subscribers (and no other room's) as a "room"
// event, whether told here (and then to the sink, for the other nodes) or by another node (not
// sunk again).
func TestRenames(t *testing.T) {
	h, store := openHub(t)
	if _, err := store.CreateRoom(t.Context(), natter.Room{Name: "ops"}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sunk []string
	h.SetRenameSink(func(room, title, topic string) {
		mu.Lock()
		sunk = append(sunk, room+" "+title+" / "+topic)
		mu.Unlock()
	})
	events := make(map[string]<-chan string)
	for user, room := range map[string]string{"ann": "ops", "bob": "lobby"} {
		srv, cli := tcpPair(t)
		if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: room, User: user, Out: hub.NewOutbox(srv, 0, nil), Transport: hub.SSE}); err != nil {
			t.Fatal(err)
		}
		ch := make(chan string, 64)
		sseData(cli, func(event, data string) {
			if event == "room" {
				var f struct{ Type, Room, Title, Topic string }
				json.Unmarshal([]byte(data), &f)
				ch <- f.Type + " " + f.Room + " " + f.Title + " / " + f.Topic
			}
		}, func() { close(ch) })
		events[user] = ch
	}
	want := func(event string) {
		t.Helper()
		select {
		case got := <-events["ann"]:
			if got != event {
				t.Fatalf("ann got %q, want %q", got, event)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ann got nothing, want %q", event)
		}
	}
	h.Renamed("ops", "Operations", "deploys on Tuesdays")
	want("room ops Operations / deploys on Tuesdays")
	h.RemoteRenamed("ops", "Ops, renamed elsewhere", "")
	want("room ops Ops, renamed elsewhere / ")
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sunk, []string{"ops Operations / deploys on Tuesdays"}) {
		t.Fatalf("the sink got %q, want the rename told here", sunk)
	}
	select {
	case e := <-events["bob"]:
		t.Fatalf("bob, in another room, got %q", e)
	default:
	}
}
