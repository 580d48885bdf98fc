package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"natter/app"
	"natter/ws"
)

// strp returns a frame field's value for messages ("<absent>" if it is missing).
func strp(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return *p
}

func TestWebSocketSubscribeReplaysThenGoesLive(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	ts.fill(tok, "lobby", 5)
	epoch := ts.read(tok, "/api/rooms/lobby/messages").Epoch

	c := ts.dialWS(tok)
	sub, presence := c.subscribe("lobby", 2)
	if *sub.LastSeq != 5 || *sub.Epoch != epoch {
		t.Fatalf("subscribed %s, want last_seq 5 and epoch %q", sub, epoch)
	}
	if !slices.Equal(presence.Online, []string{"alice"}) {
		t.Fatalf("presence %s, want alice alone", presence)
	}
	for seq := int64(3); seq <= 5; seq++ {
		if m := c.expect("message").msg(t); m.Seq != seq || m.Body != fmt.Sprintf("fill %d", seq-1) {
			t.Fatalf("replay: got seq %d %q, want seq %d", m.Seq, m.Body, seq)
		}
	}
	live := ts.mustPost(tok, "lobby", "live")
	if m := c.expect("message").msg(t); m.Seq != 6 || m.ID != live.ID || m.Body != "live" || m.Author != "alice" || !m.TS.Equal(live.TS) {
		t.Fatalf("live message %+v, posted %+v", m, live)
	}

	// Without after: live from now, no replay.
	c2 := ts.dialWS(tok)
	sub, _ = c2.subscribe("lobby")
	if *sub.LastSeq != 6 || *sub.Epoch != epoch {
		t.Fatalf("subscribed %s, want last_seq 6 and epoch %q", sub, epoch)
	}
	ts.mustPost(tok, "lobby", "next")
	if m := c2.expect("message").msg(t); m.Seq != 7 || m.Body != "next" {
		t.Fatalf("first message without after is seq %d %q, want the live seq 7", m.Seq, m.Body)
	}

	// after=0 replays everything, even in an empty room.
	if r := ts.do("POST", "/api/rooms", tok, map[string]string{"name": "empty"}); r.Status != http.StatusCreated {
		t.Fatalf("create room: %d %s", r.Status, r.Raw)
	}
	sub, _ = c2.subscribe("empty", 0)
	if *sub.LastSeq != 0 {
		t.Fatalf("subscribed to an empty room: %s", sub)
	}
	ts.mustPost(tok, "empty", "first")
	if m := c2.expect("message").msg(t); m.Seq != 1 || m.Room != "empty" {
		t.Fatalf("first message in the empty room: %+v", m)
	}
}

// TestWebSocketBacklogThenLiveHasNoGap subscribes from the start while messages are being stored,
// with a backlog longer than one replay page: each subscriber must see every seq once, in order.
func TestWebSocketBacklogThenLiveHasNoGap(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	const n = 1200
	filled := make(chan error, 1)
	go func() {
		_, err := ts.fillErr(ts.signIn("writer"), "lobby", n)
		filled <- err
	}()
	var clients []*wsClient
	for _, at := range []int64{1, 300, 700} {
		waitFor(t, fmt.Sprintf("seq %d", at), func() bool { return ts.lastSeq(tok, "lobby") >= at })
		c := ts.dialWS(tok)
		c.subscribe("lobby", 0)
		clients = append(clients, c)
	}
	for i, c := range clients {
		for seq := int64(1); seq <= n; seq++ {
			f := c.nextExcept("presence", "join", "leave")
			if m := f.msg(t); m.Seq != seq || m.Body != fmt.Sprintf("fill %d", seq-1) {
				t.Fatalf("client %d: got seq %d %q, want seq %d", i, m.Seq, m.Body, seq)
			}
		}
	}
	if err := <-filled; err != nil {
		t.Fatal(err)
	}
}

