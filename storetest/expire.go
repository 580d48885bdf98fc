package storetest

import (
	"sync"
	"testing"
	"time"

	"natter"
)

// testExpireBefore: retention erases the words of the messages and edits stored before the
// cutoff, in every room, as a deletion does (their place in the log stays); reactions, pins and
// deletions keep what they hold, and what came after the cutoff is untouched. Called again, it
// goes on from where it got to.
func testExpireBefore(t *testing.T, s natter.Store) {
	ctx := t.Context()
	mustCreateRoom(t, s, "old")
	a := mustAppend(t, s, natter.AppendRequest{Room: "old", Author: "ann", Body: "my phone is 555-0100"})
	mustAppend(t, s, natter.AppendRequest{Room: "old", Author: "ann", Body: "my phone is 555-0199", Kind: natter.KindEdit, Target: a.Seq})
	mustAppend(t, s, natter.AppendRequest{Room: "old", Author: "bob", Body: "👍", Kind: natter.KindReact, Target: a.Seq})
	mustAppend(t, s, natter.AppendRequest{Room: "lobby", Author: "bob", Body: "lobby, early"})
	time.Sleep(20 * time.Millisecond) // the stores stamp entries with their own clocks
	cutoff := time.Now()
	time.Sleep(20 * time.Millisecond)
	mustAppend(t, s, natter.AppendRequest{Room: "old", Author: "ann", Body: "still fresh"})

	n, err := s.ExpireBefore(ctx, cutoff)
	must(t, err)
	if n != 3 {
		t.Fatalf("ExpireBefore erased %d entries, want 3 (a message, its edit, the lobby's message)", n)
	}
	msgs := mustAfter(t, s, "old", 0, 10)
	wantSeqs(t, msgs, 1, 2, 3, 4)
	for _, i := range []int{0, 1} {
		if m := msgs[i]; !m.Deleted || m.Body != "" || m.Author != "ann" {
			t.Fatalf("expired entry %d: %+v, want it erased in its place", m.Seq, m)
		}
	}
	if m := msgs[2]; m.Deleted || m.Body != "👍" {
		t.Fatalf("the reaction: %+v, want it kept", m)
	}
	if m := msgs[3]; m.Deleted || m.Body != "still fresh" {
		t.Fatalf("the message after the cutoff: %+v", m)
	}
	if m := mustBefore(t, s, "lobby", 2, 10); len(m) != 1 || !m[0].Deleted {
		t.Fatalf("the lobby's early message: %+v, want it erased", m)
	}
	changes, err := s.ChangesSince(ctx, "old", 0, 10)
	must(t, err)
	for _, c := range changes {
		if c.Kind == natter.KindEdit && (c.Body != "" || !c.Deleted) {
			t.Fatalf("the edit among the changes: %+v, want it erased", c)
		}
	}
	if n, err := s.ExpireBefore(ctx, cutoff); err != nil || n != 0 {
		t.Fatalf("ExpireBefore again: %d, %v; want nothing left", n, err)
	}

	// Later, the cutoff moves on: what was fresh expires, nothing is erased twice.
	time.Sleep(20 * time.Millisecond)
	n, err = s.ExpireBefore(ctx, time.Now())
	must(t, err)
	if n != 1 {
		t.Fatalf("ExpireBefore(now) erased %d, want the 1 message left", n)
	}
	if m := mustAfter(t, s, "old", 3, 10); len(m) != 1 || !m[0].Deleted {
		t.Fatalf("seq 4 after the second expiry: %+v", m)
	}
	mustAppend(t, s, natter.AppendRequest{Room: "old", Author: "ann", Body: "new"})
	if m := mustAfter(t, s, "old", 4, 10); len(m) != 1 || m[0].Body != "new" {
		t.Fatalf("a message after the expiry: %+v", m)
	}
}

// testEraseLongLogs: retention and an author's erasing go through logs longer than the stores'
// chunks and spans (thousands of entries) and miss none of them.
func testEraseLongLogs(t *testing.T, s natter.Store) {
	ctx := t.Context()
	mustCreateRoom(t, s, "long")
	const n = 5300 // past SQLite's 5,000-seq span of EraseAuthor, and several chunks of each store
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			author := "ann"
			if w%2 == 1 {
				author = "bob"
			}
			for range n / 8 {
				if _, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: "long", Author: author, Body: "words"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := int64(n / 8 * 8)
	erased, err := s.EraseAuthor(ctx, "ann")
	must(t, err)
	if erased != total/2 {
		t.Fatalf("EraseAuthor(ann) erased %d of the long log's %d, want %d", erased, total, total/2)
	}
	time.Sleep(20 * time.Millisecond)
	expired, err := s.ExpireBefore(ctx, time.Now())
	must(t, err)
	if expired != total/2 {
		t.Fatalf("ExpireBefore(now) erased %d, want the %d left (bob's)", expired, total/2)
	}
	last := mustBefore(t, s, "long", total+1, 1)
	if len(last) != 1 || !last[0].Deleted || last[0].Seq != total {
		t.Fatalf("the long log's last entry: %+v", last)
	}
}
