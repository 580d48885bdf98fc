package server_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"natter/internal/park"
	"natter/server"
	"natter/ws"
)

// maskedFrame is one client frame with a zero masking key (allowed, and the payload stays
// readable); fin false makes a fragment.
func maskedFrame(op ws.Opcode, fin bool, payload []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	var f []byte
	switch n := len(payload); {
	case n <= 125:
		f = []byte{b0, 0x80 | byte(n)}
	case n <= 0xffff:
		f = []byte{b0, 0x80 | 126, 0, 0}
		binary.BigEndian.PutUint16(f[2:], uint16(n))
	default:
		f = []byte{b0, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint64(f[2:], uint64(n))
	}
	f = append(f, 0, 0, 0, 0) // the key
	return append(f, payload...)
}

func sendFrame(clientID, body string) []byte {
	return []byte(fmt.Sprintf(`{"type":"send","room":"lobby","body":%q,"client_id":%q}`, body, clientID))
}

// readModes are the ways a WebSocket connection's frames are read: parked between arrivals
// (readParked, the default on Linux) or, while busy, by a goroutine of its own; and, with parking
// off, through the ws.Reader a connection starts with or through wsReadState, which it switches
// to after pushAfterTexts text frames (here at once).
type readMode struct {
	name    string
	park    bool
	busyGap time.Duration
	after   int
	pushed  int64 // connections of TestWebSocketReadModes that switch readers; -1: at least one
}

// start starts a server whose WebSockets read in this mode.
func (m readMode) start(t *testing.T) (*testServer, *server.Server) {
	t.Helper()
	ts := startServer(t)
	srv := ts.Main.Server()
	server.SetParking(srv, m.park)
	server.SetBusyGap(srv, m.busyGap)
	server.SetPushAfterTexts(srv, m.after)
	return ts, srv
}

var readModes = []readMode{
	{"parked", true, 0, 1 << 30, 0},
	{"parked, busy", true, 1 << 62, 1 << 30, -1},
	{"ws.Reader", false, 0, 1 << 30, 0},
	{"wsReadState", false, 0, 0, 4},
}

// TestWebSocketReadModes puts the ways frames arrive through each of readModes.
func TestWebSocketReadModes(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			armed := park.Armed()
			ts, srv := mode.start(t)
			tok := ts.signIn("alice")
			c := ts.dialWS(tok)
			raw := c.conn.NetConn()
			write := func(b []byte) {
				t.Helper()
				if _, err := raw.Write(b); err != nil {
					t.Fatal(err)
				}
			}
			expectAck := func(clientID string) {
				t.Helper()
				if f := c.next(); f.Type != "ack" || strp(f.ClientID) != clientID {
					t.Fatalf("want the ack of %s, got %s", clientID, f)
				}
			}

			// A frame that arrives a byte at a time.
			for _, b := range maskedFrame(ws.OpText, true, sendFrame("drip", "one byte at a time")) {
				write([]byte{b})
			}
			expectAck("drip")

			// A message in three fragments, written apart, with a ping between two of them.
			msg := sendFrame("frag", "in pieces")
			write(maskedFrame(ws.OpText, false, msg[:10]))
			write(maskedFrame(ws.OpPing, true, []byte("p"))) // answered, and the pong swallowed by ws.Conn
			write(maskedFrame(ws.OpContinuation, false, msg[10:30]))
			write(maskedFrame(ws.OpContinuation, true, msg[30:]))
			expectAck("frag")

			// Several frames in one write, the last of them cut in two.
			var many []byte
			for i := range 5 {
				many = append(many, maskedFrame(ws.OpText, true, sendFrame(fmt.Sprintf("m-%d", i), "batch"))...)
			}
			write(many[:len(many)-7])
			write(many[len(many)-7:])
			for i := range 5 {
				expectAck(fmt.Sprintf("m-%d", i))
			}

			// A frame much bigger than a read buffer, at the frame limit (64 KiB).
			big := []byte(`{"type": "send", "room": "lobby", "body": "` + strings.Repeat(`\u003c`, 4096) + `", "client_id": "big"}`)
			big = append(big, strings.Repeat(" ", 64<<10-len(big))...)
			write(maskedFrame(ws.OpText, true, big))
			expectAck("big")

			// Invalid UTF-8: an error frame, and the connection reads on.
			write(maskedFrame(ws.OpText, true, []byte("{\"type\": \"send\", \"room\": \"lobby\", \"body\": \"caf\xe9\", \"client_id\": \"latin1\"}")))
			if f := c.next(); f.Type != "error" || f.Code != "invalid" {
				t.Fatalf("invalid UTF-8: got %s, want an invalid error frame", f)
			}
			write(maskedFrame(ws.OpText, true, sendFrame("after", "still up")))
			expectAck("after")
			if mode.park && mode.busyGap == 0 && park.Supported {
				// Everything read: the connection waits with no reader goroutine.
				waitFor(t, "the connection parked", func() bool { return park.Armed() == armed+1 })
			}

			// A frame over the limit closes with 1009 as soon as its header is in: the server
			// does not wait for the rest.
			head := maskedFrame(ws.OpText, true, make([]byte, 64<<10+1))[:14+10]
			write(head)
			if f := c.nextExcept("ack"); f.Type != "error" || f.Code != "too_large" {
				t.Fatalf("oversize frame: got %s, want a too_large error frame", f)
			}
			if ce := c.closed(); ce.Code != ws.CloseTooBig {
				t.Fatalf("oversize frame: closed with %d, want 1009", ce.Code)
			}

			// A control frame over 125 bytes is a protocol error (1002), also without waiting.
			c2 := ts.dialWS(tok)
			long := maskedFrame(ws.OpPing, true, make([]byte, 200))
			if _, err := c2.conn.NetConn().Write(long[:10]); err != nil {
				t.Fatal(err)
			}
			if ce := c2.closed(); ce.Code != ws.CloseProtocolError {
				t.Fatalf("long ping: closed with %d, want 1002", ce.Code)
			}

			// So is any frame whose header is enough to refuse it: a reserved bit set (the
			// first 2 bytes tell), or a new message inside a fragmented one (the whole header
			// tells). Neither waits for a payload.
			for _, bad := range []struct {
				name    string
				written []byte
			}{
				{"reserved bit", func() []byte { b := maskedFrame(ws.OpText, true, make([]byte, 50)); b[0] |= 0x40; return b[:2] }()},
				{"text inside a fragmented message", append(maskedFrame(ws.OpText, false, []byte(`{"type":`)), maskedFrame(ws.OpText, true, make([]byte, 50))[:6]...)},
			} {
				c := ts.dialWS(tok)
				if _, err := c.conn.NetConn().Write(bad.written); err != nil {
					t.Fatal(err)
				}
				if ce := c.closed(); ce.Code != ws.CloseProtocolError {
					t.Fatalf("%s: closed with %d, want 1002", bad.name, ce.Code)
				}
			}

			if n := ts.lastSeq(tok, "lobby"); n != 9 {
				t.Fatalf("last_seq %d, want 9", n)
			}
			if n := server.PushReaders(srv); n != mode.pushed && (mode.pushed >= 0 || n < 1) {
				t.Fatalf("%d readers switched, want %d (-1: at least one)", n, mode.pushed)
			}
		})
	}
}

