package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"natter/server"
	"natter/ws"
)

// TestPanicClosesOnlyItsConnection: a panic in a WebSocket's reader or in its frame handler is
// logged with its stack and closes that connection with 1011; the server and every other
// connection go on. Without the recovery the panic ends the test binary.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	ts, logs := startServerLogged(t)
	server.SetFrameHook(ts.Main.Server(), func(where string, payload []byte) {
		if bytes.Contains(payload, []byte("boom-"+where)) {
			panic("boom in " + where)
		}
	})
	tok := ts.signIn("alice")
	other := ts.dialWS(ts.signIn("bob"))
	other.subscribe("lobby")

	for _, where := range []string{"read", "handle"} {
		c := ts.dialWS(tok)
		c.subscribe("lobby")
		c.sendMessage("lobby", "before", "before-"+where)
		c.send(map[string]string{"type": "send", "room": "lobby", "body": "boom-" + where, "client_id": "boom-" + where})
		if ce := c.closed(); ce.Code != ws.CloseInternalError {
			t.Fatalf("panic in %s: closed with %d, want 1011", where, ce.Code)
		}
		if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "boom in "+where) || !strings.Contains(l, "goroutine ") {
			t.Fatalf("panic in %s: the log lacks the error with its stack:\n%s", where, l)
		}
		// The other connection, and new ones, still work.
		other.sendMessage("lobby", "still here", "after-"+where)
		c2 := ts.dialWS(tok)
		c2.sendMessage("lobby", "new connection", "new-"+where)
	}
	// The panicking sends were never stored: 2 x (before, still here, new connection).
	if n := ts.lastSeq(tok, "lobby"); n != 6 {
		t.Fatalf("last_seq %d, want 6", n)
	}
}

// TestLongPollPanicAnswers500: a panic while a parked long-poll's answer is read is logged, and
// that poll and every poll sharing its read answer 500 instead of waiting for ever or ending the
// server; the next polls are answered as usual.
func TestLongPollPanicAnswers500(t *testing.T) {
	ts, logs := startServerLogged(t)
	srv := ts.Main.Server()
	const polls = 3
	var boom atomic.Bool
	boom.Store(true)
	server.SetPollReadHook(srv, func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if _, joined := server.PollAnswerCounts(srv); joined >= polls-1 {
				break
			}
		}
		if boom.Load() {
			panic("boom in a poll read")
		}
	})
	tok := ts.signIn("alice")
	answers := make([]<-chan apiResponse, polls)
	for i := range answers {
		answers[i] = ts.doAsync("GET", "/api/rooms/lobby/messages?after=0&wait=30", tok, nil)
	}
	parked(t, ts, polls)
	ts.mustPost(tok, "lobby", "wakes them")
	for i, a := range answers {
		if r := <-a; r.Status != http.StatusInternalServerError || r.errorCode() != "internal" {
			t.Fatalf("poll %d answered %d %s; want 500 internal", i, r.Status, r.Raw)
		}
	}
	if l := logs.String(); !strings.Contains(l, "boom in a poll read") || !strings.Contains(l, "goroutine ") {
		t.Fatalf("the log lacks the panic with its stack:\n%s", l)
	}
	boom.Store(false)
	next := ts.doAsync("GET", "/api/rooms/lobby/messages?after=1&wait=30", tok, nil)
	parked(t, ts, 1)
	posted := ts.mustPost(tok, "lobby", "and again")
	if r := <-next; r.Status != http.StatusOK || len(decodePage(t, r).Messages) != 1 || decodePage(t, r).Messages[0].ID != posted.ID {
		t.Fatalf("the next poll answered %d %s", r.Status, r.Raw)
	}
}
