package storetest

import (
	"slices"
	"strings"
	"testing"

	"natter"
)

// testChangesSince checks that a store reads a room's newest edits and deletions after a seq,
// oldest first, and nothing else.
func testChangesSince(t *testing.T, s natter.Store) {
	room := searchRoom(t, s)
	for _, c := range []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 10, []int64{4, 6, 9}},
		{0, 2, []int64{6, 9}},
		{4, 10, []int64{6, 9}},
		{6, 10, []int64{9}},
		{9, 10, nil},
	} {
		got, err := s.ChangesSince(t.Context(), room, c.after, c.limit)
		must(t, err)
		wantSeqs(t, got, c.want...)
		for _, m := range got {
			if m.Kind == "" || m.Target == 0 {
				t.Fatalf("ChangesSince(%d) returned %+v, not a change", c.after, m)
			}
		}
	}
	if got, err := s.ChangesSince(t.Context(), natter.DefaultRoom, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("ChangesSince in a room without changes: %v, %v", got, err)
	}
	_, err := s.ChangesSince(t.Context(), "nowhere", 0, 10)
	wantCode(t, err, natter.ENOTFOUND)
}

// searchRoom makes the room the search tests read:
//
//	1 alice "Hello World" (edited by 9 to "Greetings")
//	2 bob   "hello there"
//	3 alice "typo helo"   (edited by 4 to "fixed hello")
//	5 carol "HELLO again" (deleted by 6)
//	7 bob   "nothing here"
//	8 alice "goodbye"
func searchRoom(t *testing.T, s natter.Store) string {
	const room = "find"
	mustCreateRoom(t, s, room)
	for _, r := range []natter.AppendRequest{
		{Author: "alice", Body: "Hello World"},
		{Author: "bob", Body: "hello there"},
		{Author: "alice", Body: "typo helo"},
		{Author: "alice", Body: "fixed hello", Kind: natter.KindEdit, Target: 3},
		{Author: "carol", Body: "HELLO again"},
		{Author: "carol", Kind: natter.KindDelete, Target: 5},
		{Author: "bob", Body: "nothing here"},
		{Author: "alice", Body: "goodbye"},
		{Author: "alice", Body: "Greetings", Kind: natter.KindEdit, Target: 1},
	} {
		r.Room = room
		mustAppend(t, s, r)
	}
	return room
}