// TestWebSocketSwitchesReadersWhenBusy: with the default settings a connection that subscribes
// and waits stays parked (on Linux; elsewhere it keeps its first reader), and one that keeps
// sending switches to a reader goroutine of its own and reads on without a gap; once its frames
// stop coming, it parks again.
func TestWebSocketSwitchesReadersWhenBusy(t *testing.T) {
	ts := startServer(t)
	srv := ts.Main.Server()
	armed := park.Armed()
	tok := ts.signIn("alice")
	idle := ts.dialWS(tok)
	idle.subscribe("lobby")
	if n := server.PushReaders(srv); n != 0 {
		t.Fatalf("%d readers switched after a subscribe", n)
	}
	c := ts.dialWS(tok)
	const sends = 40 // past pushAfterTexts (16), for the readers that count
	var all []byte
	for i := range sends {
		all = append(all, maskedFrame(ws.OpText, true, sendFrame(fmt.Sprintf("s-%d", i), "busy"))...)
	}
	// In pieces that cut frames anywhere, so the switch may come with a frame half-read.
	for len(all) > 0 {
		n := min(len(all), 333)
		if _, err := c.conn.NetConn().Write(all[:n]); err != nil {
			t.Fatal(err)
		}
		all = all[n:]
	}
	for i := range sends {
		if f := c.next(); f.Type != "ack" || strp(f.ClientID) != fmt.Sprintf("s-%d", i) {
			t.Fatalf("send %d: got %s, want its ack", i, f)
		}
	}
	// Then one send at a time, each after the last one's ack, as a client that waits for its
	// acks sends: its frames come well within busyGap of each other.
	for i := range 20 {
		id := fmt.Sprintf("r-%d", i)
		if _, err := c.conn.NetConn().Write(maskedFrame(ws.OpText, true, sendFrame(id, "busy"))); err != nil {
			t.Fatal(err)
		}
		if f := c.next(); f.Type != "ack" || strp(f.ClientID) != id {
			t.Fatalf("send %s: got %s, want its ack", id, f)
		}
	}
	if n := server.PushReaders(srv); n < 1 {
		t.Fatal("no reader switched for the busy connection")
	}
	// Quiet again, it gives its read buffer back.
	waitFor(t, "no connection holding a read buffer", func() bool { return server.FeedsHeld() == 0 })
	for range sends + 20 {
		if f := idle.nextExcept("presence"); f.Type != "message" {
			t.Fatalf("subscriber got %s, want a message", f)
		}
	}
	if !park.Supported {
		return
	}
	// Its next frame comes after a gap longer than busyGap: the reader handles it, then parks.
	server.SetBusyGap(srv, time.Millisecond)
	time.Sleep(5 * time.Millisecond) // a gap of at least this much, whatever the machine's speed
	c.send(map[string]string{"type": "ping"})
	if f := c.next(); f.Type != "pong" {
		t.Fatalf("got %s, want a pong", f)
	}
	waitFor(t, "both connections parked", func() bool { return park.Armed() == armed+2 })
}

