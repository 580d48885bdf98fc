// Package storetest is the conformance suite for natter.Store: every implementation runs the same
// Run, so that the server can rely on the contract rather than on one backend's habits.
package storetest

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"natter"
)

// Run checks that the stores made by open keep the natter.Store contract. open must return a new,
// empty store (holding only the default room) and arrange for it to be closed when t ends. Each
// subtest opens its own store and runs in parallel with the others, so open may be called
// concurrently.
func Run(t *testing.T, open func(t *testing.T) natter.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s natter.Store)
	}{
		{"LobbyExists", testLobbyExists},
		{"CreateRoom", testCreateRoom},
		{"CreateRoomConflict", testCreateRoomConflict},
		{"CreateRoomInvalid", testCreateRoomInvalid},
		{"RoomNotFound", testRoomNotFound},
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"SessionExpiry", testSessionExpiry},
		{"SetPasswordHash", testSetPasswordHash},
		{"DeleteUserSessions", testDeleteUserSessions},
		{"AppendGapless", testAppendGapless},
		{"AppendRoomsIndependent", testAppendRoomsIndependent},
		{"EpochStable", testEpochStable},
		{"IdempotentClientID", testIdempotentClientID},
		{"IdempotentLongAfter", testIdempotentLongAfter},
		{"FindByClientID", testFindByClientID},
		{"ValidationStoresNothing", testValidationStoresNothing},
		{"CanceledAppend", testCanceledAppend},
		{"MessagesAfter", testMessagesAfter},
		{"MessagesBefore", testMessagesBefore},
		{"ReadUnknownRoom", testReadUnknownRoom},
		{"ReadYourWrites", testReadYourWrites},
		{"ConcurrentAppends", testConcurrentAppends},
		{"ConcurrentDuplicates", testConcurrentDuplicates},
		{"EditsAndDeletions", testEditsAndDeletions},
		{"Erase", testErase},
		{"Pins", testPins},
		{"ChangesSince", testChangesSince},
		{"Search", testSearch},
		{"Replies", testReplies},
		{"Reactions", testReactions},
		{"SetRoomTitle", testSetRoomTitle},
		{"SetRoomTopic", testSetRoomTopic},
		{"PrivateRooms", testPrivateRooms},
		{"DirectRooms", testDirectRooms},
		{"Moderation", testModeration},
		{"ReadMarks", testReadMarks},
		{"ReadMarksConcurrent", testReadMarksConcurrent},
		{"HiddenRooms", testHiddenRooms},
		{"DeleteRoom", testDeleteRoom},
		{"DeleteRoomRacingAppends", testDeleteRoomRacingAppends},
		{"ExpireBefore", testExpireBefore},
		{"EraseLongLogs", testEraseLongLogs},
		{"DeleteUser", testDeleteUser},
		{"EraseAuthor", testEraseAuthor},
		{"Edits", testEdits},
		{"Invites", testInvites},
		{"MutedRooms", testMutedRooms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// wantCode fails t unless err carries code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := natter.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

// must fails t on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustRoom(t *testing.T, s natter.Store, name string) natter.Room {
	t.Helper()
	r, err := s.Room(t.Context(), name)
	must(t, err)
	return r
}

func mustCreateRoom(t *testing.T, s natter.Store, name string) natter.Room {
	t.Helper()
	r, err := s.CreateRoom(t.Context(), natter.Room{Name: name, Title: "Room " + name, CreatedBy: "alice"})
	must(t, err)
	return r
}

func mustAppend(t *testing.T, s natter.Store, req natter.AppendRequest) natter.Message {
	t.Helper()
	m, created, err := s.AppendMessage(t.Context(), req)
	must(t, err)
	if !created {
		t.Fatalf("AppendMessage(%+v): created = false for a new message", req)
	}
	return m
}

// appendN appends n messages by alice to room and returns them.
func appendN(t *testing.T, s natter.Store, room string, n int) []natter.Message {
	t.Helper()
	msgs := make([]natter.Message, n)
	for i := range msgs {
		msgs[i] = mustAppend(t, s, natter.AppendRequest{Room: room, Author: "alice", Body: fmt.Sprintf("message %d", i+1)})
	}
	return msgs
}

func mustAfter(t *testing.T, s natter.Store, room string, after int64, limit int) []natter.Message {
	t.Helper()
	msgs, err := s.MessagesAfter(t.Context(), room, after, limit)
	must(t, err)
	return msgs
}

func mustBefore(t *testing.T, s natter.Store, room string, before int64, limit int) []natter.Message {
	t.Helper()
	msgs, err := s.MessagesBefore(t.Context(), room, before, limit)
	must(t, err)
	return msgs
}

// sameMessage reports whether a and b are the same stored message; times compare as instants.
func sameMessage(a, b natter.Message) bool {
	return a.Room == b.Room && a.Seq == b.Seq && a.ID == b.ID && a.ClientID == b.ClientID &&
		a.Author == b.Author && a.Body == b.Body && a.TS.Equal(b.TS) && a.Kind == b.Kind && a.Target == b.Target
}

// wantSeqs fails t unless msgs have exactly the seqs want, in order.
func wantSeqs(t *testing.T, msgs []natter.Message, want ...int64) {
	t.Helper()
	got := make([]int64, len(msgs))
	for i, m := range msgs {
		got[i] = m.Seq
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("seqs = %v, want %v", got, want)
	}
}

