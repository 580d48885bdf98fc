package sqlite

import (
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"natter"
)

// keyedReq is the i-th request of a test that spreads keys over rooms and authors.
func keyedReq(rooms []string, i int) natter.AppendRequest {
	return natter.AppendRequest{
		Room:     rooms[i%len(rooms)],
		Author:   fmt.Sprint("u", i%7),
		Body:     fmt.Sprint("body ", i),
		ClientID: fmt.Sprint("c-", i),
	}
}

// wantOriginals retries every request of sent and fails t unless each gets its original back and
// nothing new is stored.
func wantOriginals(t *testing.T, s *Store, reqs []natter.AppendRequest, sent []natter.Message) {
	t.Helper()
	for i, req := range reqs {
		req.Body = "retry"
		m, created, err := s.AppendMessage(t.Context(), req)
		must(t, err)
		if created || m != sent[i] {
			t.Fatalf("retry of request %d = %+v (created %v), want the original %+v", i, m, created, sent[i])
		}
	}
}

// TestIdempotencyAcrossSweeps retries every key while its entry moves from memory to client_keys,
// and after reopening at a point where a sweep is half done.
func TestIdempotencyAcrossSweeps(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	// One bucket moves every 4 messages; a sweep is 16 messages.
	cfg := Config{Path: path, keyBuckets: 4, keyBucketEvery: 4}
	s := mustOpen(t, cfg)
	rooms := []string{natter.DefaultRoom, "ops", "dev"}
	for _, r := range rooms[1:] {
		_, err := s.CreateRoom(ctx, natter.Room{Name: r})
		must(t, err)
	}
	const n = 150 // 150 mod 16 = 6: Close comes in the middle of a sweep
	var reqs []natter.AppendRequest
	var sent []natter.Message
	for i := range n {
		req := keyedReq(rooms, i)
		m, created, err := s.AppendMessage(ctx, req)
		must(t, err)
		if !created {
			t.Fatalf("request %d: created = false", i)
		}
		reqs, sent = append(reqs, req), append(sent, m)
		if i%10 == 9 {
			// Everything so far, wherever its key is now.
			wantOriginals(t, s, reqs, sent)
		}
	}
	must(t, s.Close())
	// The committer is done, so its state can be read: the sweeps kept memory bounded and moved
	// the rest to client_keys.
	if s.keys.n > 2*4*4+1 {
		t.Fatalf("%d keys in memory after %d appends; sweeps of 16 should keep it near 32", s.keys.n, n)
	}
	db, err := sql.Open("sqlite", path)
	must(t, err)
	defer db.Close()
	var indexed, watermarks int
	must(t, db.QueryRow("SELECT COUNT(*) FROM client_keys").Scan(&indexed))
	must(t, db.QueryRow("SELECT COUNT(*) FROM rooms WHERE keys_seq > 0").Scan(&watermarks))
	if indexed < n-2*16 || watermarks != len(rooms) {
		t.Fatalf("client_keys has %d of %d keys, %d rooms have a keys_seq: the sweep is not moving them", indexed, n, watermarks)
	}

	// Memory starts empty; the keys after keys_seq come back from the messages table.
	s = mustOpen(t, cfg)
	wantOriginals(t, s, reqs, sent)
	for i, r := range rooms {
		got, err := s.MessagesAfter(ctx, r, 0, 1000)
		must(t, err)
		if want := n / len(rooms); len(got) != want {
			t.Fatalf("%s holds %d messages, want %d", rooms[i], len(got), want)
		}
	}
}

// TestHashCollisions gives every key the same hash, so that only the comparison of full keys keeps
// them apart: in one batch, in memory, in client_keys and after reopening.
func TestHashCollisions(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	cfg := Config{Path: path, keyOf: func(string, string, string) int64 { return 42 }, keyBuckets: 2, keyBucketEvery: 3}
	s := mustOpen(t, cfg)
	_, err := s.CreateRoom(ctx, natter.Room{Name: "ops"})
	must(t, err)
	rooms := []string{natter.DefaultRoom, "ops"}

	// Concurrent senders, so that batches hold several colliding keys, some of them repeats.
	const senders, each = 8, 12
	reqs := make([]natter.AppendRequest, senders*each)
	sent := make([]natter.Message, senders*each)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				k := g*each + i
				req := keyedReq(rooms, k)
				m, created, err := s.AppendMessage(ctx, req)
				if err != nil || !created {
					t.Errorf("request %d: created %v, %v", k, created, err)
					return
				}
				if again, created, err := s.AppendMessage(ctx, req); err != nil || created || again != m {
					t.Errorf("request %d again: %+v, created %v, %v; want %+v", k, again, created, err, m)
					return
				}
				reqs[k], sent[k] = req, m
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	wantOriginals(t, s, reqs, sent)
	must(t, s.Close())
	s = mustOpen(t, cfg)
	wantOriginals(t, s, reqs, sent)
	var stored int
	must(t, s.readDB.QueryRow("SELECT COUNT(*) FROM messages").Scan(&stored))
	if stored != len(reqs) {
		t.Fatalf("%d messages stored for %d distinct keys", stored, len(reqs))
	}
}