func TestWebSocketSendReachesEverySubscriber(t *testing.T) {
	ts := startServer(t)
	alice, bob := ts.dialWS(ts.signIn("alice")), ts.dialWS(ts.signIn("bob"))
	alice.subscribe("lobby")
	bob.subscribe("lobby")
	alice.nextExcept() // bob's join

	alice.send(map[string]string{"type": "send", "room": "lobby", "body": "hi all", "client_id": "c-7f3b"})
	var ack, own wsFrame
	for ack.Type == "" || own.Type == "" {
		switch f := alice.next(); f.Type {
		case "ack":
			ack = f
		case "message":
			own = f
		default:
			t.Fatalf("sender got %s", f)
		}
	}
	if strp(ack.ClientID) != "c-7f3b" || ack.Seq == nil || *ack.Seq != 1 {
		t.Fatalf("ack %s, want client_id c-7f3b and seq 1", ack)
	}
	m := own.msg(t)
	if m.Seq != 1 || m.Body != "hi all" || m.Author != "alice" || m.ClientID != "c-7f3b" || m.Room != "lobby" {
		t.Fatalf("sender's copy %+v", m)
	}
	other := bob.expect("message").msg(t)
	if other != m {
		t.Fatalf("bob got %+v, alice %+v", other, m)
	}

	// Idempotent: the same client_id again is acked with the original seq, stores nothing and
	// reaches nobody; over HTTP too.
	again := alice.sendMessage("lobby", "hi all, again", "c-7f3b")
	if *again.Seq != 1 {
		t.Fatalf("repeated send acked with seq %d, want 1", *again.Seq)
	}
	r := ts.post(ts.signIn("alice"), "lobby", "via http", "c-7f3b")
	if r.Status != http.StatusOK || messageOf(t, r).ID != m.ID {
		t.Fatalf("POST with the client_id used over the WebSocket: %d %s, want 200 with the original", r.Status, r.Raw)
	}
	next := ts.mustPost(ts.signIn("carol"), "lobby", "next")
	for _, c := range []*wsClient{alice, bob} {
		if got := c.nextExcept("join", "leave").msg(t); got.Seq != 2 || got.ID != next.ID {
			t.Fatalf("after the repeats, next message is %+v, want seq 2 (a repeat was delivered again?)", got)
		}
	}
	if n := ts.lastSeq(ts.signIn("dave"), "lobby"); n != 2 {
		t.Fatalf("last_seq %d, want 2", n)
	}
}

