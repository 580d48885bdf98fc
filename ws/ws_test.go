package ws_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"natter/ws"
)

// event is what a test server's handler observed: one ReadMessage result.
type event struct {
	op  ws.Opcode
	p   []byte
	err error
}

// testServer is an httptest server whose handler upgrades every request and hands the connection
// to serve. Events reports what the handler read.
type testServer struct {
	*httptest.Server
	URL         string // ws:// URL of the server
	events      chan event
	upgradeErrs chan error
}

// serveFunc runs one server-side connection.
type serveFunc func(conn net.Conn, rd *ws.Reader, events chan<- event)

// newTestServer starts a server with the given message limit; serve nil means echoServe.
func newTestServer(t *testing.T, limit int, serve serveFunc) *testServer {
	t.Helper()
	if serve == nil {
		serve = echoServe
	}
	ts := &testServer{events: make(chan event, 1024), upgradeErrs: make(chan error, 10)}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := ws.Upgrade(w, r, http.Header{"X-Natter-Test": {"yes"}})
		if err != nil {
			ts.upgradeErrs <- err
			return
		}
		defer conn.Close()
		serve(conn, ws.NewReader(ws.SocketReader(conn), true, limit), ts.events)
	}))
	t.Cleanup(ts.Close)
	ts.URL = "ws" + strings.TrimPrefix(ts.Server.URL, "http")
	return ts
}

// echoServe echoes data messages, answers pings, echoes a close frame and, after a protocol
// error, sends the close code the error calls for. It reports every read.
func echoServe(conn net.Conn, rd *ws.Reader, events chan<- event) {
	for {
		op, p, err := rd.ReadMessage()
		events <- event{op, p, err}
		if err != nil {
			var ce *ws.CloseError
			if errors.As(err, &ce) {
				conn.Write(ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(ce.Code, ce.Reason)))
			} else if code := ws.CloseCodeFor(err); code != 0 {
				conn.Write(ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(code, err.Error())))
			}
			return
		}
		switch op {
		case ws.OpPing:
			conn.Write(ws.AppendFrame(nil, ws.OpPong, p))
		case ws.OpPong:
		default:
			if _, err := conn.Write(ws.AppendFrame(nil, op, p)); err != nil {
				return
			}
		}
	}
}

