package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"natter"
	"natter/storetest"
)

// mustOpen opens a store on a file in a fresh temp dir (unless cfg.Path is set) and closes it when
// tb ends.
func mustOpen(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(tb.TempDir(), "natter.db")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := natter.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want %q", err, got, code)
	}
}

// waitFor polls cond until it holds; the test's own deadline bounds the wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) natter.Store { return mustOpen(t, Config{}) })
}

func TestPragmas(t *testing.T) {
	// SQLite's own setting is NORMAL either way: with FULL, natter syncs the WAL (walsync.go).
	for _, tc := range []struct {
		sync     string
		want     int
		syncsWAL bool
	}{{"", 1, true}, {"FULL", 1, true}, {"normal", 1, false}} {
		s := mustOpen(t, Config{Synchronous: tc.sync})
		if (s.wal != nil) != tc.syncsWAL {
			t.Errorf("Synchronous %q: natter syncs the WAL: %v, want %v", tc.sync, s.wal != nil, tc.syncsWAL)
		}
		var mode string
		var syncLevel, fk int
		must(t, s.writeDB.QueryRow("PRAGMA journal_mode").Scan(&mode))
		must(t, s.writeDB.QueryRow("PRAGMA synchronous").Scan(&syncLevel))
		must(t, s.writeDB.QueryRow("PRAGMA foreign_keys").Scan(&fk))
		if mode != "wal" || syncLevel != tc.want || fk != 1 {
			t.Errorf("Synchronous %q: journal_mode %s, synchronous %d, foreign_keys %d; want wal, %d, 1",
				tc.sync, mode, syncLevel, fk, tc.want)
		}
		// Readers must not be able to write, so that only the committer assigns seqs.
		if _, err := s.readDB.Exec("DELETE FROM messages"); err == nil {
			t.Error("the reader pool accepted a write")
		}
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	for _, cfg := range []Config{
		{},
		{Path: filepath.Join(dir, "a.db"), Synchronous: "OFF"},
		{Path: filepath.Join(dir, "b?.db")},
	} {
		if s, err := Open(ctx, cfg); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	s, err := Open(ctx, Config{Path: path, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	ops, err := s.CreateRoom(ctx, natter.Room{Name: "ops", Title: "Operations", CreatedBy: "alice"})
	must(t, err)
	lobby, err := s.Room(ctx, natter.DefaultRoom)
	must(t, err)
	var sent []natter.Message
	for i := range 5 {
		m, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: "ops", Author: "alice", Body: fmt.Sprint(i), ClientID: fmt.Sprint("c", i)})
		must(t, err)
		sent = append(sent, m)
	}
	_, err = s.CreateUser(ctx, "alice", "hash")
	must(t, err)
	must(t, s.Close())

	s = mustOpen(t, Config{Path: path})
	for _, want := range []natter.Room{lobby, {Name: "ops", Title: "Operations", Epoch: ops.Epoch, CreatedBy: "alice", LastSeq: 5, CreatedAt: ops.CreatedAt}} {
		got, err := s.Room(ctx, want.Name)
		must(t, err)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after reopen %s = %+v, want %+v", want.Name, got, want)
		}
	}
	got, err := s.MessagesAfter(ctx, "ops", 0, 100)
	must(t, err)
	if len(got) != len(sent) {
		t.Fatalf("after reopen %d messages, want %d", len(got), len(sent))
	}
	for i := range got {
		if got[i] != sent[i] {
			t.Fatalf("after reopen message %+v, want %+v", got[i], sent[i])
		}
	}
	// The seq cache starts empty and must pick up where the file left off; idempotency survives too.
	m, created, err := s.AppendMessage(ctx, natter.AppendRequest{Room: "ops", Author: "alice", Body: "again", ClientID: "c2"})
	must(t, err)
	if created || m != sent[2] {
		t.Fatalf("retry after reopen = %+v, %v; want %+v, false", m, created, sent[2])
	}
	m, _, err = s.AppendMessage(ctx, natter.AppendRequest{Room: "ops", Author: "alice", Body: "next"})
	must(t, err)
	if m.Seq != 6 {
		t.Fatalf("first append after reopen got seq %d, want 6", m.Seq)
	}
	if _, hash, err := s.UserPasswordHash(ctx, "alice"); err != nil || hash != "hash" {
		t.Fatalf("user after reopen: %q, %v", hash, err)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	ms, err := loadMigrations()
	must(t, err)
	var lobbyEpoch string
	for i := range 3 {
		s := mustOpen(t, Config{Path: path})
		var n, latest int
		must(t, s.writeDB.QueryRow("SELECT COUNT(*), MAX(version) FROM schema_migrations").Scan(&n, &latest))
		if n != len(ms) || latest != ms[len(ms)-1].version {
			t.Fatalf("open %d: %d migrations recorded up to %d, want %d up to %d", i, n, latest, len(ms), ms[len(ms)-1].version)
		}
		lobby, err := s.Room(ctx, natter.DefaultRoom)
		must(t, err)
		if i > 0 && lobby.Epoch != lobbyEpoch {
			t.Fatalf("open %d: lobby epoch %q, was %q: the lobby was recreated", i, lobby.Epoch, lobbyEpoch)
		}
		lobbyEpoch = lobby.Epoch
		must(t, s.Close())
	}

	// A file written by a newer build is refused rather than misread.
	db, err := sql.Open("sqlite", path)
	must(t, err)
	_, err = db.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)")
	must(t, err)
	must(t, db.Close())
	if s, err := Open(ctx, Config{Path: path, Logger: slog.New(slog.DiscardHandler)}); err == nil {
		s.Close()
		t.Fatal("Open accepted a schema newer than the build")
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s := mustOpen(t, Config{})
	must(t, s.Close())
	_, _, err := s.AppendMessage(t.Context(), natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "late"})
	wantCode(t, err, natter.EUNAVAILABLE)
	must(t, s.Close()) // a second Close is harmless
}

func TestCloseCommitsQueued(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	s, err := Open(ctx, Config{Path: path, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)

	const senders = 50
	var mu sync.Mutex
	var acked []natter.Message
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Go(func() {
			for i := 0; ; i++ {
				m, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: fmt.Sprint("u", g), Body: fmt.Sprint(i)})
				if err != nil {
					if natter.ErrorCode(err) != natter.EUNAVAILABLE {
						errs <- err
					}
					return
				}
				mu.Lock()
				acked = append(acked, m)
				mu.Unlock()
			}
		})
	}
	waitFor(t, "some acknowledged appends", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 200 })
	must(t, s.Close())
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append during Close: %v", err)
	}

	// Every acknowledged message survived; nothing else was stored (no caller gave up, so every
	// queued request was answered).
	s = mustOpen(t, Config{Path: path})
	stored, err := s.MessagesAfter(ctx, natter.DefaultRoom, 0, 1<<30)
	must(t, err)
	if len(stored) != len(acked) {
		t.Fatalf("stored %d messages, acknowledged %d", len(stored), len(acked))
	}
	for i, m := range stored {
		if m.Seq != int64(i+1) {
			t.Fatalf("stored seq %d at position %d", m.Seq, i)
		}
	}
	byID := map[string]natter.Message{}
	for _, m := range stored {
		byID[m.ID] = m
	}
	for _, a := range acked {
		if byID[a.ID] != a {
			t.Fatalf("acknowledged %+v, stored %+v", a, byID[a.ID])
		}
	}
}