func TestWebSocketUnsubscribe(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	obs := ts.dialWS(ts.signIn("obs"))
	obs.subscribe("lobby")
	c := ts.dialWS(tok)
	c.subscribe("lobby")
	if f := obs.expect("join"); f.User != "alice" {
		t.Fatalf("join %s", f)
	}
	c.send(map[string]string{"type": "unsubscribe", "room": "lobby"})
	if f := obs.expect("leave"); f.User != "alice" || strp(f.Room) != "lobby" {
		t.Fatalf("leave %s", f)
	}
	// A message stored now would reach alice before the ack of her next send, were she still
	// subscribed.
	ts.mustPost(tok, "lobby", "not for alice")
	c.send(map[string]string{"type": "send", "room": "lobby", "body": "still connected", "client_id": "after-unsub"})
	if f := c.next(); f.Type != "ack" || strp(f.ClientID) != "after-unsub" {
		t.Fatalf("after unsubscribing, got %s, want only the ack", f)
	}
	if m := obs.expect("message").msg(t); m.Body != "not for alice" {
		t.Fatalf("observer got %+v", m)
	}

	// One connection, two rooms: each message arrives once, marked with its room; leaving one
	// room keeps the other.
	if r := ts.do("POST", "/api/rooms", tok, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	c.subscribe("lobby")
	c.subscribe("ops")
	ts.mustPost(tok, "ops", "in ops")
	ts.mustPost(tok, "lobby", "in lobby")
	// Order is promised within a room, not across rooms: a subscription still replaying its
	// backlog may deliver after another room's live message.
	got := map[string]string{}
	for range 2 {
		m := c.nextExcept("join", "leave").msg(t)
		if _, dup := got[m.Room]; dup {
			t.Fatalf("second message in %s: %+v", m.Room, m)
		}
		got[m.Room] = m.Body
	}
	if got["ops"] != "in ops" || got["lobby"] != "in lobby" {
		t.Fatalf("got %v, want one message in each room", got)
	}
	c.send(map[string]string{"type": "unsubscribe", "room": "ops"})
	// Frames are handled in order: once a later frame is answered, the unsubscribe is done.
	c.send(map[string]string{"type": "barrier", "client_id": "barrier"})
	if f := c.next(); f.Type != "error" || strp(f.Ref) != "barrier" {
		t.Fatalf("got %s, want the error answering the barrier frame", f)
	}
	ts.mustPost(tok, "ops", "ops again")
	ts.mustPost(tok, "lobby", "lobby again")
	if m := c.nextExcept("join", "leave").msg(t); m.Room != "lobby" || m.Body != "lobby again" {
		t.Fatalf("after leaving ops, got %+v, want only lobby's message", m)
	}
}

// TestWebSocketErrorFrames: a bad frame is answered with an error frame carrying the contract's
// code and, where the frame had one, its ref; the connection stays up.
func TestWebSocketErrorFrames(t *testing.T) {
	ts := startServer(t)
	c := ts.dialWS(ts.signIn("alice"))
	cases := []struct {
		name  string
		op    ws.Opcode
		frame string
		code  string
		ref   string // "" for none
	}{
		{"malformed JSON", ws.OpText, `{"type": "send", "room": "lobby"`, "invalid", ""},
		{"not JSON", ws.OpText, `hello`, "invalid", ""},
		{"a JSON string", ws.OpText, `"send"`, "invalid", ""},
		{"a JSON array", ws.OpText, `[{"type": "send"}]`, "invalid", ""},
		{"an empty frame", ws.OpText, ``, "invalid", ""},
		{"unknown type", ws.OpText, `{"type": "shout", "room": "lobby", "body": "hi", "client_id": "u-1"}`, "invalid", "u-1"},
		{"no type", ws.OpText, `{"room": "lobby", "body": "hi", "client_id": "u-2"}`, "invalid", "u-2"},
		{"a binary frame", ws.OpBinary, `{"type": "send", "room": "lobby", "body": "hi", "client_id": "b-1"}`, "invalid", ""},
		{"empty body", ws.OpText, `{"type": "send", "room": "lobby", "body": "", "client_id": "s-1"}`, "invalid", "s-1"},
		{"a number body", ws.OpText, `{"type": "send", "room": "lobby", "body": 7, "client_id": "s-2"}`, "invalid", ""},
		{"oversize body", ws.OpText, `{"type": "send", "room": "lobby", "body": "` + strings.Repeat("a", 4097) + `", "client_id": "s-3"}`, "too_large", "s-3"},
		{"oversize multi-byte body", ws.OpText, `{"type": "send", "room": "lobby", "body": "` + strings.Repeat("é", 4097) + `", "client_id": "s-4"}`, "too_large", "s-4"},
		{"client_id of 65 chars", ws.OpText, `{"type": "send", "room": "lobby", "body": "x", "client_id": "` + strings.Repeat("c", 65) + `"}`, "invalid", strings.Repeat("c", 65)},
		{"send to an unknown room", ws.OpText, `{"type": "send", "room": "nope", "body": "hi", "client_id": "s-5"}`, "not_found", "s-5"},
		{"send to an invalid room name", ws.OpText, `{"type": "send", "room": "No Pe", "body": "hi", "client_id": "s-6"}`, "not_found", "s-6"},
		{"subscribe to an unknown room", ws.OpText, `{"type": "subscribe", "room": "nope"}`, "not_found", "nope"},
		{"subscribe with a bad after", ws.OpText, `{"type": "subscribe", "room": "lobby", "after": "x"}`, "invalid", "lobby"},
		{"subscribe with a negative after", ws.OpText, `{"type": "subscribe", "room": "lobby", "after": -1}`, "invalid", "lobby"},
	}
	for i, tc := range cases {
		c.sendRaw(tc.op, []byte(tc.frame))
		f := c.next()
		if f.Type != "error" || f.Code != tc.code || strp(f.Ref) != map[bool]string{true: "<absent>", false: tc.ref}[tc.ref == ""] {
			t.Fatalf("%s: got %.300s, want an error frame with code %s and ref %q", tc.name, f, tc.code, tc.ref)
		}
		var e map[string]any
		json.Unmarshal(f.raw, &e)
		if msg, _ := e["message"].(string); msg == "" {
			t.Fatalf("%s: error frame without a message: %s", tc.name, f)
		}
		// Still up: a valid frame works.
		c.sendMessage("lobby", fmt.Sprintf("alive %d", i), fmt.Sprintf("alive-%d", i))
	}
	if n := ts.lastSeq(ts.signIn("bob"), "lobby"); n != int64(len(cases)) {
		t.Fatalf("last_seq %d, want %d: a refused frame stored a message", n, len(cases))
	}

	// A frame of exactly the limit (64 KiB) is accepted.
	frame := []byte(`{"type": "send", "room": "lobby", "body": "` + strings.Repeat(`\u003c`, 4096) + `", "client_id": "edge"}`)
	frame = append(frame, strings.Repeat(" ", 64<<10-len(frame))...)
	c.sendRaw(ws.OpText, frame)
	if f := c.next(); f.Type != "ack" || strp(f.ClientID) != "edge" {
		t.Fatalf("a frame of exactly 64 KiB: %s, want an ack", f)
	}
}

// TestWebSocketInvalidUTF8 sends a text frame that is not UTF-8. natter's contract treats it like
// any other bad frame: an invalid error frame, nothing stored, and the connection stays up (RFC
// 6455 would fail the connection; the message was read whole, so the stream is still in step).
func TestWebSocketInvalidUTF8(t *testing.T) {
	ts := startServer(t)
	c := ts.dialWS(ts.signIn("alice"))
	c.sendMessage("lobby", "before", "before")
	c.sendRaw(ws.OpText, []byte("{\"type\": \"send\", \"room\": \"lobby\", \"body\": \"caf\xe9\", \"client_id\": \"latin1\"}"))
	f := c.next()
	if f.Type != "error" || f.Code != "invalid" {
		t.Fatalf("invalid UTF-8 text frame: got %s, want an invalid error frame", f)
	}
	c.sendMessage("lobby", "after", "after") // fails the test unless acked: the connection stays up
	if n := ts.lastSeq(ts.signIn("bob"), "lobby"); n != 2 {
		t.Fatalf("last_seq %d, want 2: the invalid frame must store nothing", n)
	}
}

// TestWebSocketOversizeFrameCloses1009: a frame over 64 KiB is not read; the connection is closed
// with 1009 and nothing is stored.
func TestWebSocketOversizeFrameCloses1009(t *testing.T) {
	ts := startServer(t)
	c := ts.dialWS(ts.signIn("alice"))
	frame := []byte(`{"type": "send", "room": "lobby", "body": "x", "client_id": "huge"}`)
	frame = append(frame, strings.Repeat(" ", 64<<10+1-len(frame))...)
	c.sendRaw(ws.OpText, frame)
	if ce := c.closed(); ce.Code != ws.CloseTooBig {
		t.Fatalf("closed with %d %q, want 1009", ce.Code, ce.Reason)
	}
	if n := ts.lastSeq(ts.signIn("bob"), "lobby"); n != 0 {
		t.Fatalf("last_seq %d, want 0", n)
	}
}

func TestWebSocketAuthAndOrigin(t *testing.T) {
	ts := startServer(t)
	r := ts.do("POST", "/api/session", "", map[string]string{"name": "alice"})
	tok, cookie := r.Body["token"].(string), cookieHeader(sessionCookie(t, r))

	for _, c := range []struct {
		name   string
		tok    string
		header []string
		status int
	}{
		{"no credentials", "", nil, http.StatusUnauthorized},
		{"a foreign Origin with a cookie", "", []string{"Cookie", cookie, "Origin", "https://evil.example"}, http.StatusForbidden},
		{"a foreign Origin with a token", tok, []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"a foreign Origin on the same host name", tok, []string{"Origin", "http://127.0.0.1:1"}, http.StatusForbidden},
		{"an Origin that is not a URL", tok, []string{"Origin", "null"}, http.StatusForbidden},
	} {
		conn, resp, err := ts.tryDialWS("/ws", c.tok, c.header...)
		if err == nil {
			conn.conn.Close()
			t.Errorf("%s: the upgrade succeeded", c.name)
			continue
		}
		if resp == nil || resp.StatusCode != c.status {
			t.Errorf("%s: %v, want status %d", c.name, err, c.status)
		}
	}
	// The site's own pages may connect with the cookie.
	c, _, err := ts.tryDialWS("/ws", "", "Cookie", cookie, "Origin", ts.URL)
	if err != nil {
		t.Fatalf("same-origin upgrade with the cookie: %v", err)
	}
	c.subscribe("lobby")
	if f := c.sendMessage("lobby", "from the page", "page-1"); *f.Seq != 1 {
		t.Fatalf("ack %s", f)
	}
}

// TestPresence: the list on subscribe, join when a user's first connection subscribes, leave when
// the last one goes, and the same list over HTTP.
func TestPresence(t *testing.T) {
	ts := startServer(t)
	obsTok, bobTok := ts.signIn("obs"), ts.signIn("bob")
	httpPresence := func() []string {
		t.Helper()
		r := ts.do("GET", "/api/rooms/lobby/presence", obsTok, nil)
		online, ok := r.Body["online"].([]any)
		if r.Status != http.StatusOK || r.Body["room"] != "lobby" || !ok {
			t.Fatalf("presence: %d %s", r.Status, r.Raw)
		}
		var names []string
		for _, o := range online {
			names = append(names, o.(string))
		}
		slices.Sort(names)
		return names
	}
	sorted := func(s []string) []string { return slices.Sorted(slices.Values(s)) }

	if got := httpPresence(); len(got) != 0 {
		t.Fatalf("presence of an empty room: %v", got)
	}
	obs := ts.dialWS(obsTok)
	if _, p := obs.subscribe("lobby"); !slices.Equal(p.Online, []string{"obs"}) {
		t.Fatalf("first subscriber's presence %s", p)
	}
	if got := httpPresence(); !slices.Equal(got, []string{"obs"}) {
		t.Fatalf("HTTP presence %v, want [obs]", got)
	}

	bob1 := ts.dialWS(bobTok)
	if _, p := bob1.subscribe("lobby"); !slices.Equal(sorted(p.Online), []string{"bob", "obs"}) {
		t.Fatalf("bob's presence %s", p)
	}
	if f := obs.next(); f.Type != "join" || f.User != "bob" || strp(f.Room) != "lobby" {
		t.Fatalf("observer got %s, want a join of bob", f)
	}

	// bob's second connection: no second join. The message bob sends after subscribing would
	// arrive after such a join.
	bob2 := ts.dialWS(bobTok)
	if _, p := bob2.subscribe("lobby"); !slices.Equal(sorted(p.Online), []string{"bob", "obs"}) {
		t.Fatalf("bob's second presence %s", p)
	}
	bob2.sendMessage("lobby", "two tabs", "tab2")
	if f := obs.next(); f.Type != "message" {
		t.Fatalf("observer got %s, want bob's message and no second join", f)
	}
	if got := httpPresence(); !slices.Equal(got, []string{"bob", "obs"}) {
		t.Fatalf("HTTP presence %v, want [bob obs]", got)
	}

	// bob's first connection closes: no leave, since the second is still there.
	bob1.conn.WriteClose(ws.CloseNormal, "bye")
	if ce := bob1.closed(); ce.Code != ws.CloseNormal {
		t.Fatalf("close echoed with %d", ce.Code)
	}
	waitFor(t, "the server to drop bob's first connection", func() bool { return ts.Main.Server().ConnCount() == 2 })
	ts.mustPost(obsTok, "lobby", "probe")
	if f := obs.next(); f.Type != "message" {
		t.Fatalf("observer got %s, want the probe message and no leave while bob still has a connection", f)
	}
	if got := httpPresence(); !slices.Equal(got, []string{"bob", "obs"}) {
		t.Fatalf("HTTP presence %v after one of bob's connections closed, want [bob obs]", got)
	}

	// The last one hangs up without a close frame: leave.
	bob2.conn.Close()
	if f := obs.next(); f.Type != "leave" || f.User != "bob" || strp(f.Room) != "lobby" {
		t.Fatalf("observer got %s, want a leave of bob", f)
	}
	ts.mustPost(obsTok, "lobby", "probe 2")
	if f := obs.next(); f.Type != "message" {
		t.Fatalf("observer got %s, want the probe message and no second leave", f)
	}
	if got := httpPresence(); !slices.Equal(got, []string{"obs"}) {
		t.Fatalf("HTTP presence %v, want [obs]", got)
	}
}

// dialSlowWS opens a WebSocket whose TCP receive buffer is small and whose advertised segment
// size is small, so the server's side can buffer little for it in the kernel: a client that
// does not read then fills its outbox after a few messages instead of after megabytes.
func (ts *testServer) dialSlowWS(tok string) *ws.Conn {
	ts.t.Helper()
	d := ws.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
			var err error
			rc.Control(func(fd uintptr) { err = shrinkReceive(fd) })
			return err
		}}
		return nd.DialContext(ctx, network, addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	conn, _, err := d.Dial(ctx, "ws://"+ts.Addr+"/ws", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		ts.t.Fatalf("dial: %v", err)
	}
	ts.t.Cleanup(func() { conn.Close() })
	return conn
}

