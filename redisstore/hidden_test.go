package redisstore

import (
	"context"
	"testing"

	"natter"
	"natter/internal/redistest"
)

// TestHiddenRoomRecords: a record is stored as SEQ:EPOCH, so an epoch with colons reads back
// whole, and one that does not parse is EINTERNAL.
func TestHiddenRoomRecords(t *testing.T) {
	ctx := context.Background()
	url := redistest.URL(t)
	s := openTest(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
	at := natter.ReadMark{Room: natter.DefaultRoom, Epoch: "odd:epoch:1", Seq: 7}
	if err := s.HideRoom(ctx, "ann", at); err != nil {
		t.Fatal(err)
	}
	if v, err := s.rdb.HGet(ctx, s.key("hidden", "ann"), natter.DefaultRoom).Result(); err != nil || v != "7:odd:epoch:1" {
		t.Fatalf("stored %q, %v; want 7:odd:epoch:1", v, err)
	}
	if got, err := s.HiddenRooms(ctx, "ann"); err != nil || len(got) != 1 || got[0] != at {
		t.Fatalf("HiddenRooms = %+v, %v; want %+v", got, err, at)
	}
	for _, bad := range []string{"", "7", "x:epoch", "-1:epoch"} {
		if err := s.rdb.HSet(ctx, s.key("hidden", "bea"), natter.DefaultRoom, bad).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.HiddenRooms(ctx, "bea"); natter.ErrorCode(err) != natter.EINTERNAL {
			t.Fatalf("HiddenRooms with record %q: %v, want EINTERNAL", bad, err)
		}
	}
}