// commitLog records what OnCommit saw, per room.
type commitLog struct {
	delay time.Duration // before recording: widens the window in which an early ack would show

	mu    sync.Mutex
	calls int
	rooms map[string][]natter.Message
	err   error // the first ordering violation seen
}

func (l *commitLog) onCommit(msgs []natter.Message) {
	time.Sleep(l.delay)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.rooms == nil {
		l.rooms = map[string][]natter.Message{}
	}
	for _, m := range msgs {
		prev := l.rooms[m.Room]
		if m.Seq != int64(len(prev))+1 && l.err == nil {
			l.err = fmt.Errorf("OnCommit delivered %s seq %d after seq %d", m.Room, m.Seq, len(prev))
		}
		l.rooms[m.Room] = append(prev, m)
	}
}

// has reports whether OnCommit has already delivered m.
func (l *commitLog) has(m natter.Message) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.rooms[m.Room] {
		if c.Seq == m.Seq {
			return c == m
		}
	}
	return false
}

func TestOnCommitOrder(t *testing.T) {
	ctx := t.Context()
	log := commitLog{delay: 200 * time.Microsecond}
	s := mustOpen(t, Config{OnCommit: log.onCommit, MaxBatch: 16})
	rooms := []string{natter.DefaultRoom, "ops", "dev"}
	for _, r := range rooms[1:] {
		_, err := s.CreateRoom(ctx, natter.Room{Name: r})
		must(t, err)
	}

	const goroutines, each = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				req := natter.AppendRequest{Room: rooms[(g+i)%3], Author: fmt.Sprint("u", g), Body: "x", ClientID: fmt.Sprint(i)}
				m, created, err := s.AppendMessage(ctx, req)
				if err != nil {
					errs <- err
					return
				}
				// OnCommit runs before the sender hears back.
				if !created || !log.has(m) {
					errs <- fmt.Errorf("AppendMessage returned %+v (created %v) before OnCommit delivered it", m, created)
					return
				}
				if i%5 == 0 {
					// A retry must not be delivered again.
					if _, created, err := s.AppendMessage(ctx, req); err != nil || created {
						errs <- fmt.Errorf("retry: created %v, err %v", created, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if log.err != nil {
		t.Fatal(log.err)
	}
	total := 0
	for _, r := range rooms {
		stored, err := s.MessagesAfter(ctx, r, 0, 1<<30)
		must(t, err)
		delivered := log.rooms[r]
		if len(delivered) != len(stored) {
			t.Fatalf("%s: OnCommit delivered %d messages, %d stored", r, len(delivered), len(stored))
		}
		for i := range stored {
			if delivered[i] != stored[i] {
				t.Fatalf("%s: delivered %+v, stored %+v", r, delivered[i], stored[i])
			}
		}
		total += len(stored)
	}
	if total != goroutines*each {
		t.Fatalf("stored %d, want %d", total, goroutines*each)
	}
	if log.calls >= total {
		t.Logf("no batching happened: %d commits for %d messages", log.calls, total)
	}
}

// TestBatchIsolatesFailures holds the committer inside OnCommit so that the next requests queue up
// and are committed together, then checks that the bad ones fail alone. The store runs with
// Synchronous NORMAL, where the committer itself calls OnCommit (with FULL the WAL syncer does,
// and the committer goes on to the next batch).
func TestBatchIsolatesFailures(t *testing.T) {
	ctx := t.Context()
	entered := make(chan struct{}, 1)
	gate := make(chan struct{})
	var mu sync.Mutex
	var batches [][]natter.Message
	s := mustOpen(t, Config{Synchronous: "NORMAL", OnCommit: func(msgs []natter.Message) {
		mu.Lock()
		batches = append(batches, msgs)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			entered <- struct{}{}
			<-gate
		}
	}})

	type result struct {
		msg     natter.Message
		created bool
		err     error
	}
	appendAsync := func(ctx context.Context, req natter.AppendRequest) chan result {
		ch := make(chan result, 1)
		go func() {
			m, c, err := s.AppendMessage(ctx, req)
			ch <- result{m, c, err}
		}()
		return ch
	}
	queued := func(n int) func() bool { return func() bool { return len(s.appends) == n } }

	first := appendAsync(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "first"})
	<-entered // the committer is now stuck in OnCommit for the first batch

	unknown := appendAsync(ctx, natter.AppendRequest{Room: "nope", Author: "alice", Body: "lost"})
	waitFor(t, "1 queued", queued(1))
	dupA := appendAsync(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "bob", Body: "a", ClientID: "k"})
	waitFor(t, "2 queued", queued(2))
	dupB := appendAsync(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "bob", Body: "b", ClientID: "k"})
	waitFor(t, "3 queued", queued(3))
	leaveCtx, leave := context.WithCancel(ctx)
	gone := appendAsync(leaveCtx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "carol", Body: "gone"})
	waitFor(t, "4 queued", queued(4))
	leave()
	if r := <-gone; natter.ErrorCode(r.err) != natter.EUNAVAILABLE || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("canceled append: %v, want EUNAVAILABLE wrapping context.Canceled", r.err)
	}
	last := appendAsync(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "dave", Body: "last"})
	waitFor(t, "5 queued", queued(5))
	close(gate)

	if r := <-first; r.err != nil || r.msg.Seq != 1 {
		t.Fatalf("first: %+v", r)
	}
	wantCode(t, (<-unknown).err, natter.ENOTFOUND)
	a, b := <-dupA, <-dupB
	if a.err != nil || b.err != nil {
		t.Fatalf("duplicates: %v, %v", a.err, b.err)
	}
	if a.msg != b.msg || a.created == b.created || a.msg.Body != "a" || a.msg.Seq != 2 {
		t.Fatalf("in-batch duplicates: %+v and %+v; want one created message, seq 2, body a", a, b)
	}
	if r := <-last; r.err != nil || !r.created || r.msg.Seq != 3 {
		t.Fatalf("last: %+v, want created seq 3 (the canceled request took no seq)", r)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 2 || len(batches[1]) != 2 || batches[1][0] != a.msg || batches[1][1].Seq != 3 {
		t.Fatalf("OnCommit batches = %+v, want [[1] [2 3]]", batches)
	}
	stored, err := s.MessagesAfter(ctx, natter.DefaultRoom, 0, 100)
	must(t, err)
	if len(stored) != 3 || stored[2].Author != "dave" {
		t.Fatalf("stored %+v, want first, a, last", stored)
	}
}