// testSearch checks natter.Search against the store: matches by the latest text, deleted
// messages never, newest first, continued searches seeing the changes made since, and the
// limits of matches and of entries read.
func testSearch(t *testing.T, s natter.Store) {
	room := searchRoom(t, s)
	search := func(q string, before int64, limit, scan int) natter.SearchResult {
		t.Helper()
		sq, err := natter.ParseSearch(q)
		must(t, err)
		res, err := natter.Search(t.Context(), s, natter.SearchRequest{Room: room, Query: sq, Before: before, Limit: limit, Scan: scan})
		must(t, err)
		return res
	}
	check := func(what string, res natter.SearchResult, seqs []int64, changes []int64, scanned int, next int64) {
		t.Helper()
		got := make([]int64, len(res.Messages))
		for i, m := range res.Messages {
			got[i] = m.Seq
			if m.Kind != "" {
				t.Fatalf("%s: found a change %+v", what, m)
			}
		}
		gotChanges := make([]int64, len(res.Changes))
		for i, m := range res.Changes {
			gotChanges[i] = m.Seq
		}
		if !equalSeqs(got, seqs) || !equalSeqs(gotChanges, changes) || res.Scanned != scanned || res.Before != next {
			t.Fatalf("%s: messages %v, changes %v, scanned %d, before %d; want %v, %v, %d, %d", what, got, gotChanges, res.Scanned, res.Before, seqs, changes, scanned, next)
		}
	}
	check("hello", search("hello", 10, 0, 0), []int64{3, 2}, []int64{4}, 9, 0)
	check("HELLO, case-insensitively", search("HELLO", 10, 0, 0), []int64{3, 2}, []int64{4}, 9, 0)
	check("two words", search("hello there", 10, 0, 0), []int64{2}, nil, 9, 0)
	check("from:alice", search("from:alice", 10, 0, 0), []int64{8, 3, 1}, []int64{4, 9}, 9, 0)
	check("from:@Alice hello", search("from:@Alice hello", 10, 0, 0), []int64{3}, []int64{4}, 9, 0)
	check("the new text of an edit", search("greetings", 10, 0, 0), []int64{1}, []int64{9}, 9, 0)
	check("the old text of an edit", search("world", 10, 0, 0), nil, nil, 9, 0)
	check("a deleted message", search("again", 10, 0, 0), nil, nil, 9, 0)
	check("the text of a change itself", search("fixed", 10, 0, 0), []int64{3}, []int64{4}, 9, 0)

	// One match at a time: each page says where the next starts, and sees the edit of message 1
	// (seq 9) that is after where it starts.
	p1 := search("hello", 10, 1, 0)
	check("page 1", p1, []int64{3}, []int64{4}, 7, 3)
	p2 := search("hello", p1.Before, 1, 0)
	check("page 2", p2, []int64{2}, nil, 1, 2)
	check("page 3", search("hello", p2.Before, 1, 0), nil, nil, 1, 0)
	check("greetings from before the edit", search("greetings", 9, 0, 0), []int64{1}, []int64{9}, 8, 0)

	// At most scan entries a request.
	s1 := search("hello", 10, 0, 4)
	check("scan 4", s1, nil, nil, 4, 6)
	check("scan 4 again", search("hello", s1.Before, 0, 4), []int64{3, 2}, []int64{4}, 4, 2)
	check("scan to the start", search("hello", 2, 0, 4), nil, nil, 1, 0)

	sq, _ := natter.ParseSearch("hello")
	_, err := natter.Search(t.Context(), s, natter.SearchRequest{Room: "nowhere", Query: sq, Before: 1})
	wantCode(t, err, natter.ENOTFOUND)
	_, err = natter.Search(t.Context(), s, natter.SearchRequest{Room: room, Query: sq, Before: 0})
	wantCode(t, err, natter.EINVALID)
}

func equalSeqs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testReplies checks that a message answering another keeps its reply_to wherever it is read
// back (pages both ways, a repeat of its client_id, FindByClientID), and is a message, not a
// change.
func testReplies(t *testing.T, s natter.Store) {
	ctx := t.Context()
	mustCreateRoom(t, s, "replies")
	q := mustAppend(t, s, natter.AppendRequest{Room: "replies", Author: "alice", Body: "lunch?"})
	req := natter.AppendRequest{Room: "replies", Author: "bob", Body: "yes", ClientID: "c-reply", ReplyTo: q.Seq}
	r := mustAppend(t, s, req)
	plain := mustAppend(t, s, natter.AppendRequest{Room: "replies", Author: "carol", Body: "me too"})
	if r.ReplyTo != q.Seq || r.Kind != "" || plain.ReplyTo != 0 {
		t.Fatalf("appended a reply %+v and a message %+v", r, plain)
	}
	for _, page := range [][]natter.Message{mustAfter(t, s, "replies", 0, 10), mustBefore(t, s, "replies", plain.Seq+1, 10)} {
		wantSeqs(t, page, 1, 2, 3)
		if page[1].ReplyTo != q.Seq || page[0].ReplyTo != 0 || page[2].ReplyTo != 0 || !sameMessage(page[1], r) {
			t.Fatalf("read back %+v", page)
		}
	}
	again, created, err := s.AppendMessage(ctx, req)
	if err != nil || created || again.Seq != r.Seq || again.ReplyTo != q.Seq {
		t.Fatalf("a repeat of the reply's client_id: %+v, created %v, %v", again, created, err)
	}
	found, ok, err := s.FindByClientID(ctx, req)
	if err != nil || !ok || found.Seq != r.Seq || found.ReplyTo != q.Seq {
		t.Fatalf("FindByClientID of the reply: %+v, %v, %v", found, ok, err)
	}
	if room := mustRoom(t, s, "replies"); room.Changes != 0 {
		t.Fatalf("a reply counted as a change: %d", room.Changes)
	}
	if n, err := s.ChangesAfter(ctx, "replies", 0); err != nil || n != 0 {
		t.Fatalf("ChangesAfter counts a reply: %d, %v", n, err)
	}
}

