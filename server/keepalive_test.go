package server_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"natter/app"
	"natter/ws"
)

// fastKeepalive makes pings and the dead-peer timeout short enough to test.
func fastKeepalive(c *app.Config) {
	c.Server.KeepaliveIdle = 100 * time.Millisecond
	c.Server.PongWait = 500 * time.Millisecond
}

// TestWebSocketPingsKeepLivePeersAndDropDeadOnes: a client that answers pings (ws.Conn does)
// stays connected through many pong waits while idle; a peer that never reads or answers is
// closed by the server.
func TestWebSocketPingsKeepLivePeersAndDropDeadOnes(t *testing.T) {
	ts := startServer(t, fastKeepalive)
	tok := ts.signIn("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	live := ts.dialRaw(ctx, tok)
	liveErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := live.ReadMessage(); err != nil {
				liveErr <- err
				return
			}
		}
	}()

	// A dead peer: a raw handshake, then silence.
	dead, err := net.Dial("tcp", ts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	key := make([]byte, 16)
	rand.Read(key)
	fmt.Fprintf(dead, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
		ts.Addr, base64.StdEncoding.EncodeToString(key), tok)
	br := bufio.NewReader(dead)
	status, _ := br.ReadString('\n')
	if !strings.Contains(status, "101") {
		t.Fatalf("handshake: %q", status)
	}
	// Read (and discard) until the server closes the connection; pings arrive first.
	sawPing := false
	dead.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		b, err := br.ReadByte()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server never closed a peer that does not answer pings")
			}
			break
		}
		if b == 0x89 { // FIN + ping opcode
			sawPing = true
		}
	}
	if !sawPing {
		t.Error("the server closed the silent peer without pinging it first")
	}
	select {
	case err := <-liveErr:
		t.Fatalf("a peer that answers pings was dropped: %v", err)
	default:
	}
	if n := ts.Main.Server().ConnCount(); n != 1 {
		t.Errorf("server holds %d connections, want 1 (the live one)", n)
	}
}

// TestSSESendsKeepaliveComments: a quiet event stream still carries comment lines.
func TestSSESendsKeepaliveComments(t *testing.T) {
	ts := startServer(t, fastKeepalive)
	tok := ts.signIn("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/rooms/lobby/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for comments := 0; comments < 3; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before keepalives: %v", err)
		}
		if strings.HasPrefix(line, ":") {
			comments++
		}
	}
}

// TestLongPollersAreOnline: a user who only long-polls counts as online (presence list and a join
// to WebSocket subscribers) and leaves once they stop polling.
func TestLongPollersAreOnline(t *testing.T) {
	ts := startServer(t, fastKeepalive, func(c *app.Config) { c.Server.PollerGrace = 300 * time.Millisecond })
	obsTok := ts.signIn("obs")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obs := ts.dialRaw(ctx, obsTok)
	obs.WriteMessage(ws.OpText, []byte(`{"type":"subscribe","room":"lobby"}`))
	next := func(want string) string {
		for {
			_, data, err := obs.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			var f struct{ Type, User string }
			json.Unmarshal(data, &f)
			if f.Type == want {
				return f.User
			}
		}
	}
	next("presence")

	r := ts.do("GET", "/api/rooms/lobby/messages?after=0&wait=0.2", ts.signIn("poller"), nil)
	if r.Status != 200 {
		t.Fatalf("poll: %d %s", r.Status, r.Raw)
	}
	if u := next("join"); u != "poller" {
		t.Fatalf("join of %q, want poller", u)
	}
	if p := ts.do("GET", "/api/rooms/lobby/presence", obsTok, nil); !strings.Contains(string(p.Raw), `"poller"`) {
		t.Fatalf("presence while polling: %s", p.Raw)
	}
	if u := next("leave"); u != "poller" {
		t.Fatalf("leave of %q, want poller", u)
	}
	if p := ts.do("GET", "/api/rooms/lobby/presence", obsTok, nil); strings.Contains(string(p.Raw), `"poller"`) {
		t.Fatalf("presence after polling stopped: %s", p.Raw)
	}
}