// takeSeq2 stores lobby's seq 2 (by "mallory") behind the store's back, from a connection of its
// own: the committer, which caches the room's last seq at 1, then fails its next batch.
func takeSeq2(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	must(t, err)
	defer db.Close()
	_, err = db.Exec(`INSERT INTO messages (room, seq, id, client_id, author, body, ts) VALUES ('lobby', 2, 'x', '', 'mallory', 'two', 1);
		UPDATE rooms SET last_seq = 2 WHERE name = 'lobby'`)
	must(t, err)
}

// TestFailedBatchKeepsSeqsGapless makes a batch fail (another writer took the seq the committer
// expects) and checks that callers get EINTERNAL and that the committer recovers from the database.
func TestFailedBatchKeepsSeqsGapless(t *testing.T) {
	ctx := t.Context()
	var log commitLog
	path := filepath.Join(t.TempDir(), "natter.db")
	s := mustOpen(t, Config{Path: path, OnCommit: log.onCommit})
	m, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "one"})
	must(t, err)

	takeSeq2(t, path)

	_, _, err = s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "three?", ClientID: "c3"})
	wantCode(t, err, natter.EINTERNAL)
	m3, created, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "three", ClientID: "c3"})
	must(t, err)
	if !created || m3.Seq != 3 || m3.Body != "three" {
		t.Fatalf("append after a failed batch = %+v, created %v; want seq 3, body three", m3, created)
	}
	stored, err := s.MessagesAfter(ctx, natter.DefaultRoom, 0, 100)
	must(t, err)
	if len(stored) != 3 || stored[0] != m || stored[1].Author != "mallory" || stored[2] != m3 {
		t.Fatalf("stored %+v", stored)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if got := log.rooms[natter.DefaultRoom]; len(got) != 2 || got[0] != m || got[1] != m3 {
		t.Fatalf("OnCommit delivered %+v; the failed batch must not be delivered", got)
	}
}

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func TestTimesComeFromNow(t *testing.T) {
	ctx := t.Context()
	zone := time.FixedZone("UTC+5", 5*3600)
	start := time.Date(2026, 11, 27, 9, 30, 40, 123456789, zone)
	clk := &clock{t: start}
	s := mustOpen(t, Config{Now: clk.Now})

	m, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "hi"})
	must(t, err)
	if m.TS != start.UTC() {
		t.Fatalf("ts = %v, want %v in UTC", m.TS, start)
	}
	r, err := s.CreateRoom(ctx, natter.Room{Name: "ops"})
	must(t, err)
	if r.CreatedAt != start.UTC() {
		t.Fatalf("room created_at = %v, want %v", r.CreatedAt, start.UTC())
	}

	must(t, s.CreateSession(ctx, natter.Session{TokenHash: "th", UserName: "alice", ExpiresAt: start.Add(time.Hour)}))
	sess, err := s.SessionByTokenHash(ctx, "th")
	must(t, err)
	if sess.CreatedAt != start.UTC() {
		t.Fatalf("session created_at = %v, want now", sess.CreatedAt)
	}
	clk.Set(start.Add(time.Hour - time.Nanosecond))
	if _, err := s.SessionByTokenHash(ctx, "th"); err != nil {
		t.Fatalf("a nanosecond before expiry: %v", err)
	}
	clk.Set(start.Add(time.Hour))
	_, err = s.SessionByTokenHash(ctx, "th")
	wantCode(t, err, natter.EUNAUTHORIZED)
}

