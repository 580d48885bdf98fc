package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"natter"
)

// testDeleteRoom: a deleted room does not exist for any call from then on, whatever it held; its
// name is never used again; the rooms beside it keep everything.
func testDeleteRoom(t *testing.T, s natter.Store) {
	ctx := t.Context()
	_, err := s.CreateRoom(ctx, natter.Room{Name: "doomed", Private: true, CreatedBy: "ann"})
	must(t, err)
	must(t, s.AddMember(ctx, "doomed", "bob", "ann"))
	mustCreateRoom(t, s, "kept")
	first := mustAppend(t, s, natter.AppendRequest{Room: "doomed", Author: "ann", Body: "the plan", ClientID: "c-1"})
	mustAppend(t, s, natter.AppendRequest{Room: "doomed", Author: "bob", Body: "the plan, amended", Kind: natter.KindEdit, Target: first.Seq})
	mustAppend(t, s, natter.AppendRequest{Room: "doomed", Author: "ann", Kind: natter.KindPin, Target: first.Seq})
	must(t, s.BanUser(ctx, "doomed", natter.Ban{User: "mal", By: "ann"}))
	kept := appendN(t, s, "kept", 3)
	mustAppend(t, s, natter.AppendRequest{Room: "kept", Author: "ann", Kind: natter.KindPin, Target: kept[0].Seq})
	must(t, s.BanUser(ctx, "kept", natter.Ban{User: "mal", By: "ann"}))

	must(t, s.DeleteRoom(ctx, "doomed", "ann"))

	_, err = s.Room(ctx, "doomed")
	wantCode(t, err, natter.ENOTFOUND)
	rooms, err := s.Rooms(ctx)
	must(t, err)
	var names []string
	for _, r := range rooms {
		names = append(names, r.Name)
	}
	if fmt.Sprint(names) != "[kept lobby]" {
		t.Fatalf("Rooms after the deletion: %v, want [kept lobby]", names)
	}
	_, err = s.MessagesAfter(ctx, "doomed", 0, 10)
	wantCode(t, err, natter.ENOTFOUND)
	_, err = s.MessagesBefore(ctx, "doomed", 0, 10)
	wantCode(t, err, natter.ENOTFOUND)
	_, err = s.ChangesSince(ctx, "doomed", 0, 10)
	wantCode(t, err, natter.ENOTFOUND)
	_, err = s.Pins(ctx, "doomed")
	wantCode(t, err, natter.ENOTFOUND)
	_, _, err = s.AppendMessage(ctx, natter.AppendRequest{Room: "doomed", Author: "ann", Body: "anyone?"})
	wantCode(t, err, natter.ENOTFOUND)
	_, _, err = s.AppendMessage(ctx, natter.AppendRequest{Room: "doomed", Author: "ann", Body: "the plan", ClientID: "c-1"})
	wantCode(t, err, natter.ENOTFOUND) // not the stored original
	_, _, err = s.FindByClientID(ctx, natter.AppendRequest{Room: "doomed", Author: "ann", ClientID: "c-1"})
	wantCode(t, err, natter.ENOTFOUND)
	_, err = s.SetRoomTitle(ctx, "doomed", "back")
	wantCode(t, err, natter.ENOTFOUND)
	wantCode(t, s.AddMember(ctx, "doomed", "cat", "ann"), natter.ENOTFOUND)
	wantCode(t, s.BanUser(ctx, "doomed", natter.Ban{User: "cat", By: "ann"}), natter.ENOTFOUND)
	if ok, err := s.IsMember(ctx, "doomed", "bob"); err != nil || ok {
		t.Fatalf("IsMember(doomed, bob) = %v, %v after the deletion, want false", ok, err)
	}
	if bans, err := s.Bans(ctx, "doomed"); err != nil || len(bans) != 0 {
		t.Fatalf("Bans(doomed) = %v, %v after the deletion, want none", bans, err)
	}
	wantCode(t, s.DeleteRoom(ctx, "doomed", "ann"), natter.ENOTFOUND)
	wantCode(t, s.DeleteRoom(ctx, "never-was", "ann"), natter.ENOTFOUND)

	// The name is not used again, public or private.
	for _, r := range []natter.Room{{Name: "doomed"}, {Name: "doomed", Private: true, CreatedBy: "bob"}} {
		_, err = s.CreateRoom(ctx, r)
		wantCode(t, err, natter.ECONFLICT)
		if !strings.Contains(natter.ErrorMessage(err), "deleted") {
			t.Fatalf("CreateRoom(%+v) after the deletion: %q, want it to say the room was deleted", r, natter.ErrorMessage(err))
		}
	}

	// The room beside it keeps everything.
	wantSeqs(t, mustAfter(t, s, "kept", 0, 10), 1, 2, 3, 4)
	if pins, err := s.Pins(ctx, "kept"); err != nil || len(pins) != 1 {
		t.Fatalf("Pins(kept) = %v, %v, want the one pin", pins, err)
	}
	if bans, err := s.Bans(ctx, "kept"); err != nil || len(bans) != 1 {
		t.Fatalf("Bans(kept) = %v, %v, want the one ban", bans, err)
	}
	mustAppend(t, s, natter.AppendRequest{Room: "kept", Author: "ann", Body: "still here"})
}

// testDeleteRoomRacingAppends: appends racing a room's deletion are each stored before it, in
// the one gapless log, or refused with ENOTFOUND, and one sender's appends, made one after the
// other, are never refused and then stored: the deletion has one place in the queue.
func testDeleteRoomRacingAppends(t *testing.T, s natter.Store) {
	ctx := t.Context()
	mustCreateRoom(t, s, "racing")
	const senders, each = 8, 40
	var mu sync.Mutex
	var stored []int64
	refused := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			gone := false
			for j := range each {
				m, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: "racing", Author: "ann", Body: "x", ClientID: fmt.Sprintf("c-%d-%d", i, j)})
				mu.Lock()
				switch {
				case err == nil && gone:
					t.Errorf("sender %d: append %d stored as %d after an earlier one was refused", i, j, m.Seq)
				case err == nil:
					stored = append(stored, m.Seq)
				case natter.ErrorCode(err) == natter.ENOTFOUND:
					gone = true
					refused++
				default:
					t.Errorf("append racing the deletion: %v, want success or not_found", err)
				}
				mu.Unlock()
			}
		}()
	}
	close(start)
	mustAppend(t, s, natter.AppendRequest{Room: "lobby", Author: "ann", Body: "meanwhile"})
	must(t, s.DeleteRoom(ctx, "racing", "ann"))
	_, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: "racing", Author: "ann", Body: "late"})
	wantCode(t, err, natter.ENOTFOUND)
	wg.Wait()
	if refused == 0 {
		t.Logf("every append was stored before the deletion (%d)", len(stored))
	}
	seen := make(map[int64]bool)
	for _, seq := range stored {
		if seen[seq] || seq < 1 || seq > int64(len(stored)) {
			t.Fatalf("seqs stored before the deletion %v are not 1..%d, each once", stored, len(stored))
		}
		seen[seq] = true
	}
}
