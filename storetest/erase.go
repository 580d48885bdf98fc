package storetest

import (
	"context"
	"fmt"
	"testing"

	"natter"
)

// testErase: a deletion erases the text of the message it deletes and of that message's edits,
// on every read (after, before, at any page boundary, a repeat of a client_id, FindByClientID,
// ChangesSince, search); the entries keep their seq, id, author, time, client_id, kind, target and
// reply_to, and nothing else changes. An edit stored after its target's deletion is erased too.
func testErase(t *testing.T, s natter.Store) {
	ctx := t.Context()
	const room = "erase"
	mustCreateRoom(t, s, room)
	app := func(author, body string, kind string, target, replyTo int64, cid string) natter.Message {
		t.Helper()
		return mustAppend(t, s, natter.AppendRequest{Room: room, Author: author, Body: body, Kind: kind, Target: target, ReplyTo: replyTo, ClientID: cid})
	}
	keep1 := app("bob", "keep one", "", 0, 0, "")
	secretReq := natter.AppendRequest{Room: room, Author: "alice", Body: "the secret", ClientID: "c-secret", ReplyTo: keep1.Seq}
	secret := mustAppend(t, s, secretReq)
	secretEdit := app("alice", "the secret, again", natter.KindEdit, secret.Seq, 0, "c-edit")
	react := app("bob", "👍", natter.KindReact, secret.Seq, 0, "")
	keep2 := app("bob", "keep two", "", 0, 0, "")
	keep2Edit := app("bob", "keep two!", natter.KindEdit, keep2.Seq, 0, "")
	del := app("alice", "", natter.KindDelete, secret.Seq, 0, "")
	late := app("alice", "the secret, too late", natter.KindEdit, secret.Seq, 0, "")
	// A run of erased messages, for stores that read around holes.
	var run []natter.Message
	for i := range 5 {
		run = append(run, app("carol", fmt.Sprintf("gone %d", i), "", 0, 0, ""))
	}
	for _, m := range run {
		app("carol", "", natter.KindDelete, m.Seq, 0, "")
	}
	tail := app("bob", "the end", "", 0, 0, "")

	erased := map[int64]natter.Message{}
	for _, m := range append([]natter.Message{secret, secretEdit, late}, run...) {
		m.Body, m.Deleted = "", true
		erased[m.Seq] = m
	}
	kept := map[int64]natter.Message{keep1.Seq: keep1, react.Seq: react, keep2.Seq: keep2, keep2Edit.Seq: keep2Edit, del.Seq: del, tail.Seq: tail}
	check := func(how string, m natter.Message) {
		t.Helper()
		if want, ok := erased[m.Seq]; ok {
			if !sameMessage(m, want) || !m.Deleted || m.ReplyTo != want.ReplyTo {
				t.Fatalf("%s: entry %d is %+v; want it erased: %+v", how, m.Seq, m, want)
			}
		} else if want, ok := kept[m.Seq]; ok && (!sameMessage(m, want) || m.Deleted) {
			t.Fatalf("%s: entry %d is %+v; want it as stored: %+v", how, m.Seq, m, want)
		}
	}

	// Every page, after and before, at every boundary: gapless, each entry as it should be.
	last := tail.Seq
	for _, limit := range []int{1, 2, 3, 7, 100} {
		for after := int64(0); after <= last; after++ {
			page := mustAfter(t, s, room, after, limit)
			var want []int64
			for q := after + 1; q <= min(last, after+int64(limit)); q++ {
				want = append(want, q)
			}
			wantSeqs(t, page, want...)
			for _, m := range page {
				check(fmt.Sprintf("MessagesAfter(%d, %d)", after, limit), m)
			}
		}
		for before := int64(1); before <= last+1; before++ {
			page := mustBefore(t, s, room, before, limit)
			var want []int64
			for q := max(1, before-int64(limit)); q < before; q++ {
				want = append(want, q)
			}
			wantSeqs(t, page, want...)
			for _, m := range page {
				check(fmt.Sprintf("MessagesBefore(%d, %d)", before, limit), m)
			}
		}
	}

	// A repeat of the erased message's client_id stores nothing and gets it erased.
	again, created, err := s.AppendMessage(ctx, secretReq)
	must(t, err)
	if created {
		t.Fatalf("a repeat of a deleted message's client_id stored %+v", again)
	}
	check("a repeat of its client_id", again)
	found, ok, err := s.FindByClientID(ctx, secretReq)
	must(t, err)
	if !ok {
		t.Fatal("FindByClientID does not find the deleted message")
	}
	check("FindByClientID", found)

	changes, err := s.ChangesSince(ctx, room, 0, 100)
	must(t, err)
	if len(changes) != 10 {
		t.Fatalf("ChangesSince: %d changes, want 10", len(changes))
	}
	for _, m := range changes {
		check("ChangesSince", m)
	}

	res, err := natter.Search(ctx, s, natter.SearchRequest{Room: room, Query: natter.SearchQuery{Words: []string{"secret"}}, Before: last + 1})
	must(t, err)
	if len(res.Messages) != 0 {
		t.Fatalf("a search finds deleted text: %+v", res.Messages)
	}
	res, err = natter.Search(ctx, s, natter.SearchRequest{Room: room, Query: natter.SearchQuery{Words: []string{"gone"}}, Before: last + 1})
	must(t, err)
	if len(res.Messages) != 0 {
		t.Fatalf("a search finds deleted text: %+v", res.Messages)
	}
	res, err = natter.Search(ctx, s, natter.SearchRequest{Room: room, Query: natter.SearchQuery{From: "carol"}, Before: last + 1})
	must(t, err)
	if len(res.Messages) != 0 {
		t.Fatalf("a search from: the author of deleted messages finds %+v", res.Messages)
	}
	// A search continued from before the deletions knows only the newest changes after it: one
	// that never read the deletions still leaves out what they erased.
	res, err = natter.Search(ctx, noChanges{s}, natter.SearchRequest{Room: room, Query: natter.SearchQuery{From: "carol"}, Before: run[len(run)-1].Seq + 1})
	must(t, err)
	if len(res.Messages) != 0 {
		t.Fatalf("a search that did not read the deletions finds %+v", res.Messages)
	}
	if r := mustRoom(t, s, room); r.LastSeq != last {
		t.Fatalf("last_seq %d after erasing, want %d", r.LastSeq, last)
	}
}

// noChanges is a store whose ChangesSince reads nothing, as when a room's deletions are older than
// the newest changes a search reads.
type noChanges struct{ natter.Store }

func (noChanges) ChangesSince(context.Context, string, int64, int) ([]natter.Message, error) {
	return nil, nil
}
