package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"natter"
)

// roomRows counts what the database file holds of room, table by table.
func roomRows(t *testing.T, db *sql.DB, room string) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for _, table := range []string{"messages", "client_keys", "room_pins", "room_bans", "room_members", "room_invites", "read_marks", "hidden_rooms", "muted_rooms"} {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM `+table+` WHERE room = ?`, room).Scan(&n); err != nil {
			t.Fatal(err)
		}
		got[table] = n
	}
	return got
}

func waitPurged(t *testing.T, purged <-chan string, room string) {
	t.Helper()
	for {
		select {
		case r := <-purged:
			if r == room {
				return
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("room %s was not purged", room)
		}
	}
}

// TestDeleteRoomPurges: once a room is deleted, the purger empties every table of it, in chunks,
// and leaves its row, marked deleted and purged, so that the name stays taken after a restart.
// A purge cut short (here: a deletion stored by an earlier run that never purged) is finished
// after the next Open.
func TestDeleteRoomPurges(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "natter.db")
	purged := make(chan string, 10)
	// A sweep of idempotency keys every 2,048 messages: the room's last keys are still in memory
	// when it is deleted.
	cfg := Config{Path: path, keyBuckets: 4, keyBucketEvery: 512, onPurged: func(room string) { purged <- room }}
	s := mustOpen(t, cfg)

	if _, err := s.CreateRoom(ctx, natter.Room{Name: "big", Private: true, CreatedBy: "ann"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMember(ctx, "big", "bob", "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetRoomTopic(ctx, "big", "what we plan"); err != nil {
		t.Fatal(err)
	}
	inv, hash := natter.Invite{Room: "big", CreatedBy: "ann", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}, natter.InviteHash("code")
	inv.ID = natter.InviteID(hash)
	if err := s.CreateInvite(ctx, inv, hash); err != nil {
		t.Fatal(err)
	}
	const n = 2*purgeChunk + 321 // three chunks
	appendMany(t, s, "big", n)
	if _, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: "big", Author: "ann", Kind: natter.KindPin, Target: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.BanUser(ctx, "big", natter.Ban{User: "mal", By: "ann"}); err != nil {
		t.Fatal(err)
	}
	room, _ := s.Room(ctx, "big")
	if err := s.SetReadMark(ctx, "bob", natter.ReadMark{Room: "big", Epoch: room.Epoch, Seq: 5}); err != nil {
		t.Fatal(err)
	}
	if err := s.HideRoom(ctx, "bob", natter.ReadMark{Room: "big", Epoch: room.Epoch, Seq: 5}); err != nil {
		t.Fatal(err)
	}
	if err := s.MuteRoom(ctx, "bob", "big", true); err != nil {
		t.Fatal(err)
	}
	s.flushMarks()
	before := roomRows(t, s.writeDB, "big")
	for table, count := range before {
		if count == 0 {
			t.Fatalf("before the deletion %s holds nothing of the room (%v): the test would prove nothing", table, before)
		}
	}

	if err := s.DeleteRoom(ctx, "big", "ann"); err != nil {
		t.Fatal(err)
	}
	waitPurged(t, purged, "big")
	for table, count := range roomRows(t, s.writeDB, "big") {
		if count != 0 {
			t.Errorf("after the purge %s still holds %d rows of the room", table, count)
		}
	}
	var deletedAt, isPurged int64
	var by, title, topic string
	if err := s.writeDB.QueryRow(`SELECT deleted_at, deleted_by, purged, title, topic FROM rooms WHERE name = 'big'`).Scan(&deletedAt, &by, &isPurged, &title, &topic); err != nil {
		t.Fatal(err)
	}
	if deletedAt <= 0 || by != "ann" || isPurged != 1 || title != "big" || topic != "" {
		t.Fatalf("the deleted room's row: deleted_at %d, by %q, purged %d, title %q, topic %q", deletedAt, by, isPurged, title, topic)
	}
	// Appends to other rooms go on, and the sweep of idempotency keys writes none of the deleted
	// room's (it had some in memory when it was deleted).
	appendMany(t, s, "lobby", 2*4*512)
	if n := roomRows(t, s.writeDB, "big")["client_keys"]; n != 0 {
		t.Fatalf("the sweep wrote %d keys of the deleted room", n)
	}

	// A room the last run deleted and did not purge.
	if _, err := s.CreateRoom(ctx, natter.Room{Name: "half"}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: "half", Author: "ann", Body: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE rooms SET deleted_at = 1, deleted_by = 'ann' WHERE name = 'half'`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = mustOpen(t, cfg)
	if _, err := s.MessagesAfter(ctx, "half", 0, 10); natter.ErrorCode(err) != natter.ENOTFOUND {
		t.Fatalf("reading the unpurged deleted room: %v, want not_found", err)
	}
	waitPurged(t, purged, "half")
	if n := roomRows(t, s.writeDB, "half")["messages"]; n != 0 {
		t.Fatalf("after Open's purge the room still has %d messages", n)
	}
	for _, name := range []string{"big", "half"} {
		if _, err := s.CreateRoom(ctx, natter.Room{Name: name}); natter.ErrorCode(err) != natter.ECONFLICT {
			t.Fatalf("CreateRoom(%s) after a restart: %v, want conflict", name, err)
		}
	}
}

// appendMany appends n keyed messages to room, many in flight at once.
func appendMany(t *testing.T, s *Store, room string, n int) {
	t.Helper()
	done := make(chan error, n)
	for i := range n {
		req := natter.AppendRequest{Room: room, Author: "ann", Body: fmt.Sprintf("secret %d", i), ClientID: fmt.Sprintf("c-%d", i)}
		if err := s.AppendMessageAsync(context.Background(), req, func(_ natter.Message, _ bool, err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