// seqRange returns from, from+1, ..., to.
func seqRange(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func testLobbyExists(t *testing.T, s natter.Store) {
	r := mustRoom(t, s, natter.DefaultRoom)
	if r.Name != natter.DefaultRoom || r.Title != "Lobby" || r.LastSeq != 0 || r.Epoch == "" {
		t.Fatalf("lobby = %+v, want name lobby, title Lobby, last_seq 0 and an epoch", r)
	}
	rooms, err := s.Rooms(t.Context())
	must(t, err)
	if len(rooms) != 1 || rooms[0].Name != natter.DefaultRoom || rooms[0].Epoch != r.Epoch {
		t.Fatalf("Rooms = %+v, want just the lobby", rooms)
	}
}

func testCreateRoom(t *testing.T, s natter.Store) {
	ctx := t.Context()
	lobby := mustRoom(t, s, natter.DefaultRoom)
	ops, err := s.CreateRoom(ctx, natter.Room{Name: "ops", Title: "Operations", CreatedBy: "alice"})
	must(t, err)
	if ops.Name != "ops" || ops.Title != "Operations" || ops.CreatedBy != "alice" || ops.LastSeq != 0 {
		t.Fatalf("CreateRoom = %+v", ops)
	}
	if ops.Epoch == "" || ops.Epoch == lobby.Epoch {
		t.Fatalf("ops epoch %q must be non-empty and differ from lobby's %q", ops.Epoch, lobby.Epoch)
	}
	if ops.CreatedAt.IsZero() {
		t.Fatalf("CreateRoom: CreatedAt is zero")
	}
	got := mustRoom(t, s, "ops")
	if got.Name != ops.Name || got.Title != ops.Title || got.Epoch != ops.Epoch ||
		got.CreatedBy != ops.CreatedBy || got.LastSeq != 0 || !got.CreatedAt.Equal(ops.CreatedAt) {
		t.Fatalf("Room = %+v, want %+v", got, ops)
	}

	// An empty title falls back to the name; a title of exactly the limit fits, in characters.
	dev, err := s.CreateRoom(ctx, natter.Room{Name: "dev"})
	must(t, err)
	if dev.Title != "dev" || mustRoom(t, s, "dev").Title != "dev" {
		t.Fatalf("empty title: got %q, want the name", dev.Title)
	}
	long := strings.Repeat("é", natter.MaxRoomTitleChars)
	r, err := s.CreateRoom(ctx, natter.Room{Name: "a-long_title9", Title: long})
	must(t, err)
	if r.Title != long {
		t.Fatalf("title of %d characters was changed", natter.MaxRoomTitleChars)
	}

	rooms, err := s.Rooms(ctx)
	must(t, err)
	var names []string
	for _, r := range rooms {
		names = append(names, r.Name)
	}
	if want := "a-long_title9 dev lobby ops"; strings.Join(names, " ") != want {
		t.Fatalf("Rooms = %v, want %s (by name)", names, want)
	}
}

func testCreateRoomConflict(t *testing.T, s natter.Store) {
	ctx := t.Context()
	lobby := mustRoom(t, s, natter.DefaultRoom)
	_, err := s.CreateRoom(ctx, natter.Room{Name: natter.DefaultRoom, Title: "Other"})
	wantCode(t, err, natter.ECONFLICT)

	first := mustCreateRoom(t, s, "ops")
	mustAppend(t, s, natter.AppendRequest{Room: "ops", Author: "alice", Body: "hi"})
	_, err = s.CreateRoom(ctx, natter.Room{Name: "ops", Title: "Second"})
	wantCode(t, err, natter.ECONFLICT)

	// The conflict changed nothing.
	if got := mustRoom(t, s, "ops"); got.Title != first.Title || got.Epoch != first.Epoch || got.LastSeq != 1 {
		t.Fatalf("after conflict ops = %+v, want %+v with last_seq 1", got, first)
	}
	if got := mustRoom(t, s, natter.DefaultRoom); got.Title != "Lobby" || got.Epoch != lobby.Epoch {
		t.Fatalf("after conflict lobby = %+v, want %+v", got, lobby)
	}
}

func testCreateRoomInvalid(t *testing.T, s natter.Store) {
	ctx := t.Context()
	for _, name := range []string{"", "Ops", "-ops", "_ops", "o ps", "o/ps", "ops.1", "öps",
		strings.Repeat("a", 65)} {
		_, err := s.CreateRoom(ctx, natter.Room{Name: name})
		wantCode(t, err, natter.EINVALID)
	}
	_, err := s.CreateRoom(ctx, natter.Room{Name: "ops", Title: strings.Repeat("x", natter.MaxRoomTitleChars+1)})
	wantCode(t, err, natter.EINVALID)
	_, err = s.CreateRoom(ctx, natter.Room{Name: "ops", Title: "bad \xff title"})
	wantCode(t, err, natter.EINVALID)

	// Nothing was stored, and the longest valid name works.
	rooms, err := s.Rooms(ctx)
	must(t, err)
	if len(rooms) != 1 {
		t.Fatalf("invalid rooms were stored: %+v", rooms)
	}
	mustCreateRoom(t, s, strings.Repeat("a", 64))
	mustCreateRoom(t, s, "0")
}

func testRoomNotFound(t *testing.T, s natter.Store) {
	_, err := s.Room(t.Context(), "nope")
	wantCode(t, err, natter.ENOTFOUND)
}

func testUsers(t *testing.T, s natter.Store) {
	ctx := t.Context()
	u, err := s.CreateUser(ctx, "alice", "hash-1")
	must(t, err)
	if u.Name != "alice" || u.Guest {
		t.Fatalf("CreateUser = %+v", u)
	}
	_, err = s.CreateUser(ctx, "alice", "hash-2")
	wantCode(t, err, natter.ECONFLICT)

	got, hash, err := s.UserPasswordHash(ctx, "alice")
	must(t, err)
	if got.Name != "alice" || hash != "hash-1" {
		t.Fatalf("UserPasswordHash = %+v, %q; want alice, hash-1 (a conflict must not overwrite)", got, hash)
	}
	_, _, err = s.UserPasswordHash(ctx, "bob")
	wantCode(t, err, natter.ENOTFOUND)

	_, err = s.CreateUser(ctx, "bob", "hash-3")
	must(t, err)
	if _, hash, err := s.UserPasswordHash(ctx, "bob"); err != nil || hash != "hash-3" {
		t.Fatalf("UserPasswordHash(bob) = %q, %v", hash, err)
	}
}

func testSessions(t *testing.T, s natter.Store) {
	ctx := t.Context()
	// Far from now on both sides, so that no clock skew between test and store matters. Whole
	// microseconds, so that a backend storing only those still round-trips exactly.
	created := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	expires := created.Add(24 * time.Hour)
	sess := natter.Session{TokenHash: "th-1", UserName: "alice", CreatedAt: created, ExpiresAt: expires}
	must(t, s.CreateSession(ctx, sess))
	guest := natter.Session{TokenHash: "th-2", UserName: "visitor", Guest: true, CreatedAt: created, ExpiresAt: expires}
	must(t, s.CreateSession(ctx, guest))

	for _, want := range []natter.Session{sess, guest} {
		got, err := s.SessionByTokenHash(ctx, want.TokenHash)
		must(t, err)
		if got.TokenHash != want.TokenHash || got.UserName != want.UserName || got.Guest != want.Guest ||
			!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Fatalf("SessionByTokenHash = %+v, want %+v", got, want)
		}
	}

	wantCode(t, s.CreateSession(ctx, natter.Session{TokenHash: "th-1", UserName: "mallory", ExpiresAt: expires}), natter.ECONFLICT)
	if got, err := s.SessionByTokenHash(ctx, "th-1"); err != nil || got.UserName != "alice" {
		t.Fatalf("after conflict session = %+v, %v; want alice's", got, err)
	}

	_, err := s.SessionByTokenHash(ctx, "th-none")
	wantCode(t, err, natter.EUNAUTHORIZED)

	must(t, s.DeleteSession(ctx, "th-1"))
	_, err = s.SessionByTokenHash(ctx, "th-1")
	wantCode(t, err, natter.EUNAUTHORIZED)
	must(t, s.DeleteSession(ctx, "th-1")) // absent: not an error
	must(t, s.DeleteSession(ctx, "th-none"))
	if _, err := s.SessionByTokenHash(ctx, "th-2"); err != nil {
		t.Fatalf("deleting one session revoked another: %v", err)
	}
}