// TestSlowConsumerIsClosed: a subscriber that reads far slower than its room is written is
// closed with 4008 "slow", while a subscriber that keeps up receives every message. The slow
// client reads one frame for every four messages stored, so it falls behind whatever the speed
// of the machine, yet keeps reading, so the close frame can reach it.
func TestSlowConsumerIsClosed(t *testing.T) {
	// Write coalescing is off: with it, a subscriber that reads everything at once is itself
	// closed as slow when more than QueueBytes arrive within one coalescing interval, since the
	// queue fills while the writer waits for its timer.
	ts := startServer(t, func(c *app.Config) { c.Server.QueueBytes, c.Server.WriteCoalesce = 64<<10, -1 })
	slow := ts.dialSlowWS(ts.signIn("slowpoke"))
	slow.WriteMessage(ws.OpText, []byte(`{"type": "subscribe", "room": "lobby"}`))
	readSlow := func() (map[string]any, error) {
		slow.NetConn().SetReadDeadline(time.Now().Add(guard))
		_, data, err := slow.ReadMessage()
		if err != nil {
			return nil, err
		}
		var f map[string]any
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("slow client got %.200s", data)
		}
		return f, nil
	}
	for _, want := range []string{"subscribed", "presence"} {
		if f, err := readSlow(); err != nil || f["type"] != want {
			t.Fatalf("slow client: %v %v, want %s", f, err, want)
		}
	}
	steady := ts.dialWS(ts.signIn("steady"))
	steady.subscribe("lobby")
	// The writer posts over HTTP: its next message is stored as soon as the last is answered
	// and the steady subscriber has it, so the steady one is never more than one message behind
	// (however loaded the machine), while the slow one reads one message for every four posted.
	writer := ts.signIn("writer")
	sawLeave := false
	steadyGets := func(seq int) {
		t.Helper()
		for {
			f := steady.next()
			switch f.Type {
			case "leave":
				sawLeave = sawLeave || f.User == "slowpoke"
				continue
			case "join":
				continue
			}
			if m := f.msg(t); m.Seq != int64(seq) || !strings.HasPrefix(m.Body, fmt.Sprintf("%05d ", seq-1)) {
				t.Fatalf("steady subscriber got seq %d, want %d", m.Seq, seq)
			}
			return
		}
	}

	// Each message is about 24 KiB on the wire (JSON escapes "<" as \u003c).
	body := strings.Repeat("<", 4090)
	var slowLast float64
	var slowClose *ws.CloseError
	posted := 0
	for slowClose == nil {
		if posted == 5000 {
			t.Fatalf("the slow client was not disconnected after %d messages", posted)
		}
		ts.mustPost(writer, "lobby", fmt.Sprintf("%05d %s", posted, body))
		posted++
		steadyGets(posted)
		if posted%4 != 0 {
			continue
		}
		f, err := readSlow()
		if err != nil {
			ce, ok := err.(*ws.CloseError)
			if !ok {
				t.Fatalf("slow client after %d messages: %v, want a close frame", posted, err)
			}
			slowClose = ce
			break
		}
		if f["type"] == "message" {
			seq := f["message"].(map[string]any)["seq"].(float64)
			if seq != slowLast+1 {
				t.Fatalf("slow client got seq %v after %v", seq, slowLast)
			}
			slowLast = seq
		}
	}
	if slowClose.Code != ws.CloseSlow || slowClose.Reason != "slow" {
		t.Fatalf("slow client closed with %d %q, want 4008 \"slow\"", slowClose.Code, slowClose.Reason)
	}
	if int(slowLast) >= posted {
		t.Fatalf("the slow client saw all %d messages: it was not behind", posted)
	}

	// The steady subscriber got everything, in order (checked as it came), and saw the slow one
	// leave.
	if !sawLeave {
		if f := steady.nextExcept("join"); f.Type != "leave" || f.User != "slowpoke" {
			t.Fatalf("steady subscriber got %s, want slowpoke's leave", f)
		}
	}
	t.Logf("slow client read up to seq %v of %d before it was closed", slowLast, posted)
}

