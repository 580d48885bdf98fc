package server_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"natter"
	"natter/app"
	"natter/internal/redistest"
	"natter/server"
)

// startCluster starts n natter nodes sharing one Redis prefix: one chat behind several servers.
func startCluster(t *testing.T, n int, mutate ...func(*app.Config)) []*testServer {
	nodes, _, _ := startClusterAt(t, n, mutate...)
	return nodes
}

// startClusterAt is startCluster that also returns the Redis URL and the key prefix.
func startClusterAt(t *testing.T, n int, mutate ...func(*app.Config)) ([]*testServer, string, string) {
	t.Helper()
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	nodes := make([]*testServer, n)
	for i := range nodes {
		nodes[i] = startServer(t, append([]func(*app.Config){func(c *app.Config) { c.Redis, c.RedisPrefix = url, prefix }}, mutate...)...)
	}
	return nodes, url, prefix
}

// TestClusterOneLogAcrossNodes: two nodes on one Redis are one chat. A session made on one works
// on the other, a room made on one is on the other, and messages sent to both at once reach the
// WebSocket, SSE and long-poll subscribers of both nodes as one log: every seq once, in order,
// with the same message behind it everywhere.
func TestClusterOneLogAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	alice := a.signIn("alice")
	bob := b.signIn("bob")
	if r := b.do("GET", "/api/session", alice, nil); r.Status != http.StatusOK {
		t.Fatalf("alice's session (made on node A) on node B: %d %s", r.Status, r.Raw)
	}
	if r := a.do("POST", "/api/rooms", alice, map[string]string{"name": "ops", "title": "Ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create room on A: %d %s", r.Status, r.Raw)
	}
	if r := b.do("GET", "/api/rooms/ops", bob, nil); r.Status != http.StatusOK {
		t.Fatalf("the room made on A, read on B: %d %s", r.Status, r.Raw)
	}

	wsA, wsB := a.dialWS(alice), b.dialWS(bob)
	wsA.subscribe("ops", 0)
	wsB.subscribe("ops", 0)
	sseB := b.openSSE("/api/rooms/ops/events?after=0", bob)
	sseB.waitSubscribed()

	const perSender = 60
	var wg sync.WaitGroup
	stored := make(map[int64]natter.Message)
	var mu sync.Mutex
	for i, node := range []*testServer{a, b, a, b} {
		tok := []string{alice, bob}[i%2]
		wg.Go(func() {
			for j := range perSender {
				r, err := node.doErr("POST", "/api/rooms/ops/messages", tok, map[string]string{"body": fmt.Sprintf("sender %d message %d", i, j), "client_id": fmt.Sprintf("c-%d-%d", i, j)})
				if err != nil || r.Status != http.StatusCreated {
					t.Errorf("send %d/%d: %v %d %s", i, j, err, r.Status, r.Raw)
					return
				}
				m := messageOf(t, r)
				mu.Lock()
				stored[m.Seq] = m
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	total := int64(4 * perSender)
	if len(stored) != int(total) {
		t.Fatalf("%d distinct seqs acknowledged, want %d", len(stored), total)
	}
	same := func(where string, m natter.Message) {
		t.Helper()
		if want := stored[m.Seq]; m.ID != want.ID || m.Body != want.Body || m.Author != want.Author {
			t.Fatalf("%s: seq %d is %q by %s (id %s), acknowledged as %q by %s (id %s)", where, m.Seq, m.Body, m.Author, m.ID, want.Body, want.Author, want.ID)
		}
	}
	for name, c := range map[string]*wsClient{"node A's WebSocket": wsA, "node B's WebSocket": wsB} {
		for seq := int64(1); seq <= total; seq++ {
			m := c.nextExcept("presence", "join", "leave").msg(t)
			if m.Seq != seq {
				t.Fatalf("%s: seq %d, want %d", name, m.Seq, seq)
			}
			same(name, m)
		}
	}
	for seq := int64(1); seq <= total; seq++ {
		m := sseB.nextMessage()
		if m.Seq != seq {
			t.Fatalf("node B's event stream: seq %d, want %d", m.Seq, seq)
		}
		same("node B's event stream", m)
	}
	// A long-poll on A from the middle of the log, and one parked on B for the next message.
	page := a.read(alice, fmt.Sprintf("/api/rooms/ops/messages?after=%d&wait=5", total-10))
	if len(page.Messages) != 10 || page.Messages[0].Seq != total-9 || page.LastSeq != total {
		t.Fatalf("long-poll on A after %d: %d messages from %v, last_seq %d", total-10, len(page.Messages), page.Messages, page.LastSeq)
	}
	parkedB := b.doAsync("GET", fmt.Sprintf("/api/rooms/ops/messages?after=%d&wait=30", total), bob, nil)
	parked(t, b, 3) // bob's WebSocket and stream, and this poll
	next := a.mustPost(alice, "ops", "sent on A, waited for on B")
	r := <-parkedB
	if got := decodePage(t, r); len(got.Messages) != 1 || got.Messages[0].Seq != next.Seq || got.Messages[0].ID != next.ID {
		t.Fatalf("the poll parked on B got %s, want seq %d from A", r.Raw, next.Seq)
	}
}

// TestClusterSignOutReachesEveryNode: signing out on one node closes the session's connections on
// the others and its token stops working there at once; changing a password on one node ends the
// account's other sessions on every node, and a new sign-in connects at once anywhere.
func TestClusterSignOutReachesEveryNode(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	alice := a.signIn("alice")
	wsB := b.dialWS(alice)
	wsB.subscribe("lobby", 0)
	if r := b.do("GET", "/api/session", alice, nil); r.Status != http.StatusOK { // now in B's cache
		t.Fatalf("alice on B: %d", r.Status)
	}
	if r := a.do("DELETE", "/api/session", alice, nil); r.Status != http.StatusNoContent {
		t.Fatalf("sign out on A: %d %s", r.Status, r.Raw)
	}
	wantSignedOut(t, wsB)
	checkError(t, b.do("GET", "/api/session", alice, nil), http.StatusUnauthorized, "unauthorized")

	if r := a.register("carol", "old password"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	c1, c2 := a.signInPassword("carol", "old password"), b.signInPassword("carol", "old password")
	wsC2 := b.dialWS(c2)
	wsC2.subscribe("lobby", 0)
	if r := a.do("PUT", "/api/account/password", c1, map[string]string{"password": "old password", "new_password": "new password"}); r.Status != http.StatusOK {
		t.Fatalf("change password on A: %d %s", r.Status, r.Raw)
	}
	wantSignedOut(t, wsC2)
	checkError(t, b.do("GET", "/api/session", c2, nil), http.StatusUnauthorized, "unauthorized")
	if r := b.do("GET", "/api/session", c1, nil); r.Status != http.StatusOK {
		t.Fatalf("the session that changed the password, on B: %d", r.Status)
	}
	c3 := b.signInPassword("carol", "new password")
	b.dialWS(c3).subscribe("lobby", 0)
}

// TestClusterPresence: who is online is the same on every node. A user connected to one node
// joins for the subscribers of the others (once, however many nodes they are on), shows in every
// node's presence list, and leaves everywhere when their last connection anywhere ends; the users
// of a node that stops leave at once.
func TestClusterPresence(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	alice, bob, carol := a.signIn("alice"), b.signIn("bob"), b.signIn("carol")
	wsA := a.dialWS(alice)
	wsA.subscribe("lobby", 0)
	onB := func(want string) func() bool {
		return func() bool {
			r := b.do("GET", "/api/rooms/lobby/presence", bob, nil)
			return strings.Contains(string(r.Raw), want)
		}
	}
	waitFor(t, "alice (on A) online on B", onB(`"alice"`))

	wsB := b.dialWS(bob)
	_, presence := wsB.subscribe("lobby", 0)
	if !strings.Contains(presence.String(), `"alice"`) || !strings.Contains(presence.String(), `"bob"`) {
		t.Fatalf("bob's presence list on B: %s, want alice (on A) and bob", presence)
	}
	wantMember := func(c *wsClient, typ, user string) {
		t.Helper()
		f := c.nextExcept("presence", "message")
		if f.Type != typ || !strings.Contains(f.String(), `"user":"`+user+`"`) {
			t.Fatalf("want %s of %s, got %s", typ, user, f)
		}
	}
	wantMember(wsA, "join", "bob")
	if r := a.do("GET", "/api/rooms/lobby/presence", alice, nil); !strings.Contains(string(r.Raw), `"bob"`) {
		t.Fatalf("presence on A: %s, want bob (on B)", r.Raw)
	}

	// Bob on A too: no second join anywhere; leaving A alone leaves him online.
	wsB2 := a.dialWS(bob)
	wsB2.subscribe("lobby", 0)
	wsB2.conn.Close()
	// A long-poller on B joins for A's subscribers; alice sees that join next, with no
	// leave of bob in between.
	poll := b.doAsync("GET", "/api/rooms/lobby/messages?after=0&wait=30", carol, nil)
	wantMember(wsA, "join", "carol")
	wsB.conn.Close()
	wantMember(wsA, "leave", "bob")

	// Node B stops: carol, online through it, leaves at once.
	b.close()
	<-poll
	wantMember(wsA, "leave", "carol")
}

// TestClusterRechecksSessionsAfterALostSubscription: a node that could not hear revocations for
// a while (its subscription was cut) checks the sessions of its open connections once it is
// back, and closes those that ended meanwhile. Here the session is deleted behind the nodes'
// backs, so no revocation is ever published: only the check can close its WebSocket.
func TestClusterRechecksSessionsAfterALostSubscription(t *testing.T) {
	nodes, url, prefix := startClusterAt(t, 1, func(c *app.Config) { c.Server.Metrics = true })
	a := nodes[0]
	alice, bob := a.signIn("alice"), a.signIn("bob")
	wsAlice, wsBob := a.dialWS(alice), a.dialWS(bob)
	wsAlice.subscribe("lobby", 0)
	wsBob.subscribe("lobby", 0)

	rdb := redistest.Client(t, url)
	if n, err := rdb.Del(t.Context(), prefix+":sess:"+server.TokenHash(alice)).Result(); err != nil || n != 1 {
		t.Fatalf("delete alice's session in Redis: %d, %v", n, err)
	}
	clients, err := rdb.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	ours := fmt.Sprintf(" name=natter-%s-%d ", host, os.Getpid()) // the nodes' default client name
	killed := 0
	for _, line := range strings.Split(clients, "\n") {
		if strings.Contains(line, " cmd=subscribe") && strings.Contains(line, ours) {
			id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
			if err := rdb.Do(t.Context(), "CLIENT", "KILL", "ID", id).Err(); err == nil {
				killed++
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no subscription to cut:\n%s", clients)
	}
	wantSignedOut(t, wsAlice)
	// /metrics tells the operator: subscribed again, after one loss. (The channels' confirmations
	// come back in any order: the one that rechecks the sessions may come before the commits'.)
	waitFor(t, "/metrics to say subscribed again, after one loss", func() bool {
		metrics := string(a.do("GET", "/metrics", "", nil).Raw)
		return strings.Contains(metrics, "\nnatter_redis_subscribed 1\n") && strings.Contains(metrics, "\nnatter_redis_resubscriptions_total 1\n")
	})
	// Bob's session is live: his WebSocket stays.
	a.mustPost(bob, "lobby", "bob is still here")
	if m := wsBob.nextExcept("presence", "join", "leave").msg(t); m.Body != "bob is still here" {
		t.Fatalf("bob's WebSocket got %q", m.Body)
	}
}

// TestClusterSignInLimitsAreShared: the sign-in limits hold across the nodes, not on each: an
// address's sign-ins and an account's failed passwords count wherever they happen.
func TestClusterSignInLimitsAreShared(t *testing.T) {
	nodes := startCluster(t, 2, func(c *app.Config) { c.Server.SignInRate = 3 })
	a, b := nodes[0], nodes[1]
	a.signIn("ann")
	b.signIn("ben")
	if r := a.register("carol", "password"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	// 3 a minute: the next in 20 s, less what Redis's clock saw pass since the burst began.
	refusedSignIn(t, b.signInFrom("dan", ""), "127.0.0.1", "1-20")
	refusedSignIn(t, a.signInFrom("dan", ""), "127.0.0.1", "1-20")
}

// TestClusterFailedSignInsAreShared: an account's failed password sign-ins count on every node.
func TestClusterFailedSignInsAreShared(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	if r := a.register("carol", "password"); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	for i := range 10 {
		node := []*testServer{a, b}[i%2]
		checkError(t, node.do("POST", "/api/session", "", map[string]string{"name": "carol", "password": fmt.Sprint("guess ", i)}), http.StatusUnauthorized, "unauthorized")
	}
	for _, node := range []*testServer{a, b} {
		checkError(t, node.do("POST", "/api/session", "", map[string]string{"name": "carol", "password": "password"}), http.StatusTooManyRequests, "rate_limited")
	}
}

// TestClusterTyping: a typing notice on one node reaches the room's subscribers on the other,
// and not the typer's own connection there.
func TestClusterTyping(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	alice, bob := a.signIn("alice"), b.signIn("bob")
	wsA, wsB, bobOnA := a.dialWS(alice), b.dialWS(bob), a.dialWS(bob)
	wsA.subscribe("lobby", 0)
	wsB.subscribe("lobby", 0)
	bobOnA.subscribe("lobby", 0)
	wsB.send(map[string]string{"type": "typing", "room": "lobby"})
	if f := wsA.nextExcept("join", "leave", "presence"); f.Type != "typing" || f.User != "bob" {
		t.Fatalf("alice on A got %s, want bob (on B) typing", f)
	}
	a.mustPost(alice, "lobby", "after bob's notice")
	if f := bobOnA.nextExcept("join", "leave", "presence"); f.Type != "message" {
		t.Fatalf("bob's connection on A got %s, want only the message (no notice of his own typing)", f)
	}
}

// TestClusterEdits: an edit made on one node reaches the other node's subscribers as an edit,
// through Redis's channel, and reads back as one from either node.
func TestClusterEdits(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	alice, bob := a.account("alice"), b.signIn("bob")
	wsB := b.dialWS(bob)
	wsB.subscribe("lobby", 0)
	first := a.mustPost(alice, "lobby", "typo")
	if r := a.do("POST", "/api/rooms/lobby/messages", alice, map[string]any{"kind": "edit", "target": first.Seq, "body": "fixed"}); r.Status != http.StatusCreated {
		t.Fatalf("edit on A: %d %s", r.Status, r.Raw)
	}
	var got []string
	for len(got) < 2 {
		if f := wsB.nextExcept("presence", "join", "leave"); f.Type == "message" {
			got = append(got, string(f.Message))
		}
	}
	if !strings.Contains(got[1], `"kind":"edit","target":1`) || !strings.Contains(got[1], `"body":"fixed"`) {
		t.Fatalf("the edit on B: %s", got[1])
	}
	page := b.read(bob, "/api/rooms/lobby/messages?after=0")
	if len(page.Messages) != 2 || page.Messages[1].Kind != "edit" || page.Messages[1].Target != 1 {
		t.Fatalf("the log read on B: %+v", page.Messages)
	}
}

// TestClusterSearch: a search on either node finds what was sent on the other, with the edits
// made there, and the search limit holds across the nodes; an account's own message moves its
// read mark, seen from the other node.
func TestClusterSearch(t *testing.T) {
	nodes := startCluster(t, 2, func(c *app.Config) { c.Server.SearchRate, c.Server.SearchBurst = 0.1, 3 })
	a, b := nodes[0], nodes[1]
	alice := a.account("alice")
	aliceOnB := b.signInPassword("alice", "alice's password")
	first := a.mustPost(alice, "lobby", "release on friday")
	if r := a.do("POST", "/api/rooms/lobby/messages", alice, map[string]any{"kind": "edit", "target": first.Seq, "body": "release on monday"}); r.Status != http.StatusCreated {
		t.Fatalf("edit on A: %d %s", r.Status, r.Raw)
	}
	p := b.search(aliceOnB, "lobby", "q=monday")
	if len(p.Messages) != 1 || p.Messages[0].Seq != first.Seq || len(p.Changes) != 1 || p.Changes[0].Body != "release on monday" {
		t.Fatalf("search on B: %+v", p)
	}
	if p := a.search(alice, "lobby", "q=friday"); len(p.Messages) != 0 {
		t.Fatalf("search on A found the old text: %+v", p)
	}
	b.search(aliceOnB, "lobby", "q=release")
	checkError(t, a.do("GET", "/api/rooms/lobby/search?q=release", alice, nil), http.StatusTooManyRequests, "rate_limited")
	waitFor(t, "alice's read mark at her edit, seen on B", func() bool {
		seq, ok := roomReadSeq(t, b, aliceOnB, "lobby")
		return ok && seq == 2
	})
}

// TestClusterReplies: a reply sent on one node reaches the other node's subscribers with its
// reply_to (through Redis's channel) and reads back with it there (from the stream).
func TestClusterReplies(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	ann, ben := a.signIn("ann"), b.signIn("ben")
	wsB := b.dialWS(ben)
	wsB.subscribe("lobby", 0)
	q := a.mustPost(ann, "lobby", "who is in?")
	if r := a.do("POST", "/api/rooms/lobby/messages", ann, map[string]any{"body": "me", "reply_to": q.Seq}); r.Status != http.StatusCreated {
		t.Fatalf("reply on A: %d %s", r.Status, r.Raw)
	}
	var got []string
	for len(got) < 2 {
		if f := wsB.nextExcept("presence", "join", "leave"); f.Type == "message" {
			got = append(got, string(f.Message))
		}
	}
	if strings.Contains(got[0], "reply_to") || !strings.Contains(got[1], `"reply_to":1}`) {
		t.Fatalf("delivered on B: %s", got)
	}
	if page := b.read(ben, "/api/rooms/lobby/messages?after=0"); len(page.Messages) != 2 || page.Messages[1].ReplyTo != q.Seq {
		t.Fatalf("read on B: %+v", page.Messages)
	}
}

// TestClusterPrivateRooms: a private room made on one node is private on the other, and a
// member added on either is one on both.
func TestClusterPrivateRooms(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	carol := a.account("carol")
	bobOnB := b.account("bob")
	if r := a.do("POST", "/api/rooms", carol, map[string]any{"name": "secret", "private": true}); r.Status != http.StatusCreated {
		t.Fatalf("create on A: %d %s", r.Status, r.Raw)
	}
	a.mustPost(carol, "secret", "the plan")
	checkError(t, b.do("GET", "/api/rooms/secret/messages?after=0", bobOnB, nil), http.StatusNotFound, "not_found")
	carolOnB := b.signInPassword("carol", "carol's password")
	if r := b.do("PUT", "/api/rooms/secret/members/bob", carolOnB, nil); r.Status != http.StatusNoContent {
		t.Fatalf("add bob on B: %d %s", r.Status, r.Raw)
	}
	bobOnA := a.signInPassword("bob", "bob's password")
	if page := a.read(bobOnA, "/api/rooms/secret/messages?after=0"); len(page.Messages) != 1 {
		t.Fatalf("bob on A: %+v", page.Messages)
	}
	if page := b.read(bobOnB, "/api/rooms/secret/messages?after=0"); len(page.Messages) != 1 {
		t.Fatalf("bob on B: %+v", page.Messages)
	}
	// Removed on B: A (which remembered bob as a member) forgets it, and bob's WebSocket there
	// loses its subscription to the room, not its others.
	ws := a.dialWS(bobOnA)
	ws.subscribe("lobby")
	ws.subscribe("secret", 1)
	if r := b.do("DELETE", "/api/rooms/secret/members/bob", carolOnB, nil); r.Status != http.StatusNoContent {
		t.Fatalf("remove bob on B: %d %s", r.Status, r.Raw)
	}
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "error" || f.Code != "not_found" || f.Ref == nil || *f.Ref != "secret" {
		t.Fatalf("bob's WebSocket on A: %s, want the room's not_found", f)
	}
	b.mustPost(carolOnB, "lobby", "for everyone")
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "message" || f.msg(t).Body != "for everyone" {
		t.Fatalf("bob's WebSocket on A: %s, want the lobby's message", f)
	}
	checkError(t, a.do("GET", "/api/rooms/secret/messages?after=0", bobOnA, nil), http.StatusNotFound, "not_found")
}

// TestClusterDirect: a direct conversation opened on one node is the one the other account opens
// on another node (the same room, the same log), and both accounts are members everywhere.
func TestClusterDirect(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	ann := a.account("ann")
	daveOnB := b.account("dave")
	made := a.do("POST", "/api/dms", ann, map[string]string{"user": "dave"})
	if made.Status != http.StatusCreated {
		t.Fatalf("open on A: %d %s", made.Status, made.Raw)
	}
	opened := b.do("POST", "/api/dms", daveOnB, map[string]string{"user": "ann"})
	if opened.Status != http.StatusOK {
		t.Fatalf("open on B: %d %s", opened.Status, opened.Raw)
	}
	room, other := made.Body["room"].(map[string]any), opened.Body["room"].(map[string]any)
	if room["name"] != other["name"] || room["epoch"] != other["epoch"] {
		t.Fatalf("A made %v, B opened %v", room, other)
	}
	name := room["name"].(string)
	b.mustPost(daveOnB, name, "from B")
	if page := a.read(ann, "/api/rooms/"+name+"/messages?after=0"); len(page.Messages) != 1 || page.Messages[0].Author != "dave" {
		t.Fatalf("ann on A: %+v", page.Messages)
	}
	checkError(t, b.do("GET", "/api/rooms/"+name+"/messages?after=0", b.account("carol"), nil), http.StatusNotFound, "not_found")
}

// TestClusterRename: a rename on one node reaches the room's subscribers on another at once.
func TestClusterRename(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	alice := a.account("alice")
	if r := a.do("POST", "/api/rooms", alice, map[string]any{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create on A: %d %s", r.Status, r.Raw)
	}
	c := b.dialWS(b.signIn("bob"))
	c.subscribe("ops")
	if r := a.do("PATCH", "/api/rooms/ops", alice, map[string]string{"title": "Operations"}); r.Status != http.StatusOK {
		t.Fatalf("rename on A: %d %s", r.Status, r.Raw)
	}
	if f := c.nextExcept("presence", "join", "leave"); f.Type != "room" || f.Title == nil || *f.Title != "Operations" {
		t.Fatalf("bob on B: %s, want the new title", f)
	}
}

// TestClusterRoomLimit: the rooms a user makes count on every node together.
func TestClusterRoomLimit(t *testing.T) {
	nodes := startCluster(t, 2, func(c *app.Config) { c.Server.RoomRate, c.Server.RoomBurst = 0.01, 2 })
	a, b := nodes[0], nodes[1]
	onA := a.account("alice")
	onB := b.signInPassword("alice", "alice's password")
	for _, c := range []struct {
		node *testServer
		tok  string
		name string
	}{{a, onA, "a1"}, {b, onB, "b1"}} {
		if r := c.node.do("POST", "/api/rooms", c.tok, map[string]string{"name": c.name}); r.Status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", c.name, r.Status, r.Raw)
		}
	}
	for _, n := range []*testServer{a, b} {
		tok := map[*testServer]string{a: onA, b: onB}[n]
		checkError(t, n.do("POST", "/api/rooms", tok, map[string]string{"name": "more"}), http.StatusTooManyRequests, "rate_limited")
	}
}

// TestClusterModeration: a ban made on one node holds on the other at once (its subscribers hear
// of it, its sends are refused), and so does its lift; a suspension made on one node closes the
// account's connections on the other.
func TestClusterModeration(t *testing.T) {
	nodes := startCluster(t, 2, func(c *app.Config) { c.Server.Admins = []string{"root"} })
	a, b := nodes[0], nodes[1]
	alice, root := a.account("alice"), a.account("root")
	bob := b.account("bob")
	if r := a.do("POST", "/api/rooms", alice, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	// B reads ops's bans (none) before the ban, so that it must hear of the change.
	b.mustPost(bob, "ops", "before")
	bobWS := b.dialWS(bob)
	bobWS.subscribe("ops")
	if r := a.do("PUT", "/api/rooms/ops/bans/bob", alice, nil); r.Status != http.StatusNoContent {
		t.Fatalf("ban bob on A: %d %s", r.Status, r.Raw)
	}
	wantBanFrame(t, bobWS, "ops", "bob", true)
	checkError(t, b.post(bob, "ops", "after", ""), http.StatusForbidden, "forbidden")
	if r := a.do("DELETE", "/api/rooms/ops/bans/bob", alice, nil); r.Status != http.StatusNoContent {
		t.Fatalf("lift bob's ban on A: %d %s", r.Status, r.Raw)
	}
	wantBanFrame(t, bobWS, "ops", "bob", false)
	b.mustPost(bob, "ops", "after the lift")

	if r := a.do("PUT", "/api/users/bob/suspension", root, nil); r.Status != http.StatusNoContent {
		t.Fatalf("suspend bob on A: %d %s", r.Status, r.Raw)
	}
	wantSignedOut(t, bobWS)
	checkError(t, b.do("POST", "/api/session", "", map[string]string{"name": "bob", "password": "bob's password"}), http.StatusForbidden, "forbidden")
}

// TestClusterChangeLimit: one user's allowance of changes holds across the nodes.
func TestClusterChangeLimit(t *testing.T) {
	nodes := startCluster(t, 2, func(c *app.Config) { c.Server.ChangeRate, c.Server.ChangeBurst = 0.01, 2 })
	a, b := nodes[0], nodes[1]
	onA := a.account("alice")
	onB := b.signInPassword("alice", "alice's password")
	a.account("bob")
	if r := a.do("POST", "/api/rooms", onA, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	if r := a.do("PUT", "/api/rooms/ops/bans/bob", onA, nil); r.Status != http.StatusNoContent {
		t.Fatalf("ban on A: %d %s", r.Status, r.Raw)
	}
	if r := b.do("DELETE", "/api/rooms/ops/bans/bob", onB, nil); r.Status != http.StatusNoContent {
		t.Fatalf("lift on B: %d %s", r.Status, r.Raw)
	}
	checkError(t, a.do("PUT", "/api/rooms/ops/bans/bob", onA, nil), http.StatusTooManyRequests, "rate_limited")
	checkError(t, b.do("PATCH", "/api/rooms/ops", onB, map[string]string{"title": "Ops"}), http.StatusTooManyRequests, "rate_limited")
}

// TestClusterSendRateIsShared: a user's sending limit holds across the nodes, not on each: sends
// spread over two nodes get one burst in all (and at most a lease of tokens more per node), then
// 429 on both, with when to retry.
func TestClusterSendRateIsShared(t *testing.T) {
	const burst = 20 // leases of 2 tokens
	nodes := startCluster(t, 2, func(c *app.Config) { c.Server.SendRate, c.Server.SendBurst = 0.01, burst })
	a, b := nodes[0], nodes[1]
	ann := a.signIn("ann")
	sent, refused := 0, 0
	for i := range 2 * burst {
		r := []*testServer{a, b}[i%2].post(ann, "lobby", fmt.Sprint("message ", i), "")
		switch r.Status {
		case http.StatusCreated:
			sent++
		case http.StatusTooManyRequests:
			checkError(t, r, http.StatusTooManyRequests, "rate_limited")
			if r.Header.Get("Retry-After") == "" {
				t.Fatalf("a refusal without Retry-After: %s", r.Raw)
			}
			refused++
		default:
			t.Fatalf("send %d: %d %s", i, r.Status, r.Raw)
		}
	}
	if sent < burst || sent > burst+2*2 {
		t.Fatalf("%d of %d sends over two nodes went through, %d refused; want one burst of %d (and at most a lease more per node), not one per node", sent, 2*burst, refused, burst)
	}
}

// TestClusterDeletionHeardAfterALostSubscription: rooms deleted while a node could not hear it
// (here: deleted behind the nodes' backs, with no note at all) are found out when the node
// subscribes again: what its connections receive of them ends, for a room the node had
// delivered messages of (the store finds it) and for one it had not (the server does).
func TestClusterDeletionHeardAfterALostSubscription(t *testing.T) {
	nodes, url, prefix := startClusterAt(t, 1)
	a := nodes[0]
	carol := a.account("carol")
	for _, room := range []string{"doomed", "quiet"} {
		if r := a.do("POST", "/api/rooms", carol, map[string]any{"name": room}); r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Raw)
		}
	}
	a.mustPost(carol, "doomed", "the plan")
	ws := a.dialWS(carol)
	ws.subscribe("lobby")
	ws.subscribe("doomed", 0)
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "message" {
		t.Fatalf("carol's subscription: %s", f)
	}
	ws.subscribe("quiet", 0)

	rdb := redistest.Client(t, url)
	ctx := t.Context()
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, room := range []string{"doomed", "quiet"} {
			p.HDel(ctx, prefix+":rooms", room)
			p.HSet(ctx, prefix+":deleted", room, "1:carol")
			p.HDel(ctx, prefix+":seq", room)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clients, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	ours := fmt.Sprintf(" name=natter-%s-%d ", host, os.Getpid())
	killed := 0
	for _, line := range strings.Split(clients, "\n") {
		if strings.Contains(line, " cmd=subscribe") && strings.Contains(line, ours) {
			id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
			if err := rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
				killed++
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no subscription to cut:\n%s", clients)
	}
	gone := map[string]bool{}
	for range 2 {
		f := ws.nextExcept("presence", "join", "leave")
		if f.Type != "error" || f.Code != "not_found" || f.Ref == nil {
			t.Fatalf("carol's WebSocket after the node subscribed again: %s, want the rooms' not_found", f)
		}
		gone[*f.Ref] = true
	}
	if !gone["doomed"] || !gone["quiet"] {
		t.Fatalf("the rooms ended: %v, want doomed and quiet", gone)
	}
	a.mustPost(carol, "lobby", "still here")
	if f := ws.nextExcept("presence", "join", "leave"); f.Type != "message" || f.msg(t).Body != "still here" {
		t.Fatalf("carol's WebSocket: %s, want the lobby's message", f)
	}
}
