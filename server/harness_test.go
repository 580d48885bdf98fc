package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"natter/internal/syncbuf"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"natter"
	"natter/app"
	"natter/server"
	"natter/ws"
)

// testServer is a whole natter (real SQLite file, hub, HTTP server) on a random loopback port.
type testServer struct {
	t    testing.TB
	URL  string
	Addr string
	Main *app.Main
	cfg  app.Config
}

// startServer starts natter in a temp dir; mutate may adjust the config first.
func startServer(t testing.TB, mutate ...func(*app.Config)) *testServer {
	t.Helper()
	cfg := app.Config{
		Addr:    "127.0.0.1:0",
		DataDir: t.TempDir(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sync:    "NORMAL",
		Server:  server.Config{Guests: true, SendRate: -1, SignInRate: -1},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	ts := &testServer{t: t, cfg: cfg}
	ts.open()
	t.Cleanup(func() { ts.close() })
	return ts
}

// startServerLogged is startServer with natter's log kept, for tests that read it.
func startServerLogged(t testing.TB, mutate ...func(*app.Config)) (*testServer, *syncbuf.Buffer) {
	t.Helper()
	logs := new(syncbuf.Buffer)
	keep := func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) }
	return startServer(t, append([]func(*app.Config){keep}, mutate...)...), logs
}

func (ts *testServer) open() {
	ts.t.Helper()
	m, err := app.Open(context.Background(), ts.cfg)
	if err != nil {
		ts.t.Fatalf("start natter: %v", err)
	}
	ts.Main, ts.URL, ts.Addr = m, m.URL(), m.Addr().String()
	ts.cfg.Addr = ts.Addr // a restart reuses the port
}

func (ts *testServer) close() {
	if ts.Main == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Main.Close(ctx); err != nil {
		ts.t.Errorf("close natter: %v", err)
	}
	ts.Main = nil
}

// restart closes natter and opens it again on the same address and data dir.
// Idle keep-alive connections to the old server are dropped first: the client may not have seen
// them closed yet, and a POST sent on one fails (EOF) rather than being retried.
func (ts *testServer) restart() {
	ts.t.Helper()
	ts.close()
	apiClient.CloseIdleConnections()
	ts.open()
}

