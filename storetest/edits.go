package storetest

import (
	"testing"

	"natter"
)

// testEdits: a message's edits, oldest first, and nothing else of the log (not its reactions,
// not another message's edits).
func testEdits(t *testing.T, s natter.Store) {
	ctx := t.Context()
	mustCreateRoom(t, s, "drafts")
	a := mustAppend(t, s, natter.AppendRequest{Room: "drafts", Author: "ann", Body: "helo"})
	b := mustAppend(t, s, natter.AppendRequest{Room: "drafts", Author: "bob", Body: "hi"})
	mustAppend(t, s, natter.AppendRequest{Room: "drafts", Author: "ann", Body: "hello", Kind: natter.KindEdit, Target: a.Seq})
	mustAppend(t, s, natter.AppendRequest{Room: "drafts", Author: "bob", Body: "👍", Kind: natter.KindReact, Target: a.Seq})
	mustAppend(t, s, natter.AppendRequest{Room: "drafts", Author: "bob", Body: "hi all", Kind: natter.KindEdit, Target: b.Seq})
	mustAppend(t, s, natter.AppendRequest{Room: "drafts", Author: "ann", Body: "hello, world", Kind: natter.KindEdit, Target: a.Seq})
	c := mustAppend(t, s, natter.AppendRequest{Room: "drafts", Author: "ann", Body: "never edited"})

	bodies := func(target int64) []string {
		t.Helper()
		edits, err := s.Edits(ctx, "drafts", target)
		must(t, err)
		if edits == nil {
			t.Fatalf("Edits(%d) = nil, want an empty slice", target)
		}
		var out []string
		for _, e := range edits {
			if e.Kind != natter.KindEdit || e.Target != target {
				t.Fatalf("Edits(%d) has %+v", target, e)
			}
			out = append(out, e.Body)
		}
		return out
	}
	if got := bodies(a.Seq); len(got) != 2 || got[0] != "hello" || got[1] != "hello, world" {
		t.Fatalf("Edits of message %d: %q, want [hello, hello, world] in order", a.Seq, got)
	}
	if got := bodies(b.Seq); len(got) != 1 || got[0] != "hi all" {
		t.Fatalf("Edits of message %d: %q", b.Seq, got)
	}
	if got := bodies(c.Seq); len(got) != 0 {
		t.Fatalf("Edits of a message never edited: %q", got)
	}
	_, err := s.Edits(ctx, "no-such-room", 1)
	wantCode(t, err, natter.ENOTFOUND)
}
