package redisstore

import (
	"context"
	"testing"

	"natter"
	"natter/internal/redistest"
)

// TestReadMarksAcrossNodes: a mark set through one node is read through another at once, and a
// mark of an old epoch (as Redis would hold after the room came back with a new one) is replaced
// by a mark of the room's epoch even when that one is lower.
func TestReadMarksAcrossNodes(t *testing.T) {
	ctx := context.Background()
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	a := openTest(t, Config{URL: url, Prefix: prefix})
	b := openTest(t, Config{URL: url, Prefix: prefix})
	lobby, err := a.Room(ctx, natter.DefaultRoom)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, _, err := a.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "ann", Body: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.SetReadMark(ctx, "ann", natter.ReadMark{Room: natter.DefaultRoom, Epoch: lobby.Epoch, Seq: 3}); err != nil {
		t.Fatal(err)
	}
	marks, err := b.ReadMarks(ctx, "ann")
	if err != nil || len(marks) != 1 || marks[0] != (natter.ReadMark{Room: natter.DefaultRoom, Epoch: lobby.Epoch, Seq: 3}) {
		t.Fatalf("ann's marks through the other node: %+v, %v", marks, err)
	}

	if err := a.rdb.HSet(ctx, a.key("marks", "bea"), natter.DefaultRoom, "old:4").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.SetReadMark(ctx, "bea", natter.ReadMark{Room: natter.DefaultRoom, Epoch: lobby.Epoch, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	marks, err = a.ReadMarks(ctx, "bea")
	if err != nil || len(marks) != 1 || marks[0] != (natter.ReadMark{Room: natter.DefaultRoom, Epoch: lobby.Epoch, Seq: 1}) {
		t.Fatalf("bea's marks after a mark of the new epoch: %+v, %v", marks, err)
	}
}
