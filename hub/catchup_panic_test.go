package hub_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"natter"
	"natter/hub"
	"natter/internal/syncbuf"
	"natter/sqlite"
)

// panickyStore is the real store, except that MessagesAfter panics while panicking is set: a
// fault no real store shows on demand.
type panickyStore struct {
	*sqlite.Store
	panicking atomic.Bool
}

func (p *panickyStore) MessagesAfter(ctx context.Context, room string, after int64, limit int) ([]natter.Message, error) {
	if p.panicking.Load() {
		panic("boom in a catch-up read")
	}
	return p.Store.MessagesAfter(ctx, room, after, limit)
}

// TestCatchUpPanicClosesOnlyItsConnection: a panic while a subscription replays its backlog is
// logged with its stack and closes that subscriber's connection; the hub goes on serving others.
// Without the recovery the panic ends the test binary.
func TestCatchUpPanicClosesOnlyItsConnection(t *testing.T) {
	var logs syncbuf.Buffer
	var ps *panickyStore
	h, store := openHubWith(t, func(st *sqlite.Store) natter.MessageStore {
		ps = &panickyStore{Store: st}
		return ps
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	appendN(t, store, "lobby", 5)

	ps.panicking.Store(true)
	srv, cli := tcpPair(t)
	if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", HasAfter: true, User: "u", Out: hub.NewOutbox(srv, 0, nil), Transport: hub.SSE}); err != nil {
		t.Fatal(err)
	}
	cli.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(cli); err != nil {
		t.Fatalf("the panicking subscriber's connection was not closed: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, "boom in a catch-up read") || !strings.Contains(l, "goroutine ") {
		t.Fatalf("the log lacks the panic with its stack:\n%s", l)
	}

	ps.panicking.Store(false)

	// A panic while the catch-up holds the subscription's lock: the clean-up must unlock it
	// first, or it deadlocks (and the connection is never closed).
	hub.SetSpliceHook(func() { panic("boom in a splice") })
	srvL, cliL := tcpPair(t)
	if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", HasAfter: true, User: "w", Out: hub.NewOutbox(srvL, 0, nil), Transport: hub.SSE}); err != nil {
		hub.SetSpliceHook(nil)
		t.Fatal(err)
	}
	cliL.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.ReadAll(cliL)
	hub.SetSpliceHook(nil)
	if err != nil {
		t.Fatalf("the subscriber that panicked under its lock was not closed: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, "boom in a splice") {
		t.Fatalf("the log lacks the panic under the lock:\n%s", l)
	}

	srv2, cli2 := tcpPair(t)
	if _, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{Room: "lobby", HasAfter: true, User: "v", Out: hub.NewOutbox(srv2, 0, nil), Transport: hub.SSE}); err != nil {
		t.Fatal(err)
	}
	seqs := sseSeqs(cli2)
	expectSeqs(t, seqs, 1, 5)
	appendN(t, store, "lobby", 1)
	expectSeqs(t, seqs, 6, 6)
}