// TestFailedBatchKeepsKeys fails a batch that also moves keys from memory to client_keys: the
// rollback undoes the move, so memory must still hold them.
func TestFailedBatchKeepsKeys(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	// Every batch moves the only bucket, which holds every key committed before it.
	s := mustOpen(t, Config{Path: path, keyBuckets: 1, keyBucketEvery: 1})
	req := natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "one", ClientID: "c1"}
	orig, _, err := s.AppendMessage(ctx, req)
	must(t, err)

	takeSeq2(t, path)
	_, _, err = s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "lost", ClientID: "c2"})
	wantCode(t, err, natter.EINTERNAL)

	var indexed int
	must(t, s.readDB.QueryRow("SELECT COUNT(*) FROM client_keys").Scan(&indexed))
	if indexed != 0 {
		t.Fatalf("client_keys has %d keys after the batch that moved them rolled back", indexed)
	}
	m, created, err := s.AppendMessage(ctx, req)
	must(t, err)
	if created || m != orig {
		t.Fatalf("retry after a failed batch = %+v (created %v), want %+v", m, created, orig)
	}
}

// schemaV1 writes a database the way migration 1 and the code before migration 2 left it.
func schemaV1(t *testing.T, path string, msgs []natter.Message) {
	t.Helper()
	body, err := migrations.ReadFile("migrations/0001_init.sql")
	must(t, err)
	db, err := sql.Open("sqlite", path)
	must(t, err)
	defer db.Close()
	_, err = db.Exec(string(body))
	must(t, err)
	_, err = db.Exec(`CREATE TABLE schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT;
	INSERT INTO schema_migrations VALUES (1, '0001_init.sql', 1);
	INSERT INTO rooms (name, title, epoch, last_seq, created_by, created_at) VALUES
		('lobby', 'Lobby', 'e1', 0, '', 1), ('ops', 'Ops', 'e2', 0, 'alice', 1)`)
	must(t, err)
	for _, m := range msgs {
		// The old committer's statements.
		_, err := db.Exec(`INSERT INTO messages (room, seq, id, client_id, author, body, ts) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (room, author, client_id) WHERE client_id != '' DO NOTHING`,
			m.Room, m.Seq, m.ID, m.ClientID, m.Author, m.Body, m.TS.UnixNano())
		must(t, err)
		_, err = db.Exec(`UPDATE rooms SET last_seq = ? WHERE name = ?`, m.Seq, m.Room)
		must(t, err)
	}
}

// TestUpgradeKeepsIdempotency opens a database written with schema 1 (the UNIQUE index on
// messages) and checks that every stored key still finds its message after migration 2.
func TestUpgradeKeepsIdempotency(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	var old []natter.Message
	seqs := map[string]int64{}
	for i := range 40 {
		room := []string{"lobby", "ops"}[i%2]
		seqs[room]++
		m := natter.Message{Room: room, Seq: seqs[room], ID: fmt.Sprint("id", i), Author: fmt.Sprint("u", i%3),
			Body: fmt.Sprint("old ", i), TS: fromNanos(int64(1e18 + i))}
		if i%4 != 3 {
			m.ClientID = fmt.Sprint("k", i)
		}
		old = append(old, m)
	}
	schemaV1(t, path, old)

	s, err := Open(ctx, Config{Path: path, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	var version, indexed, stale, oldIndex int
	must(t, s.writeDB.QueryRow("SELECT MAX(version) FROM schema_migrations").Scan(&version))
	must(t, s.writeDB.QueryRow("SELECT COUNT(*) FROM client_keys").Scan(&indexed))
	must(t, s.writeDB.QueryRow("SELECT COUNT(*) FROM rooms WHERE keys_seq != last_seq").Scan(&stale))
	must(t, s.writeDB.QueryRow("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'messages_client_id'").Scan(&oldIndex))
	if version < 2 || indexed != 30 || stale != 0 || oldIndex != 0 {
		t.Fatalf("after the upgrade: version %d, %d keys indexed (want 30), %d rooms with keys_seq behind, old index present %d",
			version, indexed, stale, oldIndex)
	}
	if s.keys.n != 0 {
		t.Fatalf("%d keys in memory: the backfill should have indexed them all", s.keys.n)
	}
	var reqs []natter.AppendRequest
	var keyed []natter.Message
	for _, m := range old {
		if m.ClientID != "" {
			reqs = append(reqs, natter.AppendRequest{Room: m.Room, Author: m.Author, Body: m.Body, ClientID: m.ClientID})
			keyed = append(keyed, m)
		}
	}
	wantOriginals(t, s, reqs, keyed)

	// New sends carry on after the old seqs, are idempotent themselves, and all of it survives a
	// reopen.
	req := natter.AppendRequest{Room: "ops", Author: "u1", Body: "new", ClientID: "k-new"}
	m, created, err := s.AppendMessage(ctx, req)
	must(t, err)
	if !created || m.Seq != 21 {
		t.Fatalf("first append after the upgrade: %+v, created %v; want seq 21", m, created)
	}
	reqs, keyed = append(reqs, req), append(keyed, m)
	wantOriginals(t, s, reqs, keyed)
	must(t, s.Close())
	s = mustOpen(t, Config{Path: path})
	wantOriginals(t, s, reqs, keyed)
}

// TestClientKeyStable pins clientKey: client_keys stores its values, so a change would lose every
// stored key's idempotency.
func TestClientKeyStable(t *testing.T) {
	// The first 8 bytes of SHA-256 over each field's length (a uvarint) and bytes, big-endian.
	for _, tc := range []struct {
		room, author, clientID string
		want                   int64
	}{
		{"lobby", "alice", "c-0123456789abcdef", 7903458777594100584},
		{"lobby", "alic", "ec-0123456789abcdef", 2935898605191437109},
	} {
		if got := clientKey(tc.room, tc.author, tc.clientID); got != tc.want {
			t.Errorf("clientKey(%q, %q, %q) = %d, want %d", tc.room, tc.author, tc.clientID, got, tc.want)
		}
	}
	long := strings.Repeat("é", 64)
	if clientKey("lobby", long, long) == clientKey("lobby", long+long, "") {
		t.Error("fields that concatenate alike hash alike")
	}
}