// dial connects to ts and closes the connection at cleanup.
func dial(t *testing.T, url string) *ws.Conn {
	t.Helper()
	c, resp, err := ws.Dial(context.Background(), url, nil)
	if err != nil {
		t.Fatalf("Dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// nextEvent returns the next event the server reported.
func nextEvent(t *testing.T, ts *testServer) event {
	t.Helper()
	return <-ts.events
}

// frame encodes one masked frame; fin false clears the FIN bit to make a fragment.
func frame(fin bool, op ws.Opcode, payload []byte) []byte {
	b := ws.AppendMaskedFrame(nil, op, payload, [4]byte{0x12, 0x34, 0x56, 0x78})
	if !fin {
		b[0] &^= 0x80
	}
	return b
}

// wantClose reads from c until an error and checks it is a close frame with code.
func wantClose(t *testing.T, c *ws.Conn, code int) *ws.CloseError {
	t.Helper()
	op, p, err := c.ReadMessage()
	var ce *ws.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("ReadMessage = %v %q %v; want close %d", op, p, err, code)
	}
	if ce.Code != code {
		t.Fatalf("close code = %d (%q); want %d", ce.Code, ce.Reason, code)
	}
	return ce
}

func TestHandshake(t *testing.T) {
	ts := newTestServer(t, 0, nil)
	c, resp, err := ws.Dial(context.Background(), ts.URL+"/ws?x=1", http.Header{"Origin": {ts.Server.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("status = %d", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Natter-Test"); got != "yes" {
		t.Errorf("extra header = %q; want yes", got)
	}
	// http:// is accepted as ws://.
	c2, _, err := ws.Dial(context.Background(), ts.Server.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
}

func TestDialTLS(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := ws.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		echoServe(conn, ws.NewReader(conn, true, 0), make(chan event, 10))
	}))
	defer ts.Close()
	d := ws.Dialer{TLSConfig: ts.Client().Transport.(*http.Transport).TLSClientConfig}
	c, _, err := d.Dial(context.Background(), "wss"+strings.TrimPrefix(ts.URL, "https"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(ws.OpText, []byte("over tls")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "over tls" {
		t.Fatalf("ReadMessage = %q, %v", p, err)
	}
}

func TestUpgradeRejectsBadHandshakes(t *testing.T) {
	ts := newTestServer(t, 0, nil)
	const goodKey = "dGhlIHNhbXBsZSBub25jZQ=="
	tests := []struct {
		name    string
		method  string
		headers string
		status  int
	}{
		{"post", "POST", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + goodKey + "\r\nContent-Length: 0\r\n", 400},
		{"no connection upgrade", "GET", "Connection: keep-alive\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + goodKey + "\r\n", 400},
		{"no upgrade header", "GET", "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + goodKey + "\r\n", 400},
		{"wrong upgrade", "GET", "Connection: Upgrade\r\nUpgrade: h2c\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + goodKey + "\r\n", 400},
		{"old version", "GET", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: " + goodKey + "\r\n", 426},
		{"no key", "GET", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n", 400},
		{"key not base64", "GET", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not*base64*at*all*!!!!!\r\n", 400},
		{"key 15 bytes", "GET", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "%s /ws HTTP/1.1\r\nHost: example\r\n%s\r\n", tt.method, tt.headers)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d; want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 426 && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("426 without Sec-WebSocket-Version: 13")
			}
			if err := <-ts.upgradeErrs; !errors.Is(err, ws.ErrBadHandshake) {
				t.Errorf("Upgrade error = %v; want ErrBadHandshake", err)
			}
		})
	}
}

func TestDialReportsRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"unauthorized","message":"sign in"}}`)
	}))
	defer srv.Close()
	c, resp, err := ws.Dial(context.Background(), srv.URL, nil)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded against a 401")
	}
	if !errors.Is(err, ws.ErrBadHandshake) || !strings.Contains(err.Error(), "401") {
		t.Errorf("error = %v; want ErrBadHandshake naming 401", err)
	}
	if resp == nil || resp.StatusCode != 401 {
		t.Fatalf("response = %v; want 401", resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "unauthorized") {
		t.Errorf("body = %q", body)
	}
}

func TestDialRejectsWrongAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		http.ReadRequest(bufio.NewReader(conn))
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n")
		io.Copy(io.Discard, conn)
	}()
	c, _, err := ws.Dial(context.Background(), "ws://"+ln.Addr().String(), nil)
	if err == nil {
		c.Close()
		t.Fatal("Dial accepted a wrong Sec-WebSocket-Accept")
	}
	if !errors.Is(err, ws.ErrBadHandshake) {
		t.Errorf("error = %v; want ErrBadHandshake", err)
	}
}

func TestDialHonorsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn // never answers the handshake
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		c, _, err := ws.Dial(ctx, "ws://"+ln.Addr().String(), nil)
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	conn := <-accepted
	defer conn.Close()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial error = %v; want context.Canceled", err)
	}
}

func TestEchoSizes(t *testing.T) {
	ts := newTestServer(t, 2<<20, nil)
	c := dial(t, ts.URL)
	for _, n := range []int{0, 1, 125, 126, 127, 511, 512, 513, 65535, 65536, 65537, 1 << 20} {
		for _, op := range []ws.Opcode{ws.OpText, ws.OpBinary} {
			payload := bytes.Repeat([]byte("abcdefghij"), n/10+1)[:n]
			if err := c.WriteMessage(op, payload); err != nil {
				t.Fatal(err)
			}
			gotOp, got, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("%v %d: %v", op, n, err)
			}
			if gotOp != op || !bytes.Equal(got, payload) {
				t.Fatalf("%v %d: echoed %v of %d bytes", op, n, gotOp, len(got))
			}
			if ev := nextEvent(t, ts); ev.err != nil || ev.op != op || len(ev.p) != n {
				t.Fatalf("%v %d: server read %v %d %v", op, n, ev.op, len(ev.p), ev.err)
			}
		}
	}
}

// TestPipelinedBytesReplayed sends the first frame in the same write as the handshake request, so
// that net/http reads it along with the request; Upgrade must replay it.
func TestPipelinedBytesReplayed(t *testing.T) {
	ts := newTestServer(t, 0, nil)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req bytes.Buffer
	req.WriteString("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	req.Write(frame(true, ws.OpText, []byte("early bird")))
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("response %d, accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	op, p, err := ws.NewReader(br, false, 0).ReadMessage()
	if err != nil || op != ws.OpText || string(p) != "early bird" {
		t.Fatalf("echo = %v %q %v", op, p, err)
	}
}

// TestServerFirstFrame checks that a frame the server sends right behind its 101 response, which
// the client's handshake parser may read ahead, still reaches the client.
func TestServerFirstFrame(t *testing.T) {
	ts := newTestServer(t, 0, func(conn net.Conn, rd *ws.Reader, events chan<- event) {
		conn.Write(ws.AppendFrame(nil, ws.OpText, []byte("welcome")))
		echoServe(conn, rd, events)
	})
	c := dial(t, ts.URL)
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "welcome" {
		t.Fatalf("ReadMessage = %q, %v", p, err)
	}
}

func TestFragmentedMessage(t *testing.T) {
	ts := newTestServer(t, 0, nil)
	c := dial(t, ts.URL)
	// A text message split inside a multi-byte character, with a ping between fragments.
	var b bytes.Buffer
	b.Write(frame(false, ws.OpText, []byte("Hé")[:2]))
	b.Write(frame(true, ws.OpPing, []byte("between")))
	b.Write(frame(false, ws.OpContinuation, []byte("\xa9llo, ")))
	b.Write(frame(false, ws.OpContinuation, nil))
	b.Write(frame(true, ws.OpContinuation, []byte("wörld")))
	if _, err := c.NetConn().Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, ts); ev.op != ws.OpPing || string(ev.p) != "between" {
		t.Fatalf("first event = %v %q %v; want the ping", ev.op, ev.p, ev.err)
	}
	if ev := nextEvent(t, ts); ev.op != ws.OpText || string(ev.p) != "Héllo, wörld" || ev.err != nil {
		t.Fatalf("second event = %v %q %v; want the whole text", ev.op, ev.p, ev.err)
	}
	// The client skips the pong and returns the echo.
	if op, p, err := c.ReadMessage(); op != ws.OpText || string(p) != "Héllo, wörld" || err != nil {
		t.Fatalf("ReadMessage = %v %q %v", op, p, err)
	}
}

func TestFragmentationErrors(t *testing.T) {
	tests := []struct {
		name   string
		frames [][]byte
	}{
		{"continuation first", [][]byte{frame(true, ws.OpContinuation, []byte("x"))}},
		{"text inside fragmented", [][]byte{frame(false, ws.OpBinary, []byte("a")), frame(true, ws.OpText, []byte("b"))}},
		{"fragmented ping", [][]byte{frame(false, ws.OpPing, []byte("a"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, 0, nil)
			c := dial(t, ts.URL)
			c.NetConn().Write(bytes.Join(tt.frames, nil))
			ev := nextEvent(t, ts)
			for ev.err == nil {
				ev = nextEvent(t, ts)
			}
			if ws.CloseCodeFor(ev.err) != ws.CloseProtocolError {
				t.Fatalf("server error = %v; want a protocol error", ev.err)
			}
			wantClose(t, c, ws.CloseProtocolError)
		})
	}
}

func TestServerRequiresMaskedFrames(t *testing.T) {
	ts := newTestServer(t, 0, nil)
	c := dial(t, ts.URL)
	c.NetConn().Write(ws.AppendFrame(nil, ws.OpText, []byte("naked")))
	ev := nextEvent(t, ts)
	if !errors.Is(ev.err, ws.ErrProtocol) {
		t.Fatalf("server read %v %q %v; want ErrProtocol", ev.op, ev.p, ev.err)
	}
	wantClose(t, c, ws.CloseProtocolError)
}

func TestClientRejectsMaskedFrames(t *testing.T) {
	ts := newTestServer(t, 0, func(conn net.Conn, rd *ws.Reader, events chan<- event) {
		conn.Write(frame(true, ws.OpText, []byte("masked")))
		echoServe(conn, rd, events)
	})
	c := dial(t, ts.URL)
	if _, _, err := c.ReadMessage(); !errors.Is(err, ws.ErrProtocol) {
		t.Fatalf("ReadMessage error = %v; want ErrProtocol", err)
	}
	// The client told the server why.
	if ev := nextEvent(t, ts); !errors.As(ev.err, new(*ws.CloseError)) || ev.err.(*ws.CloseError).Code != ws.CloseProtocolError {
		t.Fatalf("server read %v; want close 1002", ev.err)
	}
}

func TestClientAnswersPing(t *testing.T) {
	ts := newTestServer(t, 0, func(conn net.Conn, rd *ws.Reader, events chan<- event) {
		conn.Write(ws.AppendFrame(nil, ws.OpPing, []byte("are you there")))
		op, p, err := rd.ReadMessage()
		events <- event{op, p, err}
		conn.Write(ws.AppendFrame(nil, ws.OpText, []byte("done")))
		echoServe(conn, rd, events)
	})
	c := dial(t, ts.URL)
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "done" {
		t.Fatalf("ReadMessage = %q, %v", p, err)
	}
	if ev := nextEvent(t, ts); ev.op != ws.OpPong || string(ev.p) != "are you there" {
		t.Fatalf("server read %v %q %v; want the pong", ev.op, ev.p, ev.err)
	}
}

func TestCloseHandshakeFromClient(t *testing.T) {
	ts := newTestServer(t, 0, nil)
	c := dial(t, ts.URL)
	if err := c.WriteClose(ws.CloseNormal, "bye"); err != nil {
		t.Fatal(err)
	}
	var ce *ws.CloseError
	if ev := nextEvent(t, ts); !errors.As(ev.err, &ce) || ce.Code != ws.CloseNormal || ce.Reason != "bye" {
		t.Fatalf("server read %v; want close 1000 bye", ev.err)
	}
	if got := wantClose(t, c, ws.CloseNormal); got.Reason != "bye" {
		t.Errorf("reason = %q", got.Reason)
	}
	if err := c.WriteMessage(ws.OpText, []byte("late")); !errors.Is(err, ws.ErrCloseSent) {
		t.Errorf("WriteMessage after close = %v; want ErrCloseSent", err)
	}
}

func TestCloseHandshakeFromServer(t *testing.T) {
	ts := newTestServer(t, 0, func(conn net.Conn, rd *ws.Reader, events chan<- event) {
		conn.Write(ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(ws.CloseSlow, "slow")))
		op, p, err := rd.ReadMessage()
		events <- event{op, p, err}
	})
	c := dial(t, ts.URL)
	if ce := wantClose(t, c, ws.CloseSlow); ce.Reason != "slow" {
		t.Errorf("reason = %q", ce.Reason)
	}
	var ce *ws.CloseError
	if ev := nextEvent(t, ts); !errors.As(ev.err, &ce) || ce.Code != ws.CloseSlow {
		t.Fatalf("server read %v; want the echoed close 4008", ev.err)
	}
}

func TestTooLarge(t *testing.T) {
	for _, tt := range []struct {
		name   string
		frames [][]byte
	}{
		{"one frame", [][]byte{frame(true, ws.OpBinary, make([]byte, 1001))}},
		{"fragments", [][]byte{frame(false, ws.OpBinary, make([]byte, 600)), frame(true, ws.OpContinuation, make([]byte, 401))}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, 1000, nil)
			c := dial(t, ts.URL)
			// The limit itself is fine.
			c.WriteMessage(ws.OpBinary, make([]byte, 1000))
			if _, p, err := c.ReadMessage(); err != nil || len(p) != 1000 {
				t.Fatalf("1000 bytes: %d %v", len(p), err)
			}
			nextEvent(t, ts)
			c.NetConn().Write(bytes.Join(tt.frames, nil))
			if ev := nextEvent(t, ts); !errors.Is(ev.err, ws.ErrTooLarge) {
				t.Fatalf("server read %v; want ErrTooLarge", ev.err)
			}
			wantClose(t, c, ws.CloseTooBig)
		})
	}
}

// TestTooLargeBeforePayload checks that the limit is enforced from the header alone: the payload
// announced here never arrives.
func TestTooLargeBeforePayload(t *testing.T) {
	hdr := []byte{0x82, 0x80 | 127, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4} // 1 TiB, masked
	_, _, err := ws.NewReader(bytes.NewReader(hdr), true, 1<<20).ReadMessage()
	if !errors.Is(err, ws.ErrTooLarge) {
		t.Fatalf("err = %v; want ErrTooLarge", err)
	}
}

func TestInvalidUTF8(t *testing.T) {
	ts := newTestServer(t, 0, nil)
	c := dial(t, ts.URL)
	c.WriteMessage(ws.OpText, []byte("bad \xff byte"))
	ev := nextEvent(t, ts)
	var pe *ws.ProtocolError
	if !errors.As(ev.err, &pe) || pe.Code != ws.CloseInvalidPayload || !errors.Is(ev.err, ws.ErrProtocol) {
		t.Fatalf("server read %v; want ProtocolError 1007", ev.err)
	}
	wantClose(t, c, ws.CloseInvalidPayload)
}

func TestReaderErrors(t *testing.T) {
	key := []byte{1, 2, 3, 4}
	masked := func(b ...byte) []byte { return append(append(b[:2:2], key...), b[2:]...) }
	tests := []struct {
		name string
		in   []byte
		code int // expected CloseCodeFor; 0 means a non-protocol error
		eof  error
	}{
		{"rsv1", masked(0xc1, 0x80), ws.CloseProtocolError, nil},
		{"rsv3", masked(0x91, 0x80), ws.CloseProtocolError, nil},
		{"opcode 3", masked(0x83, 0x80), ws.CloseProtocolError, nil},
		{"opcode 11", masked(0x8b, 0x80), ws.CloseProtocolError, nil},
		{"long ping", append([]byte{0x89, 0x80 | 126, 0, 126}, make([]byte, 130)...), ws.CloseProtocolError, nil},
		{"non-minimal 16", append([]byte{0x82, 0x80 | 126, 0, 5}, make([]byte, 9)...), ws.CloseProtocolError, nil},
		{"non-minimal 64", append([]byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 5}, make([]byte, 9)...), ws.CloseProtocolError, nil},
		{"64-bit msb", []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, ws.CloseProtocolError, nil},
		{"close 1 byte", frame(true, ws.OpClose, []byte{3}), ws.CloseProtocolError, nil},
		{"close code 999", frame(true, ws.OpClose, ws.ClosePayload(999, "")), ws.CloseProtocolError, nil},
		{"close code 1005", frame(true, ws.OpClose, []byte{0x03, 0xed}), ws.CloseProtocolError, nil},
		{"close code 1006", frame(true, ws.OpClose, []byte{0x03, 0xee}), ws.CloseProtocolError, nil},
		{"close code 5000", frame(true, ws.OpClose, ws.ClosePayload(5000, "")), ws.CloseProtocolError, nil},
		{"close bad reason", frame(true, ws.OpClose, append(ws.ClosePayload(1000, ""), 0xc3, 0x28)), ws.CloseInvalidPayload, nil},
		{"truncated header", []byte{0x81}, 0, io.ErrUnexpectedEOF},
		{"truncated payload", frame(true, ws.OpText, []byte("hello"))[:8], 0, io.ErrUnexpectedEOF},
		{"truncated big payload", frame(true, ws.OpBinary, make([]byte, 5000))[:3000], 0, io.ErrUnexpectedEOF},
		{"empty", nil, 0, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ws.NewReader(bytes.NewReader(tt.in), true, 0).ReadMessage()
			if err == nil {
				t.Fatal("no error")
			}
			if got := ws.CloseCodeFor(err); got != tt.code {
				t.Errorf("CloseCodeFor(%v) = %d; want %d", err, got, tt.code)
			}
			if tt.eof != nil && err != tt.eof {
				t.Errorf("err = %v; want %v", err, tt.eof)
			}
		})
	}
}

func TestReaderControlAndEmptyClose(t *testing.T) {
	var in []byte
	in = append(in, frame(true, ws.OpPong, []byte("p"))...)
	in = append(in, frame(true, ws.OpClose, nil)...)
	in = append(in, frame(true, ws.OpClose, ws.ClosePayload(3001, "app"))...)
	rd := ws.NewReader(bytes.NewReader(in), true, 0)
	if op, p, err := rd.ReadMessage(); op != ws.OpPong || string(p) != "p" || err != nil {
		t.Fatalf("pong: %v %q %v", op, p, err)
	}
	var ce *ws.CloseError
	if _, _, err := rd.ReadMessage(); !errors.As(err, &ce) || ce.Code != ws.CloseNoStatus {
		t.Fatalf("empty close: %v", err)
	}
	if _, _, err := rd.ReadMessage(); !errors.As(err, &ce) || ce.Code != 3001 || ce.Reason != "app" {
		t.Fatalf("close 3001: %v", err)
	}
	if _, _, err := rd.ReadMessage(); err != io.EOF {
		t.Fatalf("end: %v; want io.EOF", err)
	}
}

func TestClosePayload(t *testing.T) {
	if p := ws.ClosePayload(ws.CloseNoStatus, "x"); len(p) != 0 {
		t.Errorf("ClosePayload(1005) = %v; want empty", p)
	}
	long := strings.Repeat("é", 100) // 200 bytes
	p := ws.ClosePayload(ws.CloseGoingAway, long)
	if len(p) > 125 {
		t.Fatalf("payload of %d bytes", len(p))
	}
	rd := ws.NewReader(bytes.NewReader(frame(true, ws.OpClose, p)), true, 0)
	var ce *ws.CloseError
	if _, _, err := rd.ReadMessage(); !errors.As(err, &ce) || ce.Code != ws.CloseGoingAway || !strings.HasPrefix(long, ce.Reason) || len(ce.Reason) != 122 {
		t.Fatalf("decoded %v", err)
	}
}

func TestWriteMessageRejectsLongControl(t *testing.T) {
	ts := newTestServer(t, 0, nil)
	c := dial(t, ts.URL)
	if err := c.WriteMessage(ws.OpPing, make([]byte, 126)); err == nil {
		t.Fatal("126-byte ping accepted")
	}
	if err := c.WriteMessage(ws.OpPing, make([]byte, 125)); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, ts); ev.op != ws.OpPing || len(ev.p) != 125 {
		t.Fatalf("server read %v of %d bytes", ev.op, len(ev.p))
	}
}

func TestConcurrentWriters(t *testing.T) {
	ts := newTestServer(t, 0, nil)
	c := dial(t, ts.URL)
	const writers, each = 8, 50
	done := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				if err := c.WriteMessage(ws.OpText, []byte(fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("x", 300*w)))); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	seen := map[string]bool{}
	for range writers * each {
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		seen[string(p)] = true
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct messages; want %d", len(seen), writers*each)
	}
}

func TestIdleTimeout(t *testing.T) {
	pings := make(chan struct{})
	ts := newTestServer(t, 0, func(conn net.Conn, rd *ws.Reader, events chan<- event) {
		// Pings keep an idle connection alive; then silence ends it.
		for range pings {
			conn.Write(ws.AppendFrame(nil, ws.OpPing, nil))
			rd.ReadMessage() // the pong
		}
		conn.Write(ws.AppendFrame(nil, ws.OpText, []byte("last")))
		rd.ReadMessage()
	})
	c := dial(t, ts.URL)
	c.SetIdleTimeout(time.Second)
	done := make(chan error, 1)
	go func() {
		_, p, err := c.ReadMessage()
		if err == nil && string(p) != "last" {
			err = fmt.Errorf("read %q", p)
		}
		if err == nil {
			_, _, err = c.ReadMessage()
		}
		done <- err
	}()
	for range 5 {
		pings <- struct{}{}
		time.Sleep(300 * time.Millisecond) // together longer than the timeout, each gap well within it
	}
	close(pings)
	err := <-done
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadMessage after silence = %v; want a timeout", err)
	}
}