func TestPagingDefaults(t *testing.T) {
	ctx := t.Context()
	s := mustOpen(t, Config{Synchronous: "NORMAL"})
	n := natter.DefaultPageSize + 5
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	after, err := s.MessagesAfter(ctx, natter.DefaultRoom, 0, 0)
	must(t, err)
	if len(after) != natter.DefaultPageSize || after[0].Seq != 1 {
		t.Fatalf("MessagesAfter with limit 0: %d messages from seq %d, want %d from 1", len(after), after[0].Seq, natter.DefaultPageSize)
	}
	// before <= 0 asks for the newest page, as a client does without a cursor.
	newest, err := s.MessagesBefore(ctx, natter.DefaultRoom, 0, 3)
	must(t, err)
	if len(newest) != 3 || newest[0].Seq != int64(n-2) || newest[2].Seq != int64(n) {
		t.Fatalf("MessagesBefore(0, 3) = %+v, want the newest three", newest)
	}
	page, err := s.MessagesBefore(ctx, natter.DefaultRoom, 0, -1)
	must(t, err)
	if len(page) != natter.DefaultPageSize || page[len(page)-1].Seq != int64(n) {
		t.Fatalf("MessagesBefore with limit -1: %d messages ending at %d", len(page), page[len(page)-1].Seq)
	}
}