// TestWebSocketLengthOverflowCloses1009: a frame header announcing 2^63-1 bytes (the largest a
// valid header can) closes the connection with 1009 in every read mode; nothing overflows.
func TestWebSocketLengthOverflowCloses1009(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			ts, _ := mode.start(t)
			tok := ts.signIn("alice")
			c := ts.dialWS(tok)
			head := []byte{0x81, 0x80 | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
			if _, err := c.conn.NetConn().Write(append(head, "abc"...)); err != nil {
				t.Fatal(err)
			}
			if ce := c.closed(); ce.Code != ws.CloseTooBig {
				t.Fatalf("closed with %d, want 1009", ce.Code)
			}
			// The server is still up.
			ts.dialWS(tok).send(map[string]string{"type": "ping"})
		})
	}
}

// TestWebSocketFramesWithTheHandshake: a frame sent in the same write as the upgrade request is
// read ahead by the HTTP server; every read mode handles it first, as if just read.
func TestWebSocketFramesWithTheHandshake(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			ts, _ := mode.start(t)
			tok := ts.signIn("alice")
			conn, err := net.Dial("tcp", ts.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := "GET /ws HTTP/1.1\r\nHost: " + ts.Addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
				"Authorization: Bearer " + tok + "\r\n\r\n"
			early := append([]byte(req), maskedFrame(ws.OpText, true, sendFrame("early", "with the handshake"))...)
			if _, err := conn.Write(early); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(guard))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade: %v %v", resp, err)
			}
			rd := ws.NewReader(br, false, 1<<20)
			for {
				_, p, err := rd.ReadMessage()
				if err != nil {
					t.Fatalf("no ack of the frame sent with the handshake: %v", err)
				}
				var f struct {
					Type     string `json:"type"`
					ClientID string `json:"client_id"`
				}
				json.Unmarshal(p, &f)
				if f.Type == "ack" && f.ClientID == "early" {
					return
				}
			}
		})
	}
}