// testReactions checks that reactions put on and taken off are stored as changes of their
// message, read back with their kind, target and emoji, and counted as changes (not messages).
func testReactions(t *testing.T, s natter.Store) {
	mustCreateRoom(t, s, "reactions")
	m := mustAppend(t, s, natter.AppendRequest{Room: "reactions", Author: "alice", Body: "ship it?"})
	on := mustAppend(t, s, natter.AppendRequest{Room: "reactions", Author: "bob", Kind: natter.KindReact, Target: m.Seq, Body: "👍🏽"})
	off := mustAppend(t, s, natter.AppendRequest{Room: "reactions", Author: "bob", Kind: natter.KindUnreact, Target: m.Seq, Body: "👍🏽", ClientID: "c-off"})
	page := mustAfter(t, s, "reactions", 0, 10)
	wantSeqs(t, page, 1, 2, 3)
	if !sameMessage(page[1], on) || page[1].Kind != natter.KindReact || page[1].Target != m.Seq || page[1].Body != "👍🏽" ||
		!sameMessage(page[2], off) || page[2].Kind != natter.KindUnreact {
		t.Fatalf("read back %+v", page)
	}
	if r := mustRoom(t, s, "reactions"); r.LastSeq != 3 || r.Changes != 2 {
		t.Fatalf("last_seq %d, changes %d; want 3 and 2", r.LastSeq, r.Changes)
	}
	if n, err := s.ChangesAfter(t.Context(), "reactions", 1); err != nil || n != 2 {
		t.Fatalf("ChangesAfter(1) = %d, %v; want 2", n, err)
	}
}

// testSetRoomTitle checks that a room's title can change (empty: its name), and nothing else of
// it; a bad title or an unknown room changes nothing.
func testSetRoomTitle(t *testing.T, s natter.Store) {
	before := mustCreateRoom(t, s, "renamed")
	mustAppend(t, s, natter.AppendRequest{Room: "renamed", Author: "alice", Body: "hi"})
	r, err := s.SetRoomTitle(t.Context(), "renamed", "Renamed ✓")
	must(t, err)
	if r.Title != "Renamed ✓" || r.Epoch != before.Epoch || r.LastSeq != 1 || !r.CreatedAt.Equal(before.CreatedAt) || r.CreatedBy != before.CreatedBy {
		t.Fatalf("renamed %+v from %+v", r, before)
	}
	if got := mustRoom(t, s, "renamed"); got.Title != "Renamed ✓" {
		t.Fatalf("read back title %q", got.Title)
	}
	_, err = s.SetRoomTitle(t.Context(), "renamed", string(make([]rune, natter.MaxRoomTitleChars+1)))
	wantCode(t, err, natter.EINVALID)
	_, err = s.SetRoomTitle(t.Context(), "nowhere", "x")
	wantCode(t, err, natter.ENOTFOUND)
	if r, err := s.SetRoomTitle(t.Context(), "renamed", ""); err != nil || r.Title != "renamed" {
		t.Fatalf("an empty title: %+v, %v; want the name", r, err)
	}
}