func TestMaxBodyChars(t *testing.T) {
	s := mustOpen(t, Config{MaxBodyChars: 5})
	_, _, err := s.AppendMessage(t.Context(), natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "héllo!"})
	wantCode(t, err, natter.ETOOLARGE)
	_, created, err := s.AppendMessage(t.Context(), natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "héllo"})
	if err != nil || !created {
		t.Fatalf("5 characters with MaxBodyChars 5: created %v, %v", created, err)
	}
}

// TestCheckpointsKeepWALBounded commits one append per transaction, so that the WAL would grow by
// at least two frames per append if nothing copied it back and rewound it.
func TestCheckpointsKeepWALBounded(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	s := mustOpen(t, Config{Path: path, Synchronous: "NORMAL", MaxBatch: 1, CheckpointEvery: 64})
	const appends = 6000
	const frameBytes = 4096 + 24
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range appends / 4 {
				if _, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: fmt.Sprint("u", g), Body: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st, err := os.Stat(path + "-wal")
	must(t, err)
	if unbounded := int64(2 * appends * frameBytes); st.Size() > unbounded/3 {
		t.Fatalf("WAL is %d bytes after %d single-append commits; without rewinds it would be about %d", st.Size(), appends, unbounded)
	}
	// And the data reached the database file itself, before any Close.
	db, err := os.Stat(path)
	must(t, err)
	if db.Size() < 8*4096 {
		t.Fatalf("database file is %d bytes: nothing was checkpointed", db.Size())
	}
}

// TestAppendAsync covers AppendMessageAsync, the method server/ws uses (through natter.AsyncAppender)
// to keep several of one connection's sends in flight.
func TestAppendAsync(t *testing.T) {
	ctx := t.Context()
	var log commitLog
	s := mustOpen(t, Config{OnCommit: log.onCommit})

	type result struct {
		i       int
		msg     natter.Message
		created bool
		err     error
		seen    bool // OnCommit had delivered the message when done ran
	}
	const n = 200
	results := make(chan result, n+1)
	for i := range n {
		req := natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: fmt.Sprint(i), ClientID: fmt.Sprint("c", i)}
		if i == n/2 {
			req.Room = "nope" // fails alone, in whichever batch it lands
		}
		err := s.AppendMessageAsync(ctx, req, func(m natter.Message, created bool, err error) {
			results <- result{i, m, created, err, err == nil && log.has(m)}
		})
		must(t, err)
	}
	// Rejected before queueing: done must never run.
	err := s.AppendMessageAsync(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: ""}, func(natter.Message, bool, error) {
		results <- result{i: -1}
	})
	wantCode(t, err, natter.EINVALID)

	var want int64 = 1
	for range n {
		r := <-results
		if r.i == n/2 {
			wantCode(t, r.err, natter.ENOTFOUND)
			continue
		}
		if r.err != nil || !r.created || !r.seen {
			t.Fatalf("append %d: %+v; want created, delivered to OnCommit before done", r.i, r)
		}
		// One goroutine's appends are stored, and answered, in the order it queued them.
		if r.msg.Seq != want || r.msg.Body != fmt.Sprint(r.i) {
			t.Fatalf("append %d got seq %d (body %q), want seq %d", r.i, r.msg.Seq, r.msg.Body, want)
		}
		want++
	}

	must(t, s.Close())
	err = s.AppendMessageAsync(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "late"}, func(natter.Message, bool, error) {
		results <- result{i: -2}
	})
	wantCode(t, err, natter.EUNAVAILABLE)
	select {
	case r := <-results:
		t.Fatalf("done ran for a rejected append: %+v", r)
	default:
	}
}

