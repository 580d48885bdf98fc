package hub_test

import (
	"context"
	"log/slog"
	"testing"

	"natter"
	"natter/hub"
	"natter/sqlite"
)

// goneStore is the real store, which deletes room "gone" as a catch-up comes to read it (after
// the subscription found the room) and tells when that read has answered.
type goneStore struct {
	*sqlite.Store
	read chan struct{}
}

func (g *goneStore) MessagesAfter(ctx context.Context, room string, after int64, limit int) ([]natter.Message, error) {
	if room != "gone" {
		return g.Store.MessagesAfter(ctx, room, after, limit)
	}
	defer close(g.read)
	if err := g.Store.DeleteRoom(ctx, room, "a"); err != nil {
		return nil, err
	}
	return g.Store.MessagesAfter(ctx, room, after, limit)
}

// TestCatchUpOfADeletedRoomKeepsTheConnection: a room deleted before its subscription's catch-up
// reads it (the store answers ENOTFOUND) ends nothing of the connection: its subscription waits
// for the server, which ends it as it hears of the deletion, and the connection's other rooms go
// on. (A connection closed for it made its client reconnect, and a test that saw the deletion
// through another subscription fail.)
func TestCatchUpOfADeletedRoomKeepsTheConnection(t *testing.T) {
	ctx := context.Background()
	gs := &goneStore{read: make(chan struct{})}
	h, store := openHubWith(t, func(st *sqlite.Store) natter.MessageStore {
		gs.Store = st
		return gs
	}, slog.New(slog.DiscardHandler))
	if _, err := store.CreateRoom(ctx, natter.Room{Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	appendN(t, store, "gone", 3)
	srv, cli := tcpPair(t)
	out := hub.NewOutbox(srv, 0, nil)
	if _, _, err := h.Subscribe(ctx, hub.SubscribeRequest{Room: "lobby", User: "u", Out: out, Transport: hub.SSE}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Subscribe(ctx, hub.SubscribeRequest{Room: "gone", HasAfter: true, User: "u", Out: out, Transport: hub.SSE}); err != nil {
		t.Fatal(err)
	}
	<-gs.read
	seqs := sseSeqs(cli)
	appendN(t, store, "lobby", 2)
	expectSeqs(t, seqs, 1, 2)
	select {
	case <-out.Done():
		t.Fatal("the connection was closed for a room deleted before its catch-up")
	default:
	}
}