// apiResponse is a decoded JSON answer.
type apiResponse struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// errorCode returns the contract error code of an error answer.
func (r apiResponse) errorCode() string {
	e, _ := r.Body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// errorMessage returns the message of an error answer.
func (r apiResponse) errorMessage() string {
	e, _ := r.Body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// do sends a request with an optional bearer token and JSON body (a []byte body is sent as is).
func (ts *testServer) do(method, path, token string, body any, hdr ...string) apiResponse {
	ts.t.Helper()
	r, err := ts.doErr(method, path, token, body, hdr...)
	if err != nil {
		ts.t.Fatal(err)
	}
	return r
}

// doAsync is do in its own goroutine: the channel yields the answer, or a zero apiResponse (status
// 0, logged) if the request failed.
func (ts *testServer) doAsync(method, path, token string, body any, hdr ...string) <-chan apiResponse {
	out := make(chan apiResponse, 1)
	go func() {
		r, err := ts.doErr(method, path, token, body, hdr...)
		if err != nil {
			ts.t.Log(err)
		}
		out <- r
	}()
	return out
}

// doErr is do without failing the test.
func (ts *testServer) doErr(method, path, token string, body any, hdr ...string) (apiResponse, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return apiResponse{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		return apiResponse{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: read answer: %v", method, path, err)
	}
	out := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 {
		json.Unmarshal(raw, &out.Body)
	}
	return out, nil
}

// signIn signs name in as a guest and returns the token.
func (ts *testServer) signIn(name string) string {
	ts.t.Helper()
	r := ts.do("POST", "/api/session", "", map[string]string{"name": name})
	if r.Status != http.StatusOK {
		ts.t.Fatalf("sign in %s: %d %s", name, r.Status, r.Raw)
	}
	return r.Body["token"].(string)
}

// guard bounds every wait in these tests. It is a failure guard only, never a measurement: a
// correct server answers long before it.
const guard = 20 * time.Second

// apiClient is ts.do's client; its timeout turns a request the server never answers into a
// failure instead of a hung test.
var apiClient = &http.Client{Timeout: 2 * guard}

// as returns a copy of ts that reports to t: for subtests and fuzz functions, which must not fail
// through the *testing.F or the parent test.
func (ts *testServer) as(t testing.TB) *testServer {
	c := *ts
	c.t = t
	return &c
}

// register creates an account and returns the raw answer.
func (ts *testServer) register(name, password string) apiResponse {
	ts.t.Helper()
	return ts.do("POST", "/api/users", "", map[string]string{"name": name, "password": password})
}

// post sends a message (clientID "" sends none) and returns the raw answer.
func (ts *testServer) post(tok, room, body, clientID string) apiResponse {
	ts.t.Helper()
	req := map[string]string{"body": body}
	if clientID != "" {
		req["client_id"] = clientID
	}
	return ts.do("POST", "/api/rooms/"+room+"/messages", tok, req)
}

// mustPost sends a message that must be stored (201) and returns it.
func (ts *testServer) mustPost(tok, room, body string) natter.Message {
	ts.t.Helper()
	r := ts.post(tok, room, body, "")
	if r.Status != http.StatusCreated {
		ts.t.Fatalf("post %q to %s: %d %s", body, room, r.Status, r.Raw)
	}
	return messageOf(ts.t, r)
}

// messageOf decodes the {"message": {...}} answer of a send.
func messageOf(t testing.TB, r apiResponse) natter.Message {
	t.Helper()
	var b struct {
		Message natter.Message `json:"message"`
	}
	if err := json.Unmarshal(r.Raw, &b); err != nil {
		t.Fatalf("decode message answer %s: %v", r.Raw, err)
	}
	return b.Message
}

// messagePage is the answer of GET /api/rooms/{room}/messages.
type messagePage struct {
	Room     string           `json:"room"`
	Epoch    string           `json:"epoch"`
	LastSeq  int64            `json:"last_seq"`
	Messages []natter.Message `json:"messages"`
}

// read GETs a messages URL (path and query) that must answer 200, and decodes it.
func (ts *testServer) read(tok, pathAndQuery string) messagePage {
	ts.t.Helper()
	r := ts.do("GET", pathAndQuery, tok, nil)
	if r.Status != http.StatusOK {
		ts.t.Fatalf("GET %s: %d %s", pathAndQuery, r.Status, r.Raw)
	}
	return decodePage(ts.t, r)
}

func decodePage(t testing.TB, r apiResponse) messagePage {
	t.Helper()
	for _, key := range []string{"room", "epoch", "last_seq", "messages"} {
		if _, ok := r.Body[key]; !ok {
			t.Fatalf("messages answer lacks %q: %s", key, r.Raw)
		}
	}
	if _, ok := r.Body["messages"].([]any); !ok {
		t.Fatalf("messages is not a list: %s", r.Raw)
	}
	var p messagePage
	if err := json.Unmarshal(r.Raw, &p); err != nil {
		t.Fatalf("decode messages answer %s: %v", r.Raw, err)
	}
	if p.Epoch == "" {
		t.Fatalf("empty epoch: %s", r.Raw)
	}
	return p
}

// lastSeq returns a room's last_seq as a read reports it.
func (ts *testServer) lastSeq(tok, room string) int64 {
	ts.t.Helper()
	return ts.read(tok, "/api/rooms/"+room+"/messages?limit=1").LastSeq
}

// checkError asserts the contract's error answer: the status, and exactly
// {"error": {"code": code, "message": "<non-empty>"}} as JSON.
func checkError(t testing.TB, r apiResponse, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (%s): %s", r.Status, status, code, r.Raw)
	}
	checkErrorShape(t, r)
	if got := r.errorCode(); got != code {
		t.Fatalf("error code %q, want %q: %s", got, code, r.Raw)
	}
}

// checkErrorShape asserts that r is an error answer of the contract's shape, whatever its code.
func checkErrorShape(t testing.TB, r apiResponse) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error answer has Content-Type %q: %s", ct, r.Raw)
	}
	var body map[string]map[string]any
	if err := json.Unmarshal(r.Raw, &body); err != nil || len(body) != 1 || body["error"] == nil {
		t.Fatalf("error answer is not {\"error\": {...}}: %s", r.Raw)
	}
	e := body["error"]
	code, _ := e["code"].(string)
	msg, _ := e["message"].(string)
	if code == "" || msg == "" {
		t.Fatalf("error answer lacks a code or a message: %s", r.Raw)
	}
	if want, ok := errorStatus[code]; !ok || want != r.Status {
		t.Fatalf("error code %q with status %d: the contract pairs it with %d", code, r.Status, want)
	}
}

// errorStatus is the contract's table of error codes and HTTP statuses.
var errorStatus = map[string]int{
	"invalid": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404, "conflict": 409,
	"too_large": 413, "rate_limited": 429, "unavailable": 503, "internal": 500,
}

