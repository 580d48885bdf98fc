package storetest

import (
	"strings"
	"testing"
	"time"

	"natter"
)

// testModeration checks room bans (a new record replacing the old, an end and a reason kept,
// ended ones not listed, ordered, per room, checked before anything is stored) and account suspensions (reported by UserPasswordHash alone).
func testModeration(t *testing.T, s natter.Store) {
	ctx := t.Context()
	mustCreateRoom(t, s, "ops")
	mustCreateRoom(t, s, "dev")
	bans := func(room string) []natter.Ban {
		t.Helper()
		b, err := s.Bans(ctx, room)
		must(t, err)
		if b == nil {
			t.Fatalf("Bans(%s) = nil, want an empty slice", room)
		}
		return b
	}
	wantBans := func(room string, want ...natter.Ban) []natter.Ban {
		t.Helper()
		got := bans(room)
		if len(got) != len(want) {
			t.Fatalf("Bans(%s) = %+v, want %+v", room, got, want)
		}
		for i, b := range got {
			if b.User != want[i].User || b.By != want[i].By || b.At.IsZero() {
				t.Fatalf("Bans(%s) = %+v, want %+v (with a time)", room, got, want)
			}
		}
		return got
	}
	wantBans("ops")
	wantBans("nowhere")

	must(t, s.BanUser(ctx, "ops", natter.Ban{User: "mallory", By: "alice"}))
	first := wantBans("ops", natter.Ban{User: "mallory", By: "alice"})[0]
	if !first.Until.IsZero() || first.Reason != "" {
		t.Fatalf("a ban without an end or a reason reads back as %+v", first)
	}
	// Again, for a day and with a reason: the record is replaced.
	until := time.Now().Add(24 * time.Hour).UTC()
	must(t, s.BanUser(ctx, "ops", natter.Ban{User: "mallory", By: "carol", Until: until, Reason: "spam: links, again"}))
	again := wantBans("ops", natter.Ban{User: "mallory", By: "carol"})[0]
	if again.At.Before(first.At) || !again.Until.Equal(until) || again.Reason != "spam: links, again" {
		t.Fatalf("banned again until %v for spam, reads back as %+v", until, again)
	}
	// A ban that has ended is not listed; banning without an end again makes it for good.
	must(t, s.BanUser(ctx, "ops", natter.Ban{User: "mallory", By: "carol", Until: time.Now().Add(-time.Second), Reason: "over"}))
	wantBans("ops")
	must(t, s.BanUser(ctx, "ops", natter.Ban{User: "mallory", By: "alice"}))
	if b := wantBans("ops", natter.Ban{User: "mallory", By: "alice"})[0]; !b.Until.IsZero() || b.Reason != "" {
		t.Fatalf("a ban for good after an ended one reads back as %+v", b)
	}
	must(t, s.BanUser(ctx, "ops", natter.Ban{User: "bob", By: "carol"}))
	must(t, s.BanUser(ctx, "ops", natter.Ban{User: "zoe", By: "carol"}))
	wantBans("ops", natter.Ban{User: "bob", By: "carol"}, natter.Ban{User: "mallory", By: "alice"}, natter.Ban{User: "zoe", By: "carol"})
	wantBans("dev")

	wantCode(t, s.BanUser(ctx, "nowhere", natter.Ban{User: "bob", By: "alice"}), natter.ENOTFOUND)
	wantCode(t, s.UnbanUser(ctx, "nowhere", "bob"), natter.ENOTFOUND)
	wantBans("nowhere")
	wantCode(t, s.BanUser(ctx, "dev", natter.Ban{User: "Bad Name!", By: "alice"}), natter.EINVALID)
	wantCode(t, s.BanUser(ctx, "dev", natter.Ban{User: "", By: "alice"}), natter.EINVALID)
	wantBans("dev")

	must(t, s.BanUser(ctx, "dev", natter.Ban{User: "mallory", By: "dave"}))
	must(t, s.UnbanUser(ctx, "ops", "mallory"))
	wantBans("ops", natter.Ban{User: "bob", By: "carol"}, natter.Ban{User: "zoe", By: "carol"})
	must(t, s.UnbanUser(ctx, "ops", "mallory")) // not banned: no error
	must(t, s.UnbanUser(ctx, "ops", "nobody"))
	wantBans("ops", natter.Ban{User: "bob", By: "carol"}, natter.Ban{User: "zoe", By: "carol"})
	wantBans("dev", natter.Ban{User: "mallory", By: "dave"})
	// Banned again after an unban: a new record.
	must(t, s.BanUser(ctx, "ops", natter.Ban{User: "mallory", By: "carol"}))
	wantBans("ops", natter.Ban{User: "bob", By: "carol"}, natter.Ban{User: "mallory", By: "carol"}, natter.Ban{User: "zoe", By: "carol"})

	// Suspensions.
	created, err := s.CreateUser(ctx, "alice", "hash-1")
	must(t, err)
	_, err = s.CreateUser(ctx, "bob", "hash-2")
	must(t, err)
	user := func(name string) (natter.User, string) {
		t.Helper()
		u, hash, err := s.UserPasswordHash(ctx, name)
		must(t, err)
		return u, hash
	}
	if u, _ := user("alice"); u.Suspended {
		t.Fatalf("a new account is suspended: %+v", u)
	}
	suspended := func(want ...string) {
		t.Helper()
		got, err := s.Suspended(ctx)
		must(t, err)
		if got == nil || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("Suspended() = %#v, want %q", got, want)
		}
	}
	suspended()
	must(t, s.SetSuspended(ctx, "bob", true))
	must(t, s.SetSuspended(ctx, "alice", true))
	suspended("alice", "bob")
	must(t, s.SetSuspended(ctx, "bob", false))
	suspended("alice")
	if u, hash := user("alice"); !u.Suspended || hash != "hash-1" || u.Name != "alice" || !u.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("after SetSuspended(true): %+v %q; want alice as created, suspended, with hash-1", u, hash)
	}
	if u, _ := user("bob"); u.Suspended {
		t.Fatal("suspending alice suspended bob")
	}
	must(t, s.SetSuspended(ctx, "alice", true)) // again: no error
	must(t, s.SetPasswordHash(ctx, "alice", "hash-3"))
	if u, hash := user("alice"); !u.Suspended || hash != "hash-3" {
		t.Fatalf("after SetPasswordHash: %+v %q; want suspended, with hash-3", u, hash)
	}
	must(t, s.SetSuspended(ctx, "alice", false))
	if u, hash := user("alice"); u.Suspended || hash != "hash-3" {
		t.Fatalf("after SetSuspended(false): %+v %q; want not suspended, with hash-3", u, hash)
	}
	must(t, s.SetSuspended(ctx, "alice", false)) // again: no error
	suspended()
	wantCode(t, s.SetSuspended(ctx, "nobody", true), natter.ENOTFOUND)
	wantCode(t, s.SetSuspended(ctx, "nobody", false), natter.ENOTFOUND)
	if _, _, err := s.UserPasswordHash(ctx, "nobody"); natter.ErrorCode(err) != natter.ENOTFOUND {
		t.Fatalf("SetSuspended of a missing account made one: %v", err)
	}
}
