package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"natter/hub"
)

// sseMembers reads an SSE stream and sends "join USER" / "leave USER" for its presence events.
func sseMembers(client net.Conn) <-chan string {
	out := make(chan string, 64)
	sseData(client, func(event, data string) {
		if event == "join" || event == "leave" {
			var f struct{ User string }
			json.Unmarshal([]byte(data), &f)
			out <- event + " " + f.User
		}
	}, func() { close(out) })
	return out
}

// TestPresenceAcrossNodes: users other nodes report count as online (one join when the first
// node reports them, one leave when the last stops: by its word, by a snapshot that no longer
// lists them, by lapsing, or by the node's goodbye), and this node's own changes go to the sink.
func TestPresenceAcrossNodes(t *testing.T) {
	h, _ := openHub(t)
	var mu sync.Mutex
	var reported []string
	h.SetPresenceSink(func(room, user string, online bool) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, fmt.Sprint(room, " ", user, " ", online))
	})
	sub := func(user string) *hub.Subscription {
		srv, _ := tcpPair(t)
		s, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", User: user, Out: hub.NewOutbox(srv, 0, nil), Transport: hub.SSE})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	srv, cli := tcpPair(t)
	if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", User: "obs", Out: hub.NewOutbox(srv, 0, nil), Transport: hub.SSE}); err != nil {
		t.Fatal(err)
	}
	events := sseMembers(cli)
	want := func(ev string) {
		t.Helper()
		select {
		case got := <-events:
			if got != ev {
				t.Fatalf("presence event %q, want %q", got, ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no presence event, want %q", ev)
		}
	}
	online := func(want string) {
		t.Helper()
		if got := fmt.Sprint(h.Online("lobby")); got != want {
			t.Fatalf("online %s, want %s", got, want)
		}
	}
	later := time.Now().Add(time.Hour)

	h.RemotePresence("n2", "lobby", "bob", true, later)
	want("join bob")
	online("[bob obs]")
	h.RemotePresence("n3", "lobby", "bob", true, later) // online on a second node: no second join
	h.RemotePresence("n2", "lobby", "bob", false, time.Time{})
	online("[bob obs]") // still on n3
	b := sub("bob")     // and here: no join, but the sink hears of it
	b.Unsubscribe()
	online("[bob obs]")

	h.RemoteSnapshot("n3", map[string][]string{"lobby": {"carol"}}, later) // bob is not listed
	want("leave bob")
	want("join carol")
	h.ExpireRemote(later.Add(time.Second)) // n3 said nothing more
	want("leave carol")
	h.RemotePresence("n4", "lobby", "dave", true, later)
	want("join dave")
	h.ForgetNode("n4")
	want("leave dave")
	online("[obs]")

	if got := fmt.Sprint(h.LocalPresence()); got != "map[lobby:[obs]]" {
		t.Fatalf("local presence %s, want only obs in lobby", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(reported, ", "); got != "lobby obs true, lobby bob true, lobby bob false" {
		t.Fatalf("reported to the sink: %s", got)
	}
}
