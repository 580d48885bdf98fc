package redisstore

import (
	"testing"
	"time"

	"natter"
	"natter/internal/redistest"
)

// TestModerationNotes: BanUser and UnbanUser tell every node, through OnRevoke, with Ban set and
// the room and user named; RemoveMember's note is told apart by Ban being false.
func TestModerationNotes(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	notes := make(chan Revocation, 16)
	a := openTest(t, Config{URL: url, Prefix: prefix})
	openTest(t, Config{URL: url, Prefix: prefix, OnRevoke: func(r Revocation) { notes <- r }})
	ctx := t.Context()
	if _, err := a.CreateRoom(ctx, natter.Room{Name: "ops", CreatedBy: "carol", Private: true}); err != nil {
		t.Fatal(err)
	}
	next := func(what string) Revocation {
		t.Helper()
		select {
		case r := <-notes:
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no note on the other node after 10 s", what)
			return Revocation{}
		}
	}
	if err := a.BanUser(ctx, "ops", natter.Ban{User: "mallory", By: "carol"}); err != nil {
		t.Fatal(err)
	}
	if r := next("BanUser"); !r.Ban || r.Room != "ops" || r.User != "mallory" || r.TokenHash != "" {
		t.Fatalf("BanUser's note: %+v", r)
	}
	if err := a.UnbanUser(ctx, "ops", "mallory"); err != nil {
		t.Fatal(err)
	}
	if r := next("UnbanUser"); !r.Ban || r.Room != "ops" || r.User != "mallory" || r.TokenHash != "" {
		t.Fatalf("UnbanUser's note: %+v", r)
	}
	if err := a.RemoveMember(ctx, "ops", "carol"); err != nil {
		t.Fatal(err)
	}
	if r := next("RemoveMember"); r.Ban || r.Room != "ops" || r.User != "carol" {
		t.Fatalf("RemoveMember's note: %+v", r)
	}
	// A refused ban tells nobody.
	if err := a.BanUser(ctx, "nowhere", natter.Ban{User: "mallory", By: "carol"}); natter.ErrorCode(err) != natter.ENOTFOUND {
		t.Fatalf("BanUser in a missing room: %v", err)
	}
	if err := a.BanUser(ctx, "ops", natter.Ban{User: "Bad Name!", By: "carol"}); natter.ErrorCode(err) != natter.EINVALID {
		t.Fatalf("BanUser of a bad name: %v", err)
	}
	if err := a.DeleteSession(ctx, "th-1"); err != nil { // a marker: the next note after them
		t.Fatal(err)
	}
	if r := next("DeleteSession"); r.Ban || r.TokenHash != "th-1" {
		t.Fatalf("a note after refused bans: %+v, want DeleteSession's", r)
	}
}
