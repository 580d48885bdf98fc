package server_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"natter/app"
	"natter/server"
	"natter/ws"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPanicClosesOnlyItsConnection: a panic in a WebSocket's reader or in its frame handler is
// logged with its stack and closes that connection with 1011; the server and every other
// connection go on. Without the recovery the panic ends the test binary.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	var logs syncBuffer
	ts := startServer(t, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
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
