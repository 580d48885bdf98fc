//go:build unix

package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"natter"
)

// TestOneStorePerDatabase: while a Store has a database open, a second Open of it fails with an
// error naming the holder, and changes nothing; once the first is closed, it opens.
func TestOneStorePerDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "natter.db")
	cfg := Config{Path: path, Logger: slog.New(slog.DiscardHandler)}
	first, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	msg, _, err := first.AppendMessage(context.Background(), natter.AppendRequest{Room: natter.DefaultRoom, Author: "ann", Body: "first"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Open(context.Background(), cfg)
	if err == nil {
		second.Close()
		t.Fatal("a second Store opened a database the first has open")
	}
	if want := fmt.Sprintf("in use by another natter (pid %d)", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Fatalf("second Open: %v, want it to say %q", err, want)
	}
	// The first goes on as before.
	if m, _, err := first.AppendMessage(context.Background(), natter.AppendRequest{Room: natter.DefaultRoom, Author: "ann", Body: "second"}); err != nil || m.Seq != msg.Seq+1 {
		t.Fatalf("append after the refused Open: %v seq %d", err, m.Seq)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	defer again.Close()
	if msgs, err := again.MessagesAfter(context.Background(), natter.DefaultRoom, 0, 10); err != nil || len(msgs) != 2 {
		t.Fatalf("messages after reopening: %d, %v", len(msgs), err)
	}
}
