package storetest

import (
	"fmt"
	"strings"
	"testing"

	"natter"
)

// testHiddenRooms: HideRoom keeps one record per account and room, replaced when hidden again;
// natter.Hidden holds until the room's log grows; ShowRoom forgets the record (none is fine);
// records come by room name; bad arguments and unknown rooms are refused and store nothing.
func testHiddenRooms(t *testing.T, s natter.Store) {
	ctx := t.Context()
	hidden := func(user string) []natter.ReadMark {
		t.Helper()
		h, err := s.HiddenRooms(ctx, user)
		must(t, err)
		if h == nil {
			t.Fatalf("HiddenRooms(%s) = nil, want an empty slice", user)
		}
		return h
	}
	wantHidden := func(user string, want ...natter.ReadMark) {
		t.Helper()
		if got := hidden(user); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("HiddenRooms(%s) = %+v, want %+v", user, got, want)
		}
	}
	wantHidden("ann")

	dm := natter.DirectRoomName("ann", "dave")
	_, err := s.CreateRoom(ctx, natter.Room{Name: dm, Title: "ann, dave", CreatedBy: "dave", Private: true, Direct: []string{"ann", "dave"}})
	must(t, err)
	appendN(t, s, dm, 2)
	r := mustRoom(t, s, dm)
	at := natter.ReadMark{Room: dm, Epoch: r.Epoch, Seq: r.LastSeq}
	must(t, s.HideRoom(ctx, "ann", at))
	wantHidden("ann", at)
	wantHidden("dave")
	if !natter.Hidden(r, at) {
		t.Fatalf("Hidden(%+v, %+v) = false right after HideRoom", r, at)
	}
	mustAppend(t, s, natter.AppendRequest{Room: dm, Author: "dave", Body: "are you there?"})
	grown := mustRoom(t, s, dm)
	if grown.LastSeq <= r.LastSeq {
		t.Fatalf("last seq %d after an append, was %d", grown.LastSeq, r.LastSeq)
	}
	if natter.Hidden(grown, at) {
		t.Fatalf("Hidden(%+v, %+v) = true after a new message", grown, at)
	}
	wantHidden("ann", at) // the record stays: only Hidden's answer changed

	// Hiding again replaces the record.
	again := natter.ReadMark{Room: dm, Epoch: grown.Epoch, Seq: grown.LastSeq}
	must(t, s.HideRoom(ctx, "ann", again))
	wantHidden("ann", again)
	if !natter.Hidden(grown, again) {
		t.Fatalf("Hidden(%+v, %+v) = false after hiding again", grown, again)
	}

	// Records are per account, and come by room name.
	quiet := mustCreateRoom(t, s, "a-quiet-room")
	atQuiet := natter.ReadMark{Room: "a-quiet-room", Epoch: quiet.Epoch, Seq: 0}
	must(t, s.HideRoom(ctx, "ann", atQuiet))
	daveAt := natter.ReadMark{Room: dm, Epoch: grown.Epoch, Seq: 1}
	must(t, s.HideRoom(ctx, "dave", daveAt))
	wantHidden("ann", atQuiet, again)
	wantHidden("dave", daveAt)

	// ShowRoom forgets one account's record of one room; again, or of nothing, is no error.
	must(t, s.ShowRoom(ctx, "ann", dm))
	wantHidden("ann", atQuiet)
	wantHidden("dave", daveAt)
	must(t, s.ShowRoom(ctx, "ann", dm))
	must(t, s.ShowRoom(ctx, "ann", "nowhere"))
	must(t, s.ShowRoom(ctx, "nobody", dm))
	wantHidden("ann", atQuiet)
	must(t, s.ShowRoom(ctx, "ann", "a-quiet-room"))
	wantHidden("ann")
	wantHidden("dave", daveAt)

	// Refused, and nothing stored.
	wantCode(t, s.HideRoom(ctx, "ann", natter.ReadMark{Room: "nowhere", Epoch: r.Epoch, Seq: 0}), natter.ENOTFOUND)
	for _, c := range []struct {
		user string
		at   natter.ReadMark
	}{
		{"Bad Name!", at},
		{"", at},
		{"ann", natter.ReadMark{Room: "Bad Room!", Epoch: r.Epoch, Seq: 0}},
		{"ann", natter.ReadMark{Room: "", Epoch: r.Epoch, Seq: 0}},
		{"ann", natter.ReadMark{Room: dm, Epoch: grown.Epoch, Seq: -1}},
	} {
		if err := s.HideRoom(ctx, c.user, c.at); natter.ErrorCode(err) != natter.EINVALID {
			t.Fatalf("HideRoom(%q, %+v) = %v, want EINVALID", c.user, c.at, err)
		}
	}
	wantHidden("ann")
	wantHidden("Bad Name!")
	wantHidden("dave", daveAt)
}

// testMutedRooms: an account's muted rooms, by name, apart from other accounts'; muting again
// and unmuting a room never muted are no errors; a room that does not exist can't be muted, and
// bad names are refused.
func testMutedRooms(t *testing.T, s natter.Store) {
	ctx := t.Context()
	mustCreateRoom(t, s, "noisy")
	mustCreateRoom(t, s, "busy")
	muted := func(user string) string {
		t.Helper()
		got, err := s.MutedRooms(ctx, user)
		must(t, err)
		if got == nil {
			t.Fatalf("MutedRooms(%s) = nil, want an empty slice", user)
		}
		return strings.Join(got, ",")
	}
	if got := muted("ann"); got != "" {
		t.Fatalf("ann's muted rooms at first: %q", got)
	}
	must(t, s.MuteRoom(ctx, "ann", "noisy", true))
	must(t, s.MuteRoom(ctx, "ann", "busy", true))
	must(t, s.MuteRoom(ctx, "ann", "noisy", true))
	must(t, s.MuteRoom(ctx, "bob", "noisy", true))
	if got := muted("ann"); got != "busy,noisy" {
		t.Fatalf("ann's muted rooms %q, want busy,noisy", got)
	}
	must(t, s.MuteRoom(ctx, "ann", "noisy", false))
	must(t, s.MuteRoom(ctx, "ann", "noisy", false))
	must(t, s.MuteRoom(ctx, "ann", "nowhere", false))
	if got := muted("ann"); got != "busy" {
		t.Fatalf("ann's muted rooms %q after unmuting noisy, want busy", got)
	}
	if got := muted("bob"); got != "noisy" {
		t.Fatalf("bob's muted rooms %q, want noisy", got)
	}
	wantCode(t, s.MuteRoom(ctx, "ann", "nowhere", true), natter.ENOTFOUND)
	wantCode(t, s.MuteRoom(ctx, "", "busy", true), natter.EINVALID)
	wantCode(t, s.MuteRoom(ctx, "ann", "Not A Room!", true), natter.EINVALID)
	if got := muted("ann"); got != "busy" {
		t.Fatalf("refused mutes changed ann's muted rooms: %q", got)
	}
}
