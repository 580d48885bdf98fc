package storetest

import (
	"fmt"
	"testing"
	"time"

	"natter"
)

// testDeleteUser: a deleted account keeps its name and nothing else: its sessions end, it leaves
// its private rooms (not its direct conversations), no password is ever set on it again, and
// nobody registers the name.
func testDeleteUser(t *testing.T, s natter.Store) {
	ctx := t.Context()
	for _, name := range []string{"ann", "bob"} {
		_, err := s.CreateUser(ctx, name, "hash-"+name)
		must(t, err)
	}
	for _, tok := range []string{"t1", "t2"} {
		must(t, s.CreateSession(ctx, natter.Session{TokenHash: tok, UserName: "ann", ExpiresAt: time.Now().Add(time.Hour)}))
	}
	must(t, s.CreateSession(ctx, natter.Session{TokenHash: "t3", UserName: "bob", ExpiresAt: time.Now().Add(time.Hour)}))
	for _, room := range []string{"secret", "attic"} {
		_, err := s.CreateRoom(ctx, natter.Room{Name: room, Private: true, CreatedBy: "bob"})
		must(t, err)
	}
	must(t, s.AddMember(ctx, "secret", "ann", "bob"))
	must(t, s.AddMember(ctx, "attic", "ann", "bob"))
	dm := natter.DirectRoomName("ann", "bob")
	_, err := s.CreateRoom(ctx, natter.Room{Name: dm, Private: true, CreatedBy: "ann", Direct: []string{"ann", "bob"}})
	must(t, err)

	rooms, err := s.DeleteUser(ctx, "ann")
	must(t, err)
	if fmt.Sprint(rooms) != "[attic secret]" {
		t.Fatalf("DeleteUser left %v, want [attic secret]", rooms)
	}
	u, hash, err := s.UserPasswordHash(ctx, "ann")
	must(t, err)
	if !u.Deleted || hash != "" || u.Name != "ann" {
		t.Fatalf("the deleted account: %+v, hash %q", u, hash)
	}
	for _, tok := range []string{"t1", "t2"} {
		_, err := s.SessionByTokenHash(ctx, tok)
		wantCode(t, err, natter.EUNAUTHORIZED)
	}
	if _, err := s.SessionByTokenHash(ctx, "t3"); err != nil {
		t.Fatalf("bob's session after ann's deletion: %v", err)
	}
	for _, room := range rooms {
		if ok, err := s.IsMember(ctx, room, "ann"); err != nil || ok {
			t.Fatalf("IsMember(%s, ann) = %v, %v after the deletion", room, ok, err)
		}
		if ok, _ := s.IsMember(ctx, room, "bob"); !ok {
			t.Fatalf("bob left %s with ann", room)
		}
	}
	if members, err := s.Members(ctx, dm); err != nil || fmt.Sprint(members) != "[ann bob]" {
		t.Fatalf("the direct conversation's members: %v, %v; want both still", members, err)
	}
	wantCode(t, s.SetPasswordHash(ctx, "ann", "new-hash"), natter.ENOTFOUND)
	if _, hash, _ := s.UserPasswordHash(ctx, "ann"); hash != "" {
		t.Fatalf("a password was set on the deleted account: %q", hash)
	}
	_, err = s.CreateUser(ctx, "ann", "hash-again")
	wantCode(t, err, natter.ECONFLICT)
	_, err = s.DeleteUser(ctx, "ann")
	wantCode(t, err, natter.ENOTFOUND)
	_, err = s.DeleteUser(ctx, "nobody")
	wantCode(t, err, natter.ENOTFOUND)
	if u, _, err := s.UserPasswordHash(ctx, "bob"); err != nil || u.Deleted {
		t.Fatalf("bob: %+v, %v", u, err)
	}
}

// testEraseAuthor: erasing an author's words erases every message and edit they wrote, in every
// room, in place, and nobody else's; again, it finds nothing.
func testEraseAuthor(t *testing.T, s natter.Store) {
	ctx := t.Context()
	mustCreateRoom(t, s, "ops")
	a := mustAppend(t, s, natter.AppendRequest{Room: "ops", Author: "ann", Body: "ann's secret"})
	mustAppend(t, s, natter.AppendRequest{Room: "ops", Author: "bob", Body: "bob's reply"})
	mustAppend(t, s, natter.AppendRequest{Room: "ops", Author: "ann", Body: "ann's secret, edited", Kind: natter.KindEdit, Target: a.Seq})
	mustAppend(t, s, natter.AppendRequest{Room: "ops", Author: "ann", Body: "🎉", Kind: natter.KindReact, Target: 2})
	mustAppend(t, s, natter.AppendRequest{Room: "lobby", Author: "ann", Body: "ann in the lobby"})
	n, err := s.EraseAuthor(ctx, "ann")
	must(t, err)
	if n != 3 {
		t.Fatalf("EraseAuthor erased %d, want 3 (two messages and an edit)", n)
	}
	msgs := mustAfter(t, s, "ops", 0, 10)
	wantSeqs(t, msgs, 1, 2, 3, 4)
	for i, want := range []struct {
		deleted bool
		body    string
	}{{true, ""}, {false, "bob's reply"}, {true, ""}, {false, "🎉"}} {
		if m := msgs[i]; m.Deleted != want.deleted || m.Body != want.body {
			t.Fatalf("entry %d after the erasing: %+v, want deleted %v, body %q", m.Seq, m, want.deleted, want.body)
		}
	}
	if m := mustAfter(t, s, "lobby", 0, 10); len(m) != 1 || !m[0].Deleted {
		t.Fatalf("the lobby after the erasing: %+v", m)
	}
	if n, err := s.EraseAuthor(ctx, "ann"); err != nil || n != 0 {
		t.Fatalf("EraseAuthor again: %d, %v", n, err)
	}
}
