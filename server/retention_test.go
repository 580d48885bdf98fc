package server_test

import (
	"strings"
	"testing"
	"time"

	"natter/app"
)

// TestRetention: with a retention, the server erases the words of the messages older than it,
// over and over, as a deletion does: every read then has them in their place, deleted, search
// finds them no more, and what is newer keeps its words. It says so in its log.
func TestRetention(t *testing.T) {
	ts, logs := startServerLogged(t, func(c *app.Config) {
		c.Server.Retention = time.Second // natter serve takes an hour at least
		c.Server.RetentionEvery = 20 * time.Millisecond
	})
	ann := ts.account("ann")
	old := ts.mustPost(ann, "lobby", "the wifi password is hunter2")
	waitFor(t, "the old message erased", func() bool {
		page := ts.read(ann, "/api/rooms/lobby/messages?after=0")
		return len(page.Messages) == 1 && page.Messages[0].Deleted && page.Messages[0].Body == ""
	})
	posted := time.Now()
	fresh := ts.mustPost(ann, "lobby", "the new one is swordfish")
	page := ts.read(ann, "/api/rooms/lobby/messages?after=0")
	if len(page.Messages) != 2 || page.Messages[0].Seq != old.Seq || page.Messages[0].Author != "ann" || !page.Messages[0].Deleted {
		t.Fatalf("the log after the expiry: %+v", page.Messages)
	}
	// The new message keeps its words until it is a second old (a slow machine may take longer
	// than that to read it: then it may have been erased too, rightly).
	if m := page.Messages[1]; m.Body != fresh.Body && time.Since(posted) < time.Second {
		t.Fatalf("the new message, read within the retention: %+v", m)
	}
	if found := ts.search(ann, "lobby", "q=hunter2"); len(found.Messages) != 0 {
		t.Fatalf("search found the expired message: %+v", found.Messages)
	}
	if !strings.Contains(logs.String(), `msg="retention: erased the words of old messages" entries=1`) {
		t.Errorf("the log lacks the retention's line:\n%s", logs.String())
	}
}