// testSetRoomTopic: a room's topic is set, read back (alone and in the list), kept across a
// rename, cleared with ""; a topic that is not one line within the limit is refused.
func testSetRoomTopic(t *testing.T, s natter.Store) {
	ctx := t.Context()
	before := mustCreateRoom(t, s, "topical")
	if before.Topic != "" {
		t.Fatalf("a new room's topic: %q", before.Topic)
	}
	r, err := s.SetRoomTopic(ctx, "topical", "Deploys: Tuesdays ✓")
	must(t, err)
	if r.Topic != "Deploys: Tuesdays ✓" || r.Title != before.Title || r.Epoch != before.Epoch {
		t.Fatalf("the room after SetRoomTopic: %+v", r)
	}
	if _, err := s.SetRoomTitle(ctx, "topical", "Topical"); err != nil {
		t.Fatal(err)
	}
	if got := mustRoom(t, s, "topical"); got.Topic != "Deploys: Tuesdays ✓" || got.Title != "Topical" {
		t.Fatalf("read back: %+v", got)
	}
	rooms, err := s.Rooms(ctx)
	must(t, err)
	for _, r := range rooms {
		if r.Name == "topical" && r.Topic != "Deploys: Tuesdays ✓" {
			t.Fatalf("the listed room: %+v", r)
		}
	}
	for _, bad := range []string{"two\nlines", string(make([]rune, natter.MaxRoomTopicChars+1)), "\xff"} {
		_, err := s.SetRoomTopic(ctx, "topical", bad)
		wantCode(t, err, natter.EINVALID)
	}
	_, err = s.SetRoomTopic(ctx, "nowhere", "x")
	wantCode(t, err, natter.ENOTFOUND)
	if r, err := s.SetRoomTopic(ctx, "topical", ""); err != nil || r.Topic != "" {
		t.Fatalf("clearing the topic: %+v, %v", r, err)
	}
}

// testPrivateRooms checks that a private room keeps its privacy and its members: the creator
// first, others as added (again is no error), in name order; public rooms have none.
func testPrivateRooms(t *testing.T, s natter.Store) {
	ctx := t.Context()
	r, err := s.CreateRoom(ctx, natter.Room{Name: "secret", Title: "Secret", CreatedBy: "carol", Private: true})
	must(t, err)
	if !r.Private {
		t.Fatalf("created %+v, not private", r)
	}
	if got := mustRoom(t, s, "secret"); !got.Private || got.CreatedBy != "carol" {
		t.Fatalf("read back %+v", got)
	}
	rooms, err := s.Rooms(ctx)
	must(t, err)
	for _, room := range rooms {
		if room.Private != (room.Name == "secret") {
			t.Fatalf("Rooms lists %s with private %v", room.Name, room.Private)
		}
	}
	members := func(room string) []string {
		t.Helper()
		m, err := s.Members(ctx, room)
		must(t, err)
		return m
	}
	if m := members("secret"); len(m) != 1 || m[0] != "carol" {
		t.Fatalf("members %v, want the creator", m)
	}
	must(t, s.AddMember(ctx, "secret", "alice", "carol"))
	must(t, s.AddMember(ctx, "secret", "alice", "carol"))
	if m := members("secret"); len(m) != 2 || m[0] != "alice" || m[1] != "carol" {
		t.Fatalf("members %v, want alice and carol", m)
	}
	for user, want := range map[string]bool{"alice": true, "carol": true, "bob": false} {
		if ok, err := s.IsMember(ctx, "secret", user); err != nil || ok != want {
			t.Fatalf("IsMember(%s) = %v, %v; want %v", user, ok, err, want)
		}
	}
	if ok, err := s.IsMember(ctx, natter.DefaultRoom, "alice"); err != nil || ok {
		t.Fatalf("IsMember of the lobby = %v, %v", ok, err)
	}
	if m := members(natter.DefaultRoom); len(m) != 0 {
		t.Fatalf("the lobby has members %v", m)
	}
	wantCode(t, s.AddMember(ctx, "nowhere", "alice", "carol"), natter.ENOTFOUND)
	must(t, s.RemoveMember(ctx, "secret", "alice"))
	must(t, s.RemoveMember(ctx, "secret", "alice"))
	if ok, err := s.IsMember(ctx, "secret", "alice"); err != nil || ok {
		t.Fatalf("IsMember after RemoveMember = %v, %v", ok, err)
	}
	if m := members("secret"); len(m) != 1 || m[0] != "carol" {
		t.Fatalf("members %v after alice's removal, want carol", m)
	}
	wantCode(t, s.RemoveMember(ctx, "nowhere", "alice"), natter.ENOTFOUND)
	_, err = s.CreateRoom(ctx, natter.Room{Name: "orphan", Private: true})
	wantCode(t, err, natter.EINVALID)
}