func testSessionExpiry(t *testing.T, s natter.Store) {
	ctx := t.Context()
	past := time.Now().Add(-time.Hour).UTC()
	must(t, s.CreateSession(ctx, natter.Session{TokenHash: "old", UserName: "alice", CreatedAt: past.Add(-time.Hour), ExpiresAt: past}))
	_, err := s.SessionByTokenHash(ctx, "old")
	wantCode(t, err, natter.EUNAUTHORIZED)
}

func testSetPasswordHash(t *testing.T, s natter.Store) {
	ctx := t.Context()
	u, err := s.CreateUser(ctx, "alice", "hash-1")
	must(t, err)
	must(t, s.SetPasswordHash(ctx, "alice", "hash-2"))
	got, hash, err := s.UserPasswordHash(ctx, "alice")
	must(t, err)
	if hash != "hash-2" || got.Name != "alice" || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("after SetPasswordHash: %+v %q; want alice as created, with hash-2", got, hash)
	}
	wantCode(t, s.SetPasswordHash(ctx, "nobody", "hash-3"), natter.ENOTFOUND)
	if _, _, err := s.UserPasswordHash(ctx, "nobody"); natter.ErrorCode(err) != natter.ENOTFOUND {
		t.Fatalf("SetPasswordHash of a missing account made one: %v", err)
	}
	wantCode(t, s.SetPasswordHash(ctx, "alice", ""), natter.EINVALID)
	if _, hash, _ := s.UserPasswordHash(ctx, "alice"); hash != "hash-2" {
		t.Fatalf("a refused SetPasswordHash changed the hash to %q", hash)
	}
}

func testDeleteUserSessions(t *testing.T, s natter.Store) {
	ctx := t.Context()
	expires := time.Now().Add(time.Hour)
	for _, sess := range []natter.Session{
		{TokenHash: "a-1", UserName: "alice", ExpiresAt: expires},
		{TokenHash: "a-2", UserName: "alice", ExpiresAt: expires},
		{TokenHash: "a-3", UserName: "alice", ExpiresAt: expires},
		{TokenHash: "b-1", UserName: "bob", ExpiresAt: expires},
	} {
		must(t, s.CreateSession(ctx, sess))
	}
	live := func(hash string) bool {
		_, err := s.SessionByTokenHash(ctx, hash)
		return err == nil
	}
	n, err := s.DeleteUserSessions(ctx, "alice", "a-2")
	must(t, err)
	if n != 2 || live("a-1") || !live("a-2") || live("a-3") || !live("b-1") {
		t.Fatalf("DeleteUserSessions(alice, keep a-2) = %d; live: a-1 %v a-2 %v a-3 %v b-1 %v; want 2 gone, a-2 and bob's kept",
			n, live("a-1"), live("a-2"), live("a-3"), live("b-1"))
	}
	n, err = s.DeleteUserSessions(ctx, "alice", "")
	must(t, err)
	if n != 1 || live("a-2") || !live("b-1") {
		t.Fatalf("DeleteUserSessions(alice, keep none) = %d, a-2 live %v, b-1 live %v; want 1, false, true", n, live("a-2"), live("b-1"))
	}
	if n, err := s.DeleteUserSessions(ctx, "nobody", ""); err != nil || n != 0 {
		t.Fatalf("DeleteUserSessions of a user with none = %d, %v", n, err)
	}
}