// TestSweepSessions: expired sessions are deleted from the table, in batches, and live ones kept;
// the sweeper also runs at Open.
func TestSweepSessions(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	path := filepath.Join(t.TempDir(), "natter.db")
	s := mustOpen(t, Config{Path: path, Now: now})
	ctx := t.Context()
	expired := sessionSweepBatch + 7 // more than one batch
	for i := range expired {
		must(t, s.CreateSession(ctx, natter.Session{TokenHash: fmt.Sprint("old-", i), UserName: "alice", ExpiresAt: now().Add(time.Hour)}))
	}
	must(t, s.CreateSession(ctx, natter.Session{TokenHash: "live", UserName: "alice", ExpiresAt: now().Add(48 * time.Hour)}))
	rows := func(s *Store) (n int) {
		t.Helper()
		if err := s.readDB.QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n, err := s.SweepSessions(ctx); err != nil || n != 0 {
		t.Fatalf("sweep before any expired: %d, %v", n, err)
	}
	clock.Add(int64(2 * time.Hour))
	if n, err := s.SweepSessions(ctx); err != nil || n != int64(expired) {
		t.Fatalf("sweep: %d, %v; want %d", n, err, expired)
	}
	if n := rows(s); n != 1 {
		t.Fatalf("%d sessions left, want the live one", n)
	}
	if _, err := s.SessionByTokenHash(ctx, "live"); err != nil {
		t.Fatal(err)
	}

	// At Open: a session that expired while the store was closed is gone soon after it opens.
	must(t, s.CreateSession(ctx, natter.Session{TokenHash: "short", UserName: "bob", ExpiresAt: now().Add(time.Minute)}))
	must(t, s.Close())
	clock.Add(int64(time.Hour))
	s = mustOpen(t, Config{Path: path, Now: now})
	deadline := time.Now().Add(20 * time.Second)
	for rows(s) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions 20 s after Open, want the live one only", rows(s))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