// testDirectRooms checks a direct conversation's room: both accounts are members from the start,
// the pair is read back from Room and Rooms, and the name and pair are checked before anything is
// stored.
func testDirectRooms(t *testing.T, s natter.Store) {
	ctx := t.Context()
	name := natter.DirectRoomName("dave", "ann")
	if name != natter.DirectRoomName("ann", "dave") || !strings.HasPrefix(name, natter.DirectPrefix) || !natter.ValidRoomName(name) {
		t.Fatalf("DirectRoomName = %q", name)
	}
	r, err := s.CreateRoom(ctx, natter.Room{Name: name, Title: "ann, dave", CreatedBy: "dave", Private: true, Direct: []string{"ann", "dave"}})
	must(t, err)
	if !r.Private || !slices.Equal(r.Direct, []string{"ann", "dave"}) {
		t.Fatalf("created %+v", r)
	}
	if got := mustRoom(t, s, name); !got.Private || !slices.Equal(got.Direct, []string{"ann", "dave"}) || got.CreatedBy != "dave" {
		t.Fatalf("read back %+v", got)
	}
	rooms, err := s.Rooms(ctx)
	must(t, err)
	for _, room := range rooms {
		if (room.Direct != nil) != (room.Name == name) {
			t.Fatalf("Rooms lists %s with direct %v", room.Name, room.Direct)
		}
	}
	if m, err := s.Members(ctx, name); err != nil || !slices.Equal(m, []string{"ann", "dave"}) {
		t.Fatalf("members %v, %v; want ann and dave", m, err)
	}
	_, err = s.CreateRoom(ctx, natter.Room{Name: name, CreatedBy: "ann", Private: true, Direct: []string{"ann", "dave"}})
	wantCode(t, err, natter.ECONFLICT)
	// A new title (servers refuse one to a conversation; stores keep what they are given) keeps
	// the rest of the room, its pair included.
	if r, err := s.SetRoomTitle(ctx, name, "Ann & Dave"); err != nil || r.Title != "Ann & Dave" || !slices.Equal(r.Direct, []string{"ann", "dave"}) || !r.Private {
		t.Fatalf("SetRoomTitle: %+v, %v", r, err)
	}
	for _, bad := range []natter.Room{
		{Name: natter.DirectPrefix + "mine", CreatedBy: "ann"},                                        // the prefix is kept
		{Name: natter.DirectPrefix + "mine", CreatedBy: "ann", Private: true},                         // also for private rooms
		{Name: natter.DirectRoomName("ann", "eve"), CreatedBy: "ann", Private: true},                  // the pair is needed
		{Name: natter.DirectRoomName("eve", "ann"), CreatedBy: "ann", Direct: []string{"ann", "eve"}}, // private
		{Name: natter.DirectRoomName("eve", "ann"), CreatedBy: "bob", Private: true, Direct: []string{"ann", "eve"}},
		{Name: natter.DirectRoomName("eve", "ann"), CreatedBy: "ann", Private: true, Direct: []string{"eve", "ann"}}, // in order
		{Name: natter.DirectRoomName("ann", "ann"), CreatedBy: "ann", Private: true, Direct: []string{"ann", "ann"}},
		{Name: "plain", CreatedBy: "ann", Private: true, Direct: []string{"ann", "eve"}}, // its name
		{Name: natter.DirectRoomName("eve", "ann"), CreatedBy: "ann", Private: true, Direct: []string{"ann", "Eve"}},
	} {
		_, err := s.CreateRoom(ctx, bad)
		wantCode(t, err, natter.EINVALID)
		if _, err := s.Room(ctx, bad.Name); natter.ErrorCode(err) != natter.ENOTFOUND {
			t.Fatalf("after a refused %+v: Room = %v, want not found", bad, err)
		}
	}
}