func testAppendGapless(t *testing.T, s natter.Store) {
	ctx := t.Context()
	const n = 25
	msgs := make([]natter.Message, n)
	ids := map[string]bool{}
	for i := range msgs {
		req := natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: fmt.Sprintf("hello %d", i), ClientID: fmt.Sprintf("c-%d", i)}
		if i%2 == 1 {
			req.ClientID = "" // sends without a client_id are never deduplicated
			req.Body = "same body"
		}
		m := mustAppend(t, s, req)
		if m.Seq != int64(i+1) {
			t.Fatalf("append %d got seq %d, want %d", i, m.Seq, i+1)
		}
		if m.Room != req.Room || m.Author != req.Author || m.Body != req.Body || m.ClientID != req.ClientID {
			t.Fatalf("AppendMessage(%+v) = %+v", req, m)
		}
		if m.ID == "" || ids[m.ID] {
			t.Fatalf("message id %q is empty or reused", m.ID)
		}
		ids[m.ID] = true
		if m.TS.IsZero() || m.TS.Location() != time.UTC {
			t.Fatalf("message ts %v must be set and in UTC", m.TS)
		}
		msgs[i] = m
	}
	if r := mustRoom(t, s, natter.DefaultRoom); r.LastSeq != n {
		t.Fatalf("last_seq = %d, want %d", r.LastSeq, n)
	}
	stored, err := s.MessagesAfter(ctx, natter.DefaultRoom, 0, 1000)
	must(t, err)
	if len(stored) != n {
		t.Fatalf("stored %d messages, want %d", len(stored), n)
	}
	for i := range stored {
		if !sameMessage(stored[i], msgs[i]) {
			t.Fatalf("stored %+v, AppendMessage returned %+v", stored[i], msgs[i])
		}
	}
}

func testAppendRoomsIndependent(t *testing.T, s natter.Store) {
	mustCreateRoom(t, s, "ops")
	mustCreateRoom(t, s, "dev")
	// Interleave, so that a shared counter would show.
	want := map[string]int64{}
	for i, room := range []string{"ops", "ops", natter.DefaultRoom, "ops", "dev", natter.DefaultRoom, "ops"} {
		want[room]++
		m := mustAppend(t, s, natter.AppendRequest{Room: room, Author: "bob", Body: fmt.Sprint(i)})
		if m.Seq != want[room] || m.Room != room {
			t.Fatalf("append %d to %s = seq %d in %s, want seq %d", i, room, m.Seq, m.Room, want[room])
		}
	}
	for room, n := range want {
		if r := mustRoom(t, s, room); r.LastSeq != n {
			t.Fatalf("%s last_seq = %d, want %d", room, r.LastSeq, n)
		}
		msgs := mustAfter(t, s, room, 0, 100)
		wantSeqs(t, msgs, seqRange(1, n)...)
		for _, m := range msgs {
			if m.Room != room {
				t.Fatalf("MessagesAfter(%s) returned a message of %s", room, m.Room)
			}
		}
	}
}

func testEpochStable(t *testing.T, s natter.Store) {
	ctx := t.Context()
	ops := mustCreateRoom(t, s, "ops")
	lobby := mustRoom(t, s, natter.DefaultRoom)
	appendN(t, s, "ops", 3)
	appendN(t, s, natter.DefaultRoom, 2)
	mustCreateRoom(t, s, "dev")
	if got := mustRoom(t, s, "ops").Epoch; got != ops.Epoch {
		t.Fatalf("ops epoch changed from %q to %q", ops.Epoch, got)
	}
	rooms, err := s.Rooms(ctx)
	must(t, err)
	for _, r := range rooms {
		if r.Name == natter.DefaultRoom && r.Epoch != lobby.Epoch {
			t.Fatalf("lobby epoch changed from %q to %q", lobby.Epoch, r.Epoch)
		}
		if r.Name == "ops" && (r.Epoch != ops.Epoch || r.LastSeq != 3) {
			t.Fatalf("Rooms ops = %+v, want epoch %q, last_seq 3", r, ops.Epoch)
		}
	}
}

func testIdempotentClientID(t *testing.T, s natter.Store) {
	ctx := t.Context()
	mustCreateRoom(t, s, "ops")
	req := natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "hi", ClientID: "c-7f3a"}
	orig := mustAppend(t, s, req)
	mustAppend(t, s, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "between"})

	// The retry may differ in body (a buggy client): the original wins and nothing is stored.
	for _, body := range []string{"hi", "changed"} {
		again := req
		again.Body = body
		m, created, err := s.AppendMessage(ctx, again)
		must(t, err)
		if created {
			t.Fatalf("retry with body %q: created = true, want false", body)
		}
		if !sameMessage(m, orig) {
			t.Fatalf("retry returned %+v, want the original %+v", m, orig)
		}
	}
	if r := mustRoom(t, s, natter.DefaultRoom); r.LastSeq != 2 {
		t.Fatalf("last_seq = %d after retries, want 2", r.LastSeq)
	}
	wantSeqs(t, mustAfter(t, s, natter.DefaultRoom, 0, 100), 1, 2)

	// The key is (room, author, client_id): another author or another room is a new message.
	bob := mustAppend(t, s, natter.AppendRequest{Room: natter.DefaultRoom, Author: "bob", Body: "hi", ClientID: "c-7f3a"})
	ops := mustAppend(t, s, natter.AppendRequest{Room: "ops", Author: "alice", Body: "hi", ClientID: "c-7f3a"})
	if bob.Seq != 3 || ops.Seq != 1 {
		t.Fatalf("bob's seq %d, ops seq %d; want 3 and 1", bob.Seq, ops.Seq)
	}
	// And each of those is idempotent in its own right.
	m, created, err := s.AppendMessage(ctx, natter.AppendRequest{Room: "ops", Author: "alice", Body: "x", ClientID: "c-7f3a"})
	must(t, err)
	if created || !sameMessage(m, ops) {
		t.Fatalf("ops retry = %+v, created %v; want %+v, false", m, created, ops)
	}
	wantSeqs(t, mustAfter(t, s, natter.DefaultRoom, 0, 100), 1, 2, 3)
	wantSeqs(t, mustAfter(t, s, "ops", 0, 100), 1)
}

