package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"natter"
)

// TestBackupWhileWritingAndRestore: a backup taken while messages are being committed is one
// consistent snapshot (every room's last_seq is the highest seq it holds, with no gap below), its
// rooms have new epochs, and restoring it (refused while a Store has the database open) gives a
// store that goes on from the copy's last seq.
func TestBackupWhileWritingAndRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "natter.db")
	s := mustOpen(t, Config{Path: path})
	if _, err := s.CreateRoom(ctx, natter.Room{Name: "ops", Title: "Ops"}); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, r := range []string{natter.DefaultRoom, "ops"} {
		room, err := s.Room(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		before[r] = room.Epoch
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, room := range []string{natter.DefaultRoom, "ops", natter.DefaultRoom} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: room, Author: fmt.Sprint("w", i), Body: fmt.Sprint("m", n)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for {
		if r, _ := s.Room(ctx, "ops"); r.LastSeq >= 50 {
			break
		}
	}
	out := filepath.Join(dir, "backup.db")
	rooms, msgs, err := Backup(ctx, path, out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if rooms != 2 || msgs < 50 {
		t.Fatalf("backup of %d rooms, %d messages", rooms, msgs)
	}
	if _, _, err := Backup(ctx, path, out); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a backup onto an existing file: %v", err)
	}
	if _, _, err := Backup(ctx, filepath.Join(dir, "nothing.db"), filepath.Join(dir, "b2.db")); err == nil {
		t.Fatal("a backup of no database succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "nothing.db")); err == nil {
		t.Fatal("a backup of no database created one")
	}

	// Restoring is refused while the store is open, and changes nothing.
	if err := Restore(ctx, out, path); err == nil || !strings.Contains(err.Error(), "in use by another natter") {
		t.Fatalf("restore under a running store: %v", err)
	}
	live, err := s.Room(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Restore(ctx, out, path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".before-restore"); err != nil {
		t.Fatalf("the replaced database was not kept: %v", err)
	}
	if err := Restore(ctx, out, path); err == nil || !strings.Contains(err.Error(), "earlier restore") {
		t.Fatalf("a second restore over a kept database: %v", err)
	}

	r := mustOpen(t, Config{Path: path})
	var total int64
	for _, name := range []string{natter.DefaultRoom, "ops"} {
		room, err := r.Room(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if room.Epoch == before[name] || room.Epoch == "" {
			t.Fatalf("%s: epoch %q after restore, was %q: a restored log needs a new one", name, room.Epoch, before[name])
		}
		got, err := r.MessagesAfter(ctx, name, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(got)) != room.LastSeq {
			t.Fatalf("%s: %d messages, last_seq %d: not one snapshot", name, len(got), room.LastSeq)
		}
		for i, m := range got {
			if m.Seq != int64(i+1) {
				t.Fatalf("%s: seq %d at %d", name, m.Seq, i)
			}
		}
		total += room.LastSeq
	}
	if total != msgs {
		t.Fatalf("restored %d messages, the backup said %d", total, msgs)
	}
	ops, _ := r.Room(ctx, "ops")
	if ops.LastSeq > live.LastSeq {
		t.Fatalf("restored ops at %d, beyond the live %d", ops.LastSeq, live.LastSeq)
	}
	m, _, err := r.AppendMessage(ctx, natter.AppendRequest{Room: "ops", Author: "ann", Body: "after the restore"})
	if err != nil || m.Seq != ops.LastSeq+1 {
		t.Fatalf("append after restore: seq %d (last %d), %v", m.Seq, ops.LastSeq, err)
	}
}

// TestRestoreRefusesWhatIsNotABackup: a file that is not a natter database is refused, and the
// database stays as it was.
func TestRestoreRefusesWhatIsNotABackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "natter.db")
	s := mustOpen(t, Config{Path: path})
	s.Close()
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte("not a database at all, not even close"), 0o600)
	if err := Restore(ctx, junk, path); err == nil || !strings.Contains(err.Error(), "not a natter database") {
		t.Fatalf("restore of junk: %v", err)
	}
	if err := Restore(ctx, filepath.Join(dir, "missing.db"), path); err == nil {
		t.Fatal("restore of a missing file succeeded")
	}
	if _, err := os.Stat(path + ".before-restore"); err == nil {
		t.Fatal("a refused restore moved the database")
	}
}
