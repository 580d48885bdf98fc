package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"natter"
)

type ackResult struct {
	msg natter.Message
	err error
}

// TestAcksWaitForTheWALSync: with Synchronous FULL a committed message stays invisible,
// unbroadcast and unacknowledged until the WAL is synced, whether the committer syncs it itself
// or, with a backlog (here every batch is full, at MaxBatch 1), hands it to the syncer and
// commits the next batch meanwhile.
func TestAcksWaitForTheWALSync(t *testing.T) {
	t.Run("by the committer", func(t *testing.T) { testAcksWaitForTheWALSync(t, false) })
	t.Run("pipelined", func(t *testing.T) { testAcksWaitForTheWALSync(t, true) })
}

func testAcksWaitForTheWALSync(t *testing.T, pipelined bool) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "natter.db")
	var broadcast atomic.Int64
	cfg := Config{Path: path, OnCommit: func(msgs []natter.Message) { broadcast.Add(int64(len(msgs))) }}
	if pipelined {
		cfg.MaxBatch = 1
	}
	s := mustOpen(t, cfg)
	entered := make(chan struct{}, 100)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before Close, which waits for the sync, should the test fail
	s.wal.hook = func() error {
		entered <- struct{}{}
		<-release
		return nil
	}
	acks := make(chan ackResult, 2)
	send := func(body string) {
		t.Helper()
		err := s.AppendMessageAsync(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "ann", Body: body},
			func(m natter.Message, _ bool, err error) { acks <- ackResult{m, err} })
		must(t, err)
	}
	send("one")
	<-entered // the first batch is committed and its sync has begun
	want := int64(1)
	if pipelined {
		// A second batch commits while the first one's sync is still running.
		send("two")
		want = 2
		raw, err := sql.Open("sqlite", path)
		must(t, err)
		defer raw.Close()
		for stored := int64(0); stored < want; {
			must(t, raw.QueryRow(`SELECT count(*) FROM messages WHERE room = ?`, natter.DefaultRoom).Scan(&stored))
			time.Sleep(time.Millisecond)
		}
	}

	// Nothing of it shows before the sync ends.
	select {
	case a := <-acks:
		t.Fatalf("acknowledged before the WAL was synced: %+v", a)
	default:
	}
	if n := broadcast.Load(); n != 0 {
		t.Fatalf("OnCommit saw %d messages before the WAL was synced", n)
	}
	if msgs, err := s.MessagesAfter(ctx, natter.DefaultRoom, 0, 10); err != nil || len(msgs) != 0 {
		t.Fatalf("MessagesAfter before the sync = %d messages, %v", len(msgs), err)
	}
	if msgs, err := s.MessagesBefore(ctx, natter.DefaultRoom, 0, 10); err != nil || len(msgs) != 0 {
		t.Fatalf("MessagesBefore before the sync = %d messages, %v", len(msgs), err)
	}
	if r, err := s.Room(ctx, natter.DefaultRoom); err != nil || r.LastSeq != 0 {
		t.Fatalf("Room before the sync: last seq %d, %v", r.LastSeq, err)
	}

	unblock()
	for seq := int64(1); seq <= want; seq++ {
		a := <-acks
		if a.err != nil || a.msg.Seq != seq {
			t.Fatalf("ack %d = seq %d, %v", seq, a.msg.Seq, a.err)
		}
	}
	if n := broadcast.Load(); n != want {
		t.Fatalf("OnCommit saw %d messages, want %d", n, want)
	}
	if msgs, err := s.MessagesAfter(ctx, natter.DefaultRoom, 0, 10); err != nil || int64(len(msgs)) != want {
		t.Fatalf("MessagesAfter after the sync = %d messages, %v", len(msgs), err)
	}
	if r, err := s.Room(ctx, natter.DefaultRoom); err != nil || r.LastSeq != want {
		t.Fatalf("Room after the sync: last seq %d, %v", r.LastSeq, err)
	}
	rooms, err := s.Rooms(ctx)
	must(t, err)
	for _, r := range rooms {
		if r.Name == natter.DefaultRoom && r.LastSeq != want {
			t.Fatalf("Rooms after the sync: last seq %d", r.LastSeq)
		}
	}
}