// testIdempotentLongAfter retries keys after many other keyed sends: a retry has no time window.
func testIdempotentLongAfter(t *testing.T, s natter.Store) {
	ctx := t.Context()
	first := natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "first", ClientID: "c-first"}
	orig := mustAppend(t, s, first)
	const goroutines, each = 20, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				req := natter.AppendRequest{Room: natter.DefaultRoom, Author: fmt.Sprint("u", g), Body: "x", ClientID: fmt.Sprint("c-", i)}
				if _, created, err := s.AppendMessage(ctx, req); err != nil || !created {
					t.Errorf("%+v: created %v, %v", req, created, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, req := range []natter.AppendRequest{first, {Room: natter.DefaultRoom, Author: "u3", Body: "again", ClientID: "c-0"}} {
		m, created, err := s.AppendMessage(ctx, req)
		must(t, err)
		if created {
			t.Fatalf("retry of %+v after %d other sends created a new message %+v", req, goroutines*each, m)
		}
		if req == first && !sameMessage(m, orig) {
			t.Fatalf("retry returned %+v, want the original %+v", m, orig)
		}
	}
	if r := mustRoom(t, s, natter.DefaultRoom); r.LastSeq != 1+goroutines*each {
		t.Fatalf("last_seq = %d, want %d", r.LastSeq, 1+goroutines*each)
	}
}

// testFindByClientID looks keys up without storing: only the full (room, author, client_id) finds
// the original, and a lookup queued right behind an append sees it.
func testFindByClientID(t *testing.T, s natter.Store) {
	ctx := t.Context()
	mustCreateRoom(t, s, "ops")
	req := natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "hi", ClientID: "c-7f3a"}
	orig := mustAppend(t, s, req)
	mustAppend(t, s, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "no key"})

	find := func(req natter.AppendRequest) (natter.Message, bool) {
		t.Helper()
		m, found, err := s.FindByClientID(ctx, req)
		must(t, err)
		return m, found
	}
	// Found whatever the body: the original comes back.
	for _, body := range []string{"hi", "changed", ""} {
		again := req
		again.Body = body
		if m, found := find(again); !found || !sameMessage(m, orig) {
			t.Fatalf("FindByClientID(%+v) = %+v, %v; want the original %+v", again, m, found, orig)
		}
	}
	for _, tc := range []struct {
		name string
		req  natter.AppendRequest
	}{
		{"another client_id", natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", ClientID: "c-other"}},
		{"another author", natter.AppendRequest{Room: natter.DefaultRoom, Author: "bob", ClientID: "c-7f3a"}},
		{"another room", natter.AppendRequest{Room: "ops", Author: "alice", ClientID: "c-7f3a"}},
		{"no client_id", natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice"}},
	} {
		if m, found := find(tc.req); found || m != (natter.Message{}) {
			t.Fatalf("%s: FindByClientID(%+v) = %+v, %v; want nothing", tc.name, tc.req, m, found)
		}
	}
	_, found, err := s.FindByClientID(ctx, natter.AppendRequest{Room: "nope", Author: "alice", ClientID: "c-7f3a"})
	wantCode(t, err, natter.ENOTFOUND)
	if found {
		t.Fatal("FindByClientID in an unknown room found a message")
	}

	// Lookups store nothing: the keys they missed are still new to AppendMessage.
	if r := mustRoom(t, s, natter.DefaultRoom); r.LastSeq != 2 {
		t.Fatalf("last_seq = %d after lookups, want 2", r.LastSeq)
	}
	wantSeqs(t, mustAfter(t, s, natter.DefaultRoom, 0, 100), 1, 2)
	bob := mustAppend(t, s, natter.AppendRequest{Room: natter.DefaultRoom, Author: "bob", Body: "bob's", ClientID: "c-7f3a"})
	if m, found := find(natter.AppendRequest{Room: natter.DefaultRoom, Author: "bob", ClientID: "c-7f3a"}); !found || !sameMessage(m, bob) {
		t.Fatalf("bob's key: %+v, %v; want %+v", m, found, bob)
	}

	// A lookup sees an append the same goroutine queued just before it, committed or not.
	async, ok := s.(natter.AsyncAppender)
	if !ok {
		return
	}
	queued := make(chan natter.Message, 1)
	err = async.AppendMessageAsync(ctx, natter.AppendRequest{Room: "ops", Author: "alice", Body: "async", ClientID: "c-async"}, func(m natter.Message, created bool, err error) {
		if err != nil || !created {
			t.Errorf("async append: created %v, %v", created, err)
		}
		queued <- m
	})
	must(t, err)
	m, found := find(natter.AppendRequest{Room: "ops", Author: "alice", ClientID: "c-async"})
	if stored := <-queued; !found || !sameMessage(m, stored) {
		t.Fatalf("lookup behind an async append = %+v, %v; want %+v", m, found, stored)
	}
}

func testValidationStoresNothing(t *testing.T, s natter.Store) {
	ctx := t.Context()
	ok := natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "fine"}
	for _, tc := range []struct {
		name string
		edit func(*natter.AppendRequest)
		code string
	}{
		{"empty body", func(r *natter.AppendRequest) { r.Body = "" }, natter.EINVALID},
		{"invalid UTF-8", func(r *natter.AppendRequest) { r.Body = "bad \xc3\x28 utf-8" }, natter.EINVALID},
		{"4097 characters", func(r *natter.AppendRequest) { r.Body = strings.Repeat("a", natter.DefaultMaxBodyChars+1) }, natter.ETOOLARGE},
		{"4097 multibyte characters", func(r *natter.AppendRequest) { r.Body = strings.Repeat("é", natter.DefaultMaxBodyChars+1) }, natter.ETOOLARGE},
		{"65-character client_id", func(r *natter.AppendRequest) { r.ClientID = strings.Repeat("c", natter.MaxClientIDChars+1) }, natter.EINVALID},
		{"invalid room name", func(r *natter.AppendRequest) { r.Room = "No Such Room" }, natter.EINVALID},
		{"unknown room", func(r *natter.AppendRequest) { r.Room = "nope" }, natter.ENOTFOUND},
	} {
		req := ok
		tc.edit(&req)
		_, _, err := s.AppendMessage(ctx, req)
		if got := natter.ErrorCode(err); got != tc.code {
			t.Errorf("%s: error %v (code %q), want code %q", tc.name, err, got, tc.code)
		}
	}
	if r := mustRoom(t, s, natter.DefaultRoom); r.LastSeq != 0 {
		t.Fatalf("rejected appends moved last_seq to %d", r.LastSeq)
	}
	if msgs := mustAfter(t, s, natter.DefaultRoom, 0, 100); len(msgs) != 0 {
		t.Fatalf("rejected appends stored %+v", msgs)
	}
	if _, err := s.Room(ctx, "nope"); natter.ErrorCode(err) != natter.ENOTFOUND {
		t.Fatalf("appending to an unknown room created it (err %v)", err)
	}

	// The limits are inclusive, and a rejected request didn't burn a seq.
	edge := ok
	edge.Body = strings.Repeat("é", natter.DefaultMaxBodyChars)
	edge.ClientID = strings.Repeat("c", natter.MaxClientIDChars)
	if m := mustAppend(t, s, edge); m.Seq != 1 || m.Body != edge.Body || m.ClientID != edge.ClientID {
		t.Fatalf("edge-of-limit append = seq %d, body %d chars, client_id %q", m.Seq, len([]rune(m.Body)), m.ClientID)
	}
}

