package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"natter"
)

// storedMarkRows counts user's rows in read_marks, as a reader of the file sees them.
func storedMarkRows(t *testing.T, s *Store, user string) int {
	t.Helper()
	var n int
	if err := s.readDB.QueryRow(`SELECT count(*) FROM read_marks WHERE user_name = ?`, user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReadMarksAreStored: marks held in memory reach the table by themselves (the writer's pause
// is a second), the last ones at Close, and are there after a reopen; a stored mark of an old
// epoch is replaced by a mark of the room's epoch even when that one is lower.
func TestReadMarksAreStored(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "natter.db")
	s, err := Open(ctx, Config{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	lobby, _ := s.Room(ctx, natter.DefaultRoom)
	for i := range 5 {
		if _, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "ann", Body: "m"}); err != nil {
			t.Fatal(i, err)
		}
	}
	if err := s.SetReadMark(ctx, "ann", natter.ReadMark{Room: natter.DefaultRoom, Epoch: lobby.Epoch, Seq: 2}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ann's mark stored", func() bool { return storedMarkRows(t, s, "ann") == 1 })
	// An old epoch's mark, as a restore leaves them: the room's epoch replaces it, lower or not.
	if _, err := s.writeDB.Exec(`INSERT INTO read_marks (user_name, room, epoch, seq, updated_at) VALUES ('bea', 'lobby', 'old', 4, 0)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range []natter.ReadMark{{Seq: 3}, {Seq: 1}} { // the second stays behind the first
		m.Room, m.Epoch = natter.DefaultRoom, lobby.Epoch
		if err := s.SetReadMark(ctx, "bea", m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetReadMark(ctx, "ann", natter.ReadMark{Room: natter.DefaultRoom, Epoch: lobby.Epoch, Seq: 5}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReadMark(ctx, "ann", natter.ReadMark{Room: natter.DefaultRoom, Epoch: lobby.Epoch, Seq: 5}); natter.ErrorCode(err) != natter.EUNAVAILABLE {
		t.Fatalf("a mark after Close: %v, want unavailable", err)
	}

	s = mustOpen(t, Config{Path: path})
	for user, want := range map[string]int64{"ann": 5, "bea": 3} {
		marks, err := s.ReadMarks(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if len(marks) != 1 || marks[0] != (natter.ReadMark{Room: natter.DefaultRoom, Epoch: lobby.Epoch, Seq: want}) {
			t.Fatalf("%s's marks after a reopen: %+v, want lobby at %d in epoch %s", user, marks, want, lobby.Epoch)
		}
	}
}

// TestChangesAfterUsesItsIndex: counting the changes after a mark reads the partial index of
// edits and deletions, not the messages in between.
func TestChangesAfterUsesItsIndex(t *testing.T) {
	s := mustOpen(t, Config{})
	rows, err := s.readDB.Query(`EXPLAIN QUERY PLAN `+countChangesSQL, "lobby", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if !strings.Contains(strings.Join(plan, "; "), "messages_changes") {
		t.Fatalf("plan %q does not use messages_changes", plan)
	}
}

// TestRoomChangesBackfilled: migration 7 counts the edits and deletions stored before it, and the
// committer keeps the count from then on.
func TestRoomChangesBackfilled(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "natter.db")
	s, err := Open(ctx, Config{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "ann", Body: "helo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "ann", Body: "hello", Kind: natter.KindEdit, Target: first.Seq}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// As a database from before migration 7 would be (every later migration undone).
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`ALTER TABLE rooms DROP COLUMN changes; ALTER TABLE messages DROP COLUMN reply_to;
		ALTER TABLE rooms DROP COLUMN private; DROP TABLE room_members; ALTER TABLE rooms DROP COLUMN direct;
		DROP TABLE room_bans; ALTER TABLE users DROP COLUMN suspended; DROP TABLE hidden_rooms;
		DROP INDEX messages_targets; DROP TABLE room_pins; DROP TABLE room_invites; DROP TABLE muted_rooms;
		ALTER TABLE rooms DROP COLUMN deleted_at; ALTER TABLE rooms DROP COLUMN deleted_by; ALTER TABLE rooms DROP COLUMN purged; ALTER TABLE rooms DROP COLUMN topic;
		DELETE FROM schema_migrations WHERE version >= 7`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = mustOpen(t, Config{Path: path})
	if r, err := s.Room(ctx, natter.DefaultRoom); err != nil || r.Changes != 1 || r.LastSeq != 2 {
		t.Fatalf("lobby after the migration: %+v, %v; want 1 change of 2 entries", r, err)
	}
	if _, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "ann", Kind: natter.KindDelete, Target: first.Seq}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Room(ctx, natter.DefaultRoom); r.Changes != 2 {
		t.Fatalf("changes %d after a deletion, want 2", r.Changes)
	}
}
