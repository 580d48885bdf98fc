package storetest

import (
	"fmt"
	"testing"

	"natter"
)

// testPins: pin and unpin entries are changes of the log, and the store keeps the room's pinned
// messages from them, the latest pinned first: pinning again moves a pin to the front with its new
// pinner, an unpin or a deletion of the message takes it off, other rooms are apart.
func testPins(t *testing.T, s natter.Store) {
	ctx := t.Context()
	mustCreateRoom(t, s, "pins")
	mustCreateRoom(t, s, "other")
	msgs := appendN(t, s, "pins", 4)
	wantPins := func(room string, want ...string) {
		t.Helper()
		got, err := s.Pins(ctx, room)
		must(t, err)
		if got == nil {
			t.Fatalf("Pins(%s) = nil, want an empty slice", room)
		}
		var desc []string
		for _, p := range got {
			if p.At.IsZero() {
				t.Fatalf("Pins(%s): %+v has no time", room, p)
			}
			desc = append(desc, fmt.Sprintf("%d by %s", p.Seq, p.By))
		}
		if fmt.Sprint(desc) != fmt.Sprint(want) {
			t.Fatalf("Pins(%s) = %v, want %v", room, desc, want)
		}
	}
	change := func(kind, by string, target int64) natter.Message {
		t.Helper()
		return mustAppend(t, s, natter.AppendRequest{Room: "pins", Author: by, Kind: kind, Target: target})
	}
	wantPins("pins")
	pin := change(natter.KindPin, "alice", msgs[1].Seq)
	if pin.Kind != natter.KindPin || pin.Target != msgs[1].Seq || pin.Body != "" || pin.Deleted {
		t.Fatalf("the pin entry: %+v", pin)
	}
	change(natter.KindPin, "bob", msgs[0].Seq)
	change(natter.KindPin, "alice", msgs[2].Seq)
	wantPins("pins", "3 by alice", "1 by bob", "2 by alice")
	wantPins("other")
	change(natter.KindPin, "carol", msgs[1].Seq) // again: to the front, carol's now
	wantPins("pins", "2 by carol", "3 by alice", "1 by bob")
	change(natter.KindUnpin, "alice", msgs[0].Seq)
	change(natter.KindUnpin, "alice", msgs[3].Seq) // never pinned: nothing to take off
	wantPins("pins", "2 by carol", "3 by alice")
	change(natter.KindDelete, "alice", msgs[2].Seq) // a deleted message is unpinned
	wantPins("pins", "2 by carol")
	if r := mustRoom(t, s, "pins"); r.Changes != 7 {
		t.Fatalf("the room counts %d changes after 4 pins, 2 unpins and a deletion, want 7: %+v", r.Changes, r)
	}
	_, err := s.Pins(ctx, "nowhere")
	wantCode(t, err, natter.ENOTFOUND)
}