func testCanceledAppend(t *testing.T, s natter.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := s.AppendMessage(ctx, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "never"})
	if err == nil {
		t.Fatal("AppendMessage with a canceled context succeeded")
	}
	// The store still works afterwards, and seqs stay gapless whether or not the canceled one landed.
	last := mustRoom(t, s, natter.DefaultRoom).LastSeq
	m := mustAppend(t, s, natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "after"})
	if m.Seq != last+1 {
		t.Fatalf("seq after a canceled append = %d, want %d", m.Seq, last+1)
	}
}

func testMessagesAfter(t *testing.T, s natter.Store) {
	msgs := appendN(t, s, natter.DefaultRoom, 10)
	all := mustAfter(t, s, natter.DefaultRoom, 0, 100)
	wantSeqs(t, all, seqRange(1, 10)...)
	for i := range all {
		if !sameMessage(all[i], msgs[i]) {
			t.Fatalf("MessagesAfter[%d] = %+v, want %+v", i, all[i], msgs[i])
		}
	}
	wantSeqs(t, mustAfter(t, s, natter.DefaultRoom, 3, 4), 4, 5, 6, 7)
	wantSeqs(t, mustAfter(t, s, natter.DefaultRoom, 8, 100), 9, 10)
	wantSeqs(t, mustAfter(t, s, natter.DefaultRoom, 0, 1), 1)
	wantSeqs(t, mustAfter(t, s, natter.DefaultRoom, 9, 1), 10)
	wantSeqs(t, mustAfter(t, s, natter.DefaultRoom, 10, 100))
	wantSeqs(t, mustAfter(t, s, natter.DefaultRoom, 1000, 100))
	wantSeqs(t, mustAfter(t, s, natter.DefaultRoom, -5, 3), 1, 2, 3)

	mustCreateRoom(t, s, "empty")
	wantSeqs(t, mustAfter(t, s, "empty", 0, 100))
}

func testMessagesBefore(t *testing.T, s natter.Store) {
	msgs := appendN(t, s, natter.DefaultRoom, 10)
	wantSeqs(t, mustBefore(t, s, natter.DefaultRoom, 5, 2), 3, 4)
	wantSeqs(t, mustBefore(t, s, natter.DefaultRoom, 5, 100), 1, 2, 3, 4)
	wantSeqs(t, mustBefore(t, s, natter.DefaultRoom, 11, 3), 8, 9, 10)
	wantSeqs(t, mustBefore(t, s, natter.DefaultRoom, 1<<62, 3), 8, 9, 10)
	wantSeqs(t, mustBefore(t, s, natter.DefaultRoom, 10, 1), 9)
	wantSeqs(t, mustBefore(t, s, natter.DefaultRoom, 1, 10))
	got := mustBefore(t, s, natter.DefaultRoom, 11, 100)
	wantSeqs(t, got, seqRange(1, 10)...)
	for i := range got {
		if !sameMessage(got[i], msgs[i]) {
			t.Fatalf("MessagesBefore[%d] = %+v, want %+v", i, got[i], msgs[i])
		}
	}
	mustCreateRoom(t, s, "empty")
	wantSeqs(t, mustBefore(t, s, "empty", 5, 100))
}

func testReadUnknownRoom(t *testing.T, s natter.Store) {
	ctx := t.Context()
	appendN(t, s, natter.DefaultRoom, 1)
	_, err := s.MessagesAfter(ctx, "nope", 0, 10)
	wantCode(t, err, natter.ENOTFOUND)
	_, err = s.MessagesBefore(ctx, "nope", 10, 10)
	wantCode(t, err, natter.ENOTFOUND)
}