// tsPattern is an RFC 3339 UTC time with a fractional second.
var tsPattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z$`)

// checkMessageJSON asserts the contract's message shape on a raw JSON object.
func checkMessageJSON(t testing.TB, raw []byte) natter.Message {
	t.Helper()
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("message is not a JSON object: %s", raw)
	}
	for _, key := range []string{"room", "id", "author", "body", "ts"} {
		s, ok := fields[key].(string)
		// A deletion, a pin and an unpin have no body, and an entry erased (deleted: true) none left.
		if !ok || (s == "" && (key != "body" || (fields["deleted"] != true && fields["kind"] != natter.KindDelete && fields["kind"] != natter.KindPin && fields["kind"] != natter.KindUnpin))) {
			t.Fatalf("message field %q missing or not a non-empty string: %s", key, raw)
		}
	}
	if _, ok := fields["seq"].(float64); !ok {
		t.Fatalf("message seq is not a number: %s", raw)
	}
	if cid, ok := fields["client_id"]; ok {
		if _, ok := cid.(string); !ok {
			t.Fatalf("message client_id is not a string: %s", raw)
		}
	}
	ts := fields["ts"].(string)
	if !tsPattern.MatchString(ts) {
		t.Fatalf("message ts %q is not RFC 3339 with fractional seconds in UTC", ts)
	}
	var m natter.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode message %s: %v", raw, err)
	}
	if m.Seq < 1 {
		t.Fatalf("message seq %d < 1: %s", m.Seq, raw)
	}
	return m
}

// waitFor polls cond until it holds, failing after guard.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wsClient is a WebSocket test client. A goroutine reads frames into a channel, so tests can wait
// for the next frame with a guard and see the close the server sends.
type wsClient struct {
	t      testing.TB
	conn   *ws.Conn
	frames chan wsFrame
	err    error // why reading stopped; set before frames is closed
}

// wsFrame is any frame the server sends, decoded loosely so tests can check each type's fields.
type wsFrame struct {
	Type     string          `json:"type"`
	Room     *string         `json:"room"`
	Epoch    *string         `json:"epoch"`
	LastSeq  *int64          `json:"last_seq"`
	ClientID *string         `json:"client_id"`
	Seq      *int64          `json:"seq"`
	Code     string          `json:"code"`
	Ref      *string         `json:"ref"`
	Online   []string        `json:"online"`
	User     string          `json:"user"`
	Title    *string         `json:"title"`
	Topic    *string         `json:"topic"`
	Banned   *bool           `json:"banned"`
	Message  json.RawMessage `json:"message"`

	op  ws.Opcode
	raw []byte
}

func (f wsFrame) String() string { return fmt.Sprintf("%v %s", f.op, f.raw) }

// msg decodes and checks a message frame's message.
func (f wsFrame) msg(t testing.TB) natter.Message {
	t.Helper()
	if f.Type != "message" {
		t.Fatalf("want a message frame, got %s", f)
	}
	return checkMessageJSON(t, f.Message)
}

// dialWS opens /ws with a bearer token (none if tok is ""); header adds name/value pairs.
func (ts *testServer) dialWS(tok string, header ...string) *wsClient {
	ts.t.Helper()
	c, resp, err := ts.tryDialWS("/ws", tok, header...)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		ts.t.Fatalf("dial /ws: %v %s", err, body)
	}
	return c
}

// tryDialWS opens a WebSocket on path and returns the refusal if there is one.
func (ts *testServer) tryDialWS(path, tok string, header ...string) (*wsClient, *http.Response, error) {
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	conn, resp, err := ws.Dial(ctx, "ws://"+ts.Addr+path, h)
	if err != nil {
		return nil, resp, err
	}
	return newWSClient(ts.t, conn), resp, nil
}

func newWSClient(t testing.TB, conn *ws.Conn) *wsClient {
	t.Cleanup(func() { conn.Close() })
	return startWSReader(t, conn)
}

// startWSReader starts reading conn into a wsClient; closing conn is the caller's job.
func startWSReader(t testing.TB, conn *ws.Conn) *wsClient {
	c := &wsClient{t: t, conn: conn, frames: make(chan wsFrame, 4096)}
	go func() {
		defer close(c.frames)
		for {
			op, data, err := conn.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			f := wsFrame{op: op, raw: data}
			if op != ws.OpText {
				f.Type = "<binary>"
			} else if err := json.Unmarshal(data, &f); err != nil {
				f.Type = "<not JSON>"
			}
			c.frames <- f
		}
	}()
	return c
}

// next returns the next frame, failing if none comes or the connection ends.
func (c *wsClient) next() wsFrame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("connection ended while waiting for a frame: %v", c.err)
		}
		return f
	case <-time.After(guard):
		c.t.Fatalf("no frame within %v", guard)
	}
	panic("unreachable")
}

// nextExcept returns the next frame whose type is not listed.
func (c *wsClient) nextExcept(skip ...string) wsFrame {
	c.t.Helper()
	for {
		f := c.next()
		if !slices.Contains(skip, f.Type) {
			return f
		}
	}
}

// expect returns the next frame, which must have type typ.
func (c *wsClient) expect(typ string) wsFrame {
	c.t.Helper()
	f := c.next()
	if f.Type != typ {
		c.t.Fatalf("want a %s frame, got %s", typ, f)
	}
	return f
}

// closed waits for the connection to end, skipping frames, and returns the server's close frame.
func (c *wsClient) closed() *ws.CloseError {
	c.t.Helper()
	timeout := time.After(guard)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				var ce *ws.CloseError
				if !errors.As(c.err, &ce) {
					c.t.Fatalf("connection ended without a close frame: %v", c.err)
				}
				return ce
			}
		case <-timeout:
			c.t.Fatalf("connection still open after %v", guard)
		}
	}
}

// send writes v as a JSON text frame.
func (c *wsClient) send(v any) {
	c.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(ws.OpText, data)
}

func (c *wsClient) sendRaw(op ws.Opcode, data []byte) {
	c.t.Helper()
	if err := c.conn.WriteMessage(op, data); err != nil {
		c.t.Fatalf("write %v frame: %v", op, err)
	}
}

// subscribe subscribes to room (from after, if given) and returns the subscribed frame and the
// presence frame that must follow it.
func (c *wsClient) subscribe(room string, after ...int64) (subscribed, presence wsFrame) {
	c.t.Helper()
	req := map[string]any{"type": "subscribe", "room": room}
	if len(after) > 0 {
		req["after"] = after[0]
	}
	c.send(req)
	subscribed = c.expect("subscribed")
	if subscribed.Room == nil || *subscribed.Room != room || subscribed.Epoch == nil || *subscribed.Epoch == "" || subscribed.LastSeq == nil {
		c.t.Fatalf("subscribed frame lacks room, epoch or last_seq: %s", subscribed)
	}
	presence = c.expect("presence")
	if presence.Room == nil || *presence.Room != room || presence.Online == nil {
		c.t.Fatalf("presence frame lacks room or online: %s", presence)
	}
	return subscribed, presence
}

// sendMessage sends over the WebSocket and returns the ack, skipping message and presence frames.
func (c *wsClient) sendMessage(room, body, clientID string) wsFrame {
	c.t.Helper()
	c.send(map[string]string{"type": "send", "room": room, "body": body, "client_id": clientID})
	f := c.nextExcept("message", "presence", "join", "leave")
	if f.Type != "ack" || f.ClientID == nil || *f.ClientID != clientID || f.Seq == nil {
		c.t.Fatalf("want an ack for %q, got %s", clientID, f)
	}
	return f
}

// fill stores n messages with bodies "fill 0", "fill 1", ... in room through one WebSocket,
// pipelined, and returns the last seq.
func (ts *testServer) fill(tok, room string, n int) int64 {
	ts.t.Helper()
	last, err := ts.fillErr(tok, room, n)
	if err != nil {
		ts.t.Fatal(err)
	}
	return last
}

// fillErr is fill without failing the test, for other goroutines.
func (ts *testServer) fillErr(tok, room string, n int) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	conn, _, err := ws.Dial(ctx, "ws://"+ts.Addr+"/ws", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		return 0, fmt.Errorf("fill: %w", err)
	}
	defer conn.Close()
	conn.NetConn().SetReadDeadline(time.Now().Add(4 * guard))
	go func() {
		for i := range n {
			data, _ := json.Marshal(map[string]string{"type": "send", "room": room, "body": fmt.Sprintf("fill %d", i)})
			if conn.WriteMessage(ws.OpText, data) != nil {
				return
			}
		}
	}()
	var last int64
	for acks := 0; acks < n; {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return last, fmt.Errorf("fill: after %d acks: %w", acks, err)
		}
		var f wsFrame
		if err := json.Unmarshal(data, &f); err != nil || f.Type != "ack" || f.Seq == nil {
			return last, fmt.Errorf("fill: want an ack, got %s", data)
		}
		last = max(last, *f.Seq)
		acks++
	}
	return last, nil
}