// TestFailedWALSyncStopsTheStore: after a failed fsync nothing is acknowledged, broadcast or
// shown, and the store takes no more appends, even if a later fsync would succeed.
func TestFailedWALSyncStopsTheStore(t *testing.T) {
	ctx := context.Background()
	var broadcast atomic.Int64
	s := mustOpen(t, Config{OnCommit: func(msgs []natter.Message) { broadcast.Add(int64(len(msgs))) }})
	var failed atomic.Bool
	s.wal.hook = func() error { // only the first sync fails: the store must stay stopped after it
		if failed.CompareAndSwap(false, true) {
			return errors.New("the disk is on fire")
		}
		return nil
	}
	req := natter.AppendRequest{Room: natter.DefaultRoom, Author: "ann", Body: "hello"}
	if _, _, err := s.AppendMessage(ctx, req); natter.ErrorCode(err) != natter.EUNAVAILABLE {
		t.Fatalf("append with a failing sync = %v, want EUNAVAILABLE", err)
	}
	if _, _, err := s.AppendMessage(ctx, req); natter.ErrorCode(err) != natter.EUNAVAILABLE {
		t.Fatalf("append after a failed sync = %v, want EUNAVAILABLE", err)
	}
	if _, err := s.CreateRoom(ctx, natter.Room{Name: "ops"}); natter.ErrorCode(err) != natter.EUNAVAILABLE {
		t.Fatalf("CreateRoom after a failed sync = %v, want EUNAVAILABLE", err)
	}
	if n := broadcast.Load(); n != 0 {
		t.Fatalf("OnCommit saw %d messages", n)
	}
	if msgs, err := s.MessagesAfter(ctx, natter.DefaultRoom, 0, 10); err != nil || len(msgs) != 0 {
		t.Fatalf("MessagesAfter = %d messages, %v", len(msgs), err)
	}
}

// TestWritesAroundTheCommitterAreSynced: rooms, accounts and sessions are synced before their
// callers return; calls that write nothing sync nothing.
func TestWritesAroundTheCommitterAreSynced(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, Config{})
	var syncs atomic.Int64
	s.wal.hook = func() error { syncs.Add(1); return nil }
	expect := func(what string, want int64) {
		t.Helper()
		if n := syncs.Swap(0); n != want {
			t.Fatalf("%s: %d syncs, want %d", what, n, want)
		}
	}
	_, err := s.CreateRoom(ctx, natter.Room{Name: "ops"})
	must(t, err)
	expect("CreateRoom", 1)
	if _, err := s.CreateRoom(ctx, natter.Room{Name: "ops"}); natter.ErrorCode(err) != natter.ECONFLICT {
		t.Fatal(err)
	}
	expect("CreateRoom of an existing room", 0)
	_, err = s.CreateUser(ctx, "ann", "hash")
	must(t, err)
	expect("CreateUser", 1)
	must(t, s.CreateSession(ctx, natter.Session{TokenHash: "t1", UserName: "ann", ExpiresAt: time.Now().Add(time.Hour)}))
	expect("CreateSession", 1)
	must(t, s.DeleteSession(ctx, "t1"))
	expect("DeleteSession", 1)
	must(t, s.DeleteSession(ctx, "t1"))
	expect("DeleteSession of an absent session", 0)
}

// TestNormalNeedsNoSyncer: with Synchronous NORMAL there is no syncer and a message is visible
// once committed.
func TestNormalNeedsNoSyncer(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, Config{Synchronous: "NORMAL"})
	if s.wal != nil || s.syncq != nil {
		t.Fatal("Synchronous NORMAL started a WAL syncer")
	}
	m, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "ann", Body: "hi"})
	must(t, err)
	if msgs, err := s.MessagesAfter(ctx, natter.DefaultRoom, 0, 10); err != nil || len(msgs) != 1 || msgs[0].Seq != m.Seq {
		t.Fatalf("MessagesAfter = %v, %v", msgs, err)
	}
}