func testReadYourWrites(t *testing.T, s natter.Store) {
	const writers, each = 5, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				m, _, err := s.AppendMessage(t.Context(), natter.AppendRequest{Room: natter.DefaultRoom, Author: fmt.Sprintf("w%d", w), Body: fmt.Sprint(i)})
				if err != nil {
					errs <- err
					return
				}
				// The instant AppendMessage returns, every reader must see the message.
				got, err := s.MessagesAfter(t.Context(), natter.DefaultRoom, m.Seq-1, 1)
				if err != nil {
					errs <- err
					return
				}
				if len(got) != 1 || !sameMessage(got[0], m) {
					errs <- fmt.Errorf("after AppendMessage returned seq %d, MessagesAfter(%d, 1) = %+v", m.Seq, m.Seq-1, got)
					return
				}
				r, err := s.Room(t.Context(), natter.DefaultRoom)
				if err != nil {
					errs <- err
					return
				}
				if r.LastSeq < m.Seq {
					errs <- fmt.Errorf("after AppendMessage returned seq %d, Room.LastSeq = %d", m.Seq, r.LastSeq)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testConcurrentAppends(t *testing.T, s natter.Store) {
	rooms := []string{natter.DefaultRoom, "ops", "dev"}
	mustCreateRoom(t, s, "ops")
	mustCreateRoom(t, s, "dev")
	const goroutines, each = 50, 20

	type key struct{ room, author, clientID string }
	var mu sync.Mutex
	acked := map[key]natter.Message{}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				// Every goroutine writes to every room, so appends to one room race each other.
				k := key{rooms[(g+i)%len(rooms)], fmt.Sprintf("user%d", g), fmt.Sprintf("c-%d-%d", g, i)}
				m, created, err := s.AppendMessage(t.Context(), natter.AppendRequest{Room: k.room, Author: k.author, Body: k.clientID, ClientID: k.clientID})
				if err != nil {
					errs <- err
					return
				}
				if !created {
					errs <- fmt.Errorf("%+v: created = false for a new message", k)
					return
				}
				mu.Lock()
				acked[k] = m
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	total := 0
	for _, room := range rooms {
		msgs := mustAfter(t, s, room, 0, goroutines*each)
		total += len(msgs)
		wantSeqs(t, msgs, seqRange(1, int64(len(msgs)))...)
		if r := mustRoom(t, s, room); r.LastSeq != int64(len(msgs)) {
			t.Fatalf("%s last_seq = %d, stored %d", room, r.LastSeq, len(msgs))
		}
		for _, m := range msgs {
			k := key{m.Room, m.Author, m.ClientID}
			a, ok := acked[k]
			if !ok {
				t.Fatalf("stored message %+v was never acknowledged (or stored twice)", m)
			}
			if !sameMessage(a, m) {
				t.Fatalf("stored %+v, acknowledged %+v", m, a)
			}
			delete(acked, k)
		}
	}
	if total != goroutines*each || len(acked) != 0 {
		t.Fatalf("stored %d messages, want %d; %d acknowledged messages missing", total, goroutines*each, len(acked))
	}
}

func testConcurrentDuplicates(t *testing.T, s natter.Store) {
	// A client that retries in a storm: the same key many times at once stores exactly one message.
	const senders = 20
	req := natter.AppendRequest{Room: natter.DefaultRoom, Author: "alice", Body: "once", ClientID: "storm"}
	results := make([]natter.Message, senders)
	createdN := make([]bool, senders)
	errs := make([]error, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() { results[i], createdN[i], errs[i] = s.AppendMessage(t.Context(), req) })
	}
	wg.Wait()
	nCreated := 0
	for i := range senders {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if createdN[i] {
			nCreated++
		}
		if !sameMessage(results[i], results[0]) {
			t.Fatalf("duplicate sends got different messages: %+v and %+v", results[i], results[0])
		}
	}
	if nCreated != 1 {
		t.Fatalf("%d of %d identical sends report created, want exactly 1", nCreated, senders)
	}
	wantSeqs(t, mustAfter(t, s, natter.DefaultRoom, 0, 100), 1)
	if results[0].Seq != 1 {
		t.Fatalf("seq = %d, want 1", results[0].Seq)
	}
}

// marksOf returns user's marks by room.
func marksOf(t *testing.T, s natter.Store, user string) map[string]natter.ReadMark {
	t.Helper()
	marks, err := s.ReadMarks(context.Background(), user)
	if err != nil {
		t.Fatalf("ReadMarks(%s): %v", user, err)
	}
	byRoom := make(map[string]natter.ReadMark)
	for _, m := range marks {
		if _, dup := byRoom[m.Room]; dup {
			t.Fatalf("ReadMarks(%s) has room %q twice: %v", user, m.Room, marks)
		}
		byRoom[m.Room] = m
	}
	return byRoom
}

// testReadMarks: a mark moves forward only, per account and room; a mark outside the room's log,
// of another epoch, of an unknown room or a bad name is refused and changes nothing.
func testReadMarks(t *testing.T, s natter.Store) {
	ctx := context.Background()
	if m := marksOf(t, s, "alice"); len(m) != 0 {
		t.Fatalf("marks of a new account: %v", m)
	}
	r := mustCreateRoom(t, s, "marked")
	appendN(t, s, "marked", 3)
	lobby := mustRoom(t, s, natter.DefaultRoom)
	set := func(user string, m natter.ReadMark) error { return s.SetReadMark(ctx, user, m) }

	must(t, set("alice", natter.ReadMark{Room: "marked", Epoch: r.Epoch, Seq: 2}))
	must(t, set("alice", natter.ReadMark{Room: "marked", Epoch: r.Epoch, Seq: 1})) // back: stays at 2
	must(t, set("alice", natter.ReadMark{Room: natter.DefaultRoom, Epoch: lobby.Epoch, Seq: 0}))
	want := map[string]natter.ReadMark{
		"marked":           {Room: "marked", Epoch: r.Epoch, Seq: 2},
		natter.DefaultRoom: {Room: natter.DefaultRoom, Epoch: lobby.Epoch, Seq: 0},
	}
	if got := marksOf(t, s, "alice"); !maps.Equal(got, want) {
		t.Fatalf("alice's marks %v, want %v", got, want)
	}
	if got := marksOf(t, s, "bob"); len(got) != 0 {
		t.Fatalf("bob's marks %v after alice's, want none", got)
	}

	for _, c := range []struct {
		user string
		mark natter.ReadMark
		code string
	}{
		{"alice", natter.ReadMark{Room: "marked", Epoch: r.Epoch, Seq: 4}, natter.EINVALID},
		{"alice", natter.ReadMark{Room: "marked", Epoch: r.Epoch, Seq: -1}, natter.EINVALID},
		{"alice", natter.ReadMark{Room: "marked", Epoch: r.Epoch + "x", Seq: 3}, natter.ECONFLICT},
		{"alice", natter.ReadMark{Room: "nowhere", Epoch: r.Epoch, Seq: 1}, natter.ENOTFOUND},
		{"Not A Name", natter.ReadMark{Room: "marked", Epoch: r.Epoch, Seq: 3}, natter.EINVALID},
	} {
		wantCode(t, set(c.user, c.mark), c.code)
	}
	if got := marksOf(t, s, "alice"); !maps.Equal(got, want) {
		t.Fatalf("alice's marks %v after refused marks, want %v", got, want)
	}

	must(t, set("alice", natter.ReadMark{Room: "marked", Epoch: r.Epoch, Seq: 3}))
	must(t, set("bob", natter.ReadMark{Room: "marked", Epoch: r.Epoch, Seq: 1}))
	want["marked"] = natter.ReadMark{Room: "marked", Epoch: r.Epoch, Seq: 3}
	if got := marksOf(t, s, "alice"); !maps.Equal(got, want) {
		t.Fatalf("alice's marks %v, want %v", got, want)
	}
	if got := marksOf(t, s, "bob"); !maps.Equal(got, map[string]natter.ReadMark{"marked": {Room: "marked", Epoch: r.Epoch, Seq: 1}}) {
		t.Fatalf("bob's marks %v, want marked at 1", got)
	}
}

// testReadMarksConcurrent: marks set from many goroutines at once end at the furthest.
func testReadMarksConcurrent(t *testing.T, s natter.Store) {
	r := mustCreateRoom(t, s, "busy")
	appendN(t, s, "busy", 50)
	var wg sync.WaitGroup
	for g := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := int64(g); seq <= 50; seq += 5 {
				if err := s.SetReadMark(context.Background(), "carol", natter.ReadMark{Room: "busy", Epoch: r.Epoch, Seq: seq}); err != nil {
					t.Errorf("SetReadMark %d: %v", seq, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := marksOf(t, s, "carol")["busy"]; got.Seq != 50 || got.Epoch != r.Epoch {
		t.Fatalf("carol's mark after concurrent marks up to 50: %+v", got)
	}
}

// testEditsAndDeletions: an edit or a deletion is an entry of the log with its kind and target,
// returned, read back (after and before) and found by client_id as stored; a repeat of its
// client_id stores nothing.
func testEditsAndDeletions(t *testing.T, s natter.Store) {
	ctx := context.Background()
	mustCreateRoom(t, s, "edits")
	first := mustAppend(t, s, natter.AppendRequest{Room: "edits", Author: "alice", Body: "helo"})
	edit := natter.AppendRequest{Room: "edits", Author: "alice", Body: "hello", ClientID: "c-edit", Kind: natter.KindEdit, Target: first.Seq}
	e := mustAppend(t, s, edit)
	d := mustAppend(t, s, natter.AppendRequest{Room: "edits", Author: "alice", Kind: natter.KindDelete, Target: first.Seq})
	last := mustAppend(t, s, natter.AppendRequest{Room: "edits", Author: "alice", Body: "after"})
	if e.Kind != natter.KindEdit || e.Target != first.Seq || e.Body != "hello" || d.Kind != natter.KindDelete || d.Target != first.Seq || d.Body != "" {
		t.Fatalf("appended edit %+v and deletion %+v", e, d)
	}
	if last.Kind != "" || last.Target != 0 {
		t.Fatalf("a message after them has kind %q, target %d", last.Kind, last.Target)
	}
	// The deletion erased the edit's text (testErase has the rest of erasing).
	erased := e
	erased.Body, erased.Deleted = "", true
	for _, page := range [][]natter.Message{mustAfter(t, s, "edits", 0, 10), mustBefore(t, s, "edits", last.Seq+1, 10)} {
		wantSeqs(t, page, 1, 2, 3, 4)
		if !sameMessage(page[1], erased) || !page[1].Deleted || !sameMessage(page[2], d) || page[2].Deleted || page[1].Kind != natter.KindEdit || page[2].Target != first.Seq {
			t.Fatalf("read back %+v, %+v; want %+v, %+v", page[1], page[2], erased, d)
		}
	}
	again, created, err := s.AppendMessage(ctx, edit)
	if err != nil || created || again.Seq != e.Seq || again.Kind != natter.KindEdit || again.Target != first.Seq || again.Body != "" || !again.Deleted {
		t.Fatalf("a repeat of the edit's client_id: %+v, created %v, %v; want the stored edit, erased", again, created, err)
	}
	found, ok, err := s.FindByClientID(ctx, edit)
	if err != nil || !ok || found.Seq != e.Seq || found.Kind != natter.KindEdit || found.Target != first.Seq {
		t.Fatalf("FindByClientID of the edit: %+v, %v, %v", found, ok, err)
	}
	if r := mustRoom(t, s, "edits"); r.LastSeq != 4 || r.Changes != 2 {
		t.Fatalf("last_seq %d and changes %d after two messages, an edit and a deletion, want 4 and 2", r.LastSeq, r.Changes)
	}
	rooms, err := s.Rooms(ctx)
	must(t, err)
	for _, r := range rooms {
		if want := map[bool]int64{true: 2, false: 0}[r.Name == "edits"]; r.Changes != want {
			t.Fatalf("Rooms lists %s with %d changes, want %d", r.Name, r.Changes, want)
		}
	}
	for after, want := range map[int64]int64{0: 2, 1: 2, 2: 1, 3: 0, 4: 0} {
		if n, err := s.ChangesAfter(ctx, "edits", after); err != nil || n != want {
			t.Fatalf("ChangesAfter(%d) = %d, %v; want %d", after, n, err, want)
		}
	}
	if n, err := s.ChangesAfter(ctx, natter.DefaultRoom, 0); err != nil || n != 0 {
		t.Fatalf("ChangesAfter in a room without changes = %d, %v", n, err)
	}
}
