package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"natter"
)

// newInvite returns an invite to room made by by at now, and its code's hash.
func newInvite(room, by, code string, now time.Time, ttl time.Duration, maxUses int) (natter.Invite, string) {
	hash := natter.InviteHash(code)
	return natter.Invite{ID: natter.InviteID(hash), Room: room, CreatedBy: by, CreatedAt: now, ExpiresAt: now.Add(ttl), MaxUses: maxUses}, hash
}

// testInvites: an invite lets accounts join its private room until it expires or is used up; an
// account that was a member already uses none of it; a wrong code, another room's code, a
// revoked, expired or used-up invite joins nobody; lists hold only the live ones, the newest
// first; a room holds MaxRoomInvites live ones at most, and a deleted room none.
func testInvites(t *testing.T, s natter.Store) {
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond)
	_, err := s.CreateRoom(ctx, natter.Room{Name: "club", Private: true, CreatedBy: "ann"})
	must(t, err)
	_, err = s.CreateRoom(ctx, natter.Room{Name: "other", Private: true, CreatedBy: "ann"})
	must(t, err)

	week, weekHash := newInvite("club", "ann", "week-code", now, 7*24*time.Hour, 0)
	must(t, s.CreateInvite(ctx, week, weekHash))
	two, twoHash := newInvite("club", "ann", "two-code", now.Add(time.Second), time.Hour, 2)
	must(t, s.CreateInvite(ctx, two, twoHash))
	ids := func(room string, at time.Time) string {
		t.Helper()
		list, err := s.Invites(ctx, room, at)
		must(t, err)
		if list == nil {
			t.Fatalf("Invites(%s) = nil, want an empty slice", room)
		}
		var out []string
		for _, i := range list {
			out = append(out, fmt.Sprintf("%s/%d/%d", i.ID, i.Uses, i.MaxUses))
		}
		return fmt.Sprint(out)
	}
	if got, want := ids("club", now), fmt.Sprintf("[%s/0/2 %s/0/0]", two.ID, week.ID); got != want {
		t.Fatalf("club's invites %s, want %s (the newest first)", got, want)
	}
	if got := ids("other", now); got != "[]" {
		t.Fatalf("other's invites %s, want none", got)
	}
	list, err := s.Invites(ctx, "club", now)
	must(t, err)
	if got := list[1]; got.Room != "club" || got.CreatedBy != "ann" || !got.CreatedAt.Equal(week.CreatedAt) || !got.ExpiresAt.Equal(week.ExpiresAt) {
		t.Fatalf("read back %+v, want %+v", got, week)
	}

	members := func(room string) string {
		t.Helper()
		m, err := s.Members(ctx, room)
		must(t, err)
		return fmt.Sprint(m)
	}
	use := func(room, hash, user string, at time.Time) (natter.Invite, error) {
		t.Helper()
		return s.UseInvite(ctx, room, hash, user, at)
	}
	got, err := use("club", twoHash, "bob", now)
	must(t, err)
	if got.ID != two.ID || got.Uses != 1 {
		t.Fatalf("bob's use gave %+v, want invite %s with 1 use", got, two.ID)
	}
	if m := members("club"); m != "[ann bob]" {
		t.Fatalf("club's members %s after bob's use, want [ann bob]", m)
	}
	got, err = use("club", twoHash, "bob", now) // again: a member already
	must(t, err)
	if got.Uses != 1 {
		t.Fatalf("bob's second use counted: %+v", got)
	}
	got, err = use("club", twoHash, "ann", now) // the creator, a member
	must(t, err)
	if got.Uses != 1 {
		t.Fatalf("a member's use counted: %+v", got)
	}
	_, err = use("club", twoHash, "cat", now)
	must(t, err)
	_, err = use("club", twoHash, "dan", now) // used up
	wantCode(t, err, natter.ENOTFOUND)
	if got := ids("club", now); got != fmt.Sprintf("[%s/0/0]", week.ID) {
		t.Fatalf("club's invites %s once the two-use one was used up, want the week's alone", got)
	}
	_, err = use("other", weekHash, "dan", now) // another room's code
	wantCode(t, err, natter.ENOTFOUND)
	_, err = use("club", natter.InviteHash("guess"), "dan", now)
	wantCode(t, err, natter.ENOTFOUND)
	_, err = use("club", weekHash[:12]+strings.Repeat("0", len(weekHash)-12), "dan", now) // the same id, another code
	wantCode(t, err, natter.ENOTFOUND)
	_, err = use("nowhere", weekHash, "dan", now)
	wantCode(t, err, natter.ENOTFOUND)
	_, err = use("club", weekHash, "dan", week.ExpiresAt) // expired
	wantCode(t, err, natter.ENOTFOUND)
	if got := ids("club", week.ExpiresAt); got != "[]" {
		t.Fatalf("club's invites %s once the week is over, want none", got)
	}
	if m := members("club"); m != "[ann bob cat]" {
		t.Fatalf("club's members %s, want [ann bob cat]: refused uses joined someone", m)
	}
	if m := members("other"); m != "[ann]" {
		t.Fatalf("other's members %s, want [ann]", m)
	}

	// Revoking: by id, in its own room only.
	_, err = s.RevokeInvite(ctx, "other", week.ID)
	wantCode(t, err, natter.ENOTFOUND)
	revoked, err := s.RevokeInvite(ctx, "club", week.ID)
	must(t, err)
	if revoked.ID != week.ID || revoked.CreatedBy != "ann" {
		t.Fatalf("revoked %+v, want %+v", revoked, week)
	}
	_, err = s.RevokeInvite(ctx, "club", week.ID)
	wantCode(t, err, natter.ENOTFOUND)
	_, err = use("club", weekHash, "dan", now)
	wantCode(t, err, natter.ENOTFOUND)
	if m := members("club"); m != "[ann bob cat]" {
		t.Fatalf("club's members %s after a revoked invite's use, want [ann bob cat]", m)
	}
	_, err = s.RevokeInvite(ctx, "nowhere", week.ID)
	wantCode(t, err, natter.ENOTFOUND)
	inv, hash := newInvite("nowhere", "ann", "lost", now, time.Hour, 0)
	wantCode(t, s.CreateInvite(ctx, inv, hash), natter.ENOTFOUND)

	// At most MaxRoomInvites live ones; those that no longer work make room.
	for i := range natter.MaxRoomInvites {
		ttl := time.Hour
		if i == 0 {
			ttl = time.Minute // expires first
		}
		inv, hash := newInvite("other", "ann", fmt.Sprintf("code-%d", i), now, ttl, 0)
		must(t, s.CreateInvite(ctx, inv, hash))
	}
	inv, hash = newInvite("other", "ann", "one-too-many", now, time.Hour, 0)
	wantCode(t, s.CreateInvite(ctx, inv, hash), natter.ECONFLICT)
	if _, err := use("other", hash, "dan", now); natter.ErrorCode(err) != natter.ENOTFOUND {
		t.Fatalf("the refused invite let dan join: %v", err)
	}
	later := now.Add(2 * time.Minute)
	inv, hash = newInvite("other", "ann", "one-more", later, time.Hour, 0)
	must(t, s.CreateInvite(ctx, inv, hash)) // the first one expired
	list, err = s.Invites(ctx, "other", later)
	must(t, err)
	if len(list) != natter.MaxRoomInvites || list[0].ID != inv.ID {
		t.Fatalf("other lists %d invites, the newest %s, want %d with %s first", len(list), list[0].ID, natter.MaxRoomInvites, inv.ID)
	}

	// Concurrent uses of a one-use invite: one account joins.
	one, oneHash := newInvite("club", "bob", "once", now, time.Hour, 1)
	must(t, s.CreateInvite(ctx, one, oneHash))
	var wg sync.WaitGroup
	var mu sync.Mutex
	joined := 0
	for i := range 8 {
		wg.Go(func() {
			_, err := s.UseInvite(ctx, "club", oneHash, fmt.Sprintf("racer%d", i), now)
			if err == nil {
				mu.Lock()
				joined++
				mu.Unlock()
			} else if natter.ErrorCode(err) != natter.ENOTFOUND {
				t.Errorf("racer%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if joined != 1 {
		t.Fatalf("%d accounts joined with a one-use invite, want 1", joined)
	}
	if m, err := s.Members(ctx, "club"); err != nil || len(m) != 4 {
		t.Fatalf("club's members %v (%v), want ann, bob, cat and the one racer", m, err)
	}

	// A deleted room's invites go with it.
	must(t, s.DeleteRoom(ctx, "club", "ann"))
	_, err = use("club", oneHash, "eve", now)
	wantCode(t, err, natter.ENOTFOUND)
	_, err = s.Invites(ctx, "club", now)
	wantCode(t, err, natter.ENOTFOUND)
}
