package hub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"natter"
	"natter/hub"
	"natter/internal/loopback"
	"natter/sqlite"
	"natter/ws"
)

// openHub returns a hub fed by a real SQLite store in a temp dir.
func openHub(t testing.TB) (*hub.Hub, *sqlite.Store) {
	return openHubWith(t, nil, nil)
}

// openHubWith is openHub with the hub reading messages through wrap(store) (if not nil) and
// logging to logger (if not nil).
func openHubWith(t testing.TB, wrap func(*sqlite.Store) natter.MessageStore, logger *slog.Logger) (*hub.Hub, *sqlite.Store) {
	t.Helper()
	var h *hub.Hub
	store, err := sqlite.Open(context.Background(), sqlite.Config{
		Path:        filepath.Join(t.TempDir(), "natter.db"),
		OnCommit:    func(msgs []natter.Message) { h.Publish(msgs) },
		Synchronous: "NORMAL",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var messages natter.MessageStore = store
	if wrap != nil {
		messages = wrap(store)
	}
	h = hub.New(messages, store, logger)
	return h, store
}

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t testing.TB) (server, client net.Conn) { return loopback.Pair(t) }

// sseData reads SSE events from the client end in its own goroutine and calls each(event, data)
// for every data line, then end when the stream ends.
func sseData(client net.Conn, each func(event, data string), end func()) {
	go func() {
		defer end()
		br := bufio.NewReader(client)
		var event string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				each(event, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
}

// sseSeqs reads SSE events from the client end and sends each message seq on a channel.
func sseSeqs(client net.Conn) <-chan int64 {
	out := make(chan int64, 1024)
	sseData(client, func(event, data string) {
		if event == "message" {
			var m natter.Message
			json.Unmarshal([]byte(data), &m)
			out <- m.Seq
		}
	}, func() { close(out) })
	return out
}

func appendN(t testing.TB, store *sqlite.Store, room string, n int) {
	t.Helper()
	for i := range n {
		if _, _, err := store.AppendMessage(context.Background(), natter.AppendRequest{Room: room, Author: "a", Body: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func expectSeqs(t *testing.T, seqs <-chan int64, from, to int64) {
	t.Helper()
	for want := from; want <= to; want++ {
		select {
		case got, ok := <-seqs:
			if !ok {
				t.Fatalf("stream ended before seq %d", want)
			}
			if got != want {
				t.Fatalf("got seq %d, want %d", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("seq %d never arrived", want)
		}
	}
}

// TestSubscribeMergesBacklogAndLive appends while subscriptions start: each must see 1..N once.
func TestSubscribeMergesBacklogAndLive(t *testing.T) {
	h, store := openHub(t)
	appendN(t, store, "lobby", 50)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); appendN(t, store, "lobby", 150) }()
	var streams []<-chan int64
	for range 5 {
		srv, cli := tcpPair(t)
		out := hub.NewOutbox(srv, 0, nil)
		if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", HasAfter: true, User: "u", Out: out, Transport: hub.SSE}); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, sseSeqs(cli))
	}
	wg.Wait()
	for _, s := range streams {
		expectSeqs(t, s, 1, 200)
	}
}

// TestSlowSubscriberIsClosedWithoutHoldingOthers: a subscriber that never reads overflows its
// queue and is closed with 4008; the one that reads gets every message; Publish never blocks.
func TestSlowSubscriberIsClosedWithoutHoldingOthers(t *testing.T) {
	h, store := openHub(t)
	slowSrv, slowCli := tcpPair(t)
	slowSrv.(*net.TCPConn).SetWriteBuffer(4096)
	slowCli.(*net.TCPConn).SetReadBuffer(4096)
	slow := hub.NewOutbox(slowSrv, 64<<10, nil)
	slow.SlowFinal = ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(ws.CloseSlow, "slow"))
	if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", User: "slow", Out: slow, Transport: hub.WebSocket}); err != nil {
		t.Fatal(err)
	}
	fastSrv, fastCli := tcpPair(t)
	if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", User: "fast", Out: hub.NewOutbox(fastSrv, 0, nil), Transport: hub.SSE}); err != nil {
		t.Fatal(err)
	}
	fast := sseSeqs(fastCli)
	big := strings.Repeat("x", 4000)
	for range 300 {
		if _, _, err := store.AppendMessage(context.Background(), natter.AppendRequest{Room: "lobby", Author: "a", Body: big}); err != nil {
			t.Fatal(err)
		}
	}
	expectSeqs(t, fast, 1, 300)
	select {
	case <-slow.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the slow subscriber was not closed")
	}
	// What the slow client finally reads ends with the close frame 4008 "slow".
	data, _ := io.ReadAll(slowCli)
	if !strings.Contains(string(data), "slow") {
		t.Errorf("slow subscriber got no 4008 close frame (read %d bytes)", len(data))
	}
}

// TestGapIsFilledFromStore: a live frame that skips seqs (a broker that lost one) makes the
// subscription read the missing ones from the store instead of skipping them.
func TestGapIsFilledFromStore(t *testing.T) {
	// The test publishes by hand, leaving seq 4 out.
	h, seqs, msgs := unwiredHub(t, 5)
	h.Publish(msgs[:3])
	expectSeqs(t, seqs, 1, 3)
	h.Publish(msgs[4:])
	expectSeqs(t, seqs, 4, 5)
}

// TestPresenceCountsConnections: a user with two subscriptions joins once and leaves once.
func TestPresenceCountsConnections(t *testing.T) {
	h, _ := openHub(t)
	sub := func(user string) *hub.Subscription {
		srv, cli := tcpPair(t)
		go io.Copy(io.Discard, cli)
		s, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", User: user, Out: hub.NewOutbox(srv, 0, nil), Transport: hub.SSE})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a1, a2, b := sub("alice"), sub("alice"), sub("bob")
	if got := h.Online("lobby"); fmt.Sprint(got) != "[alice bob]" {
		t.Fatalf("online %v", got)
	}
	a1.Unsubscribe()
	if got := h.Online("lobby"); fmt.Sprint(got) != "[alice bob]" {
		t.Fatalf("after one of alice's two left: online %v", got)
	}
	a2.Unsubscribe()
	b.Unsubscribe()
	b.Unsubscribe() // twice is harmless
	if got := h.Online("lobby"); len(got) != 0 {
		t.Fatalf("after all left: online %v", got)
	}
}

// TestCommittedPublishesInOrderAndCloseDrains: batches handed to Committed reach a subscriber in
// commit order, and Close returns only once everything queued has been delivered.
func TestCommittedPublishesInOrderAndCloseDrains(t *testing.T) {
	h, seqs, msgs := unwiredHub(t, 300)
	for i := 0; i < len(msgs); i += 7 {
		h.Committed(msgs[i:min(i+7, len(msgs))])
	}
	h.Close()
	if _, published := h.NotifyAfter("lobby"); published != 300 {
		t.Fatalf("Close returned with seq %d published, want all 300", published)
	}
	expectSeqs(t, seqs, 1, 300)
}

// unwiredHub returns a hub over a store that tells no hub about its commits, an SSE subscriber's
// stream of seqs from the start of lobby, and n messages stored but not yet published: the test
// publishes them by hand.
func unwiredHub(t *testing.T, n int) (*hub.Hub, <-chan int64, []natter.Message) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "natter.db"), Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h := hub.New(store, store, nil)
	srv, cli := tcpPair(t)
	if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", HasAfter: true, User: "u", Out: hub.NewOutbox(srv, 0, nil), Transport: hub.SSE}); err != nil {
		t.Fatal(err)
	}
	var msgs []natter.Message
	for i := range n {
		m, _, err := store.AppendMessage(context.Background(), natter.AppendRequest{Room: "lobby", Author: "a", Body: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	return h, sseSeqs(cli), msgs
}