func TestWebSocketShutdownSaysGoingAway(t *testing.T) {
	ts := startServer(t)
	c := ts.dialWS(ts.signIn("alice"))
	c.subscribe("lobby")
	ts.close()
	if ce := c.closed(); ce.Code != ws.CloseGoingAway || ce.Reason != "going away" {
		t.Fatalf("closed with %d %q, want 1001 \"going away\"", ce.Code, ce.Reason)
	}
}

// TestConnRoomsLimit: one WebSocket is subscribed to at most MaxConnRooms rooms at once; a
// subscribe past it gets an invalid error naming the room, and the others go on; unsubscribing
// makes room, and subscribing again to a room it has restarts it, as ever.
func TestConnRoomsLimit(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.MaxConnRooms = 2 })
	tok := ts.signIn("alice")
	for _, name := range []string{"ops", "dev"} {
		if r := ts.do("POST", "/api/rooms", tok, map[string]string{"name": name}); r.Status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Raw)
		}
	}
	c := ts.dialWS(tok)
	c.subscribe("lobby")
	c.subscribe("ops")
	c.send(map[string]any{"type": "subscribe", "room": "dev"})
	if f := c.nextExcept("presence", "join", "leave"); f.Type != "error" || f.Code != "invalid" || f.Ref == nil || *f.Ref != "dev" {
		t.Fatalf("a third subscribe: %s, want invalid for dev", f)
	}
	c.subscribe("lobby", 0) // again: a restart, not a third room
	ts.mustPost(tok, "dev", "not for this connection")
	ts.mustPost(tok, "ops", "for it")
	if f := c.nextExcept("presence", "join", "leave"); f.Type != "message" || f.msg(t).Room != "ops" {
		t.Fatalf("after the refusal: %s, want ops's message", f)
	}
	c.send(map[string]any{"type": "unsubscribe", "room": "ops"})
	c.subscribe("dev", 0)
	if f := c.nextExcept("presence", "join", "leave"); f.Type != "message" || f.msg(t).Room != "dev" {
		t.Fatalf("dev after unsubscribing ops: %s", f)
	}
}
