package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"natter"
	"natter/client"
	"natter/ws"
)

// fakeNatter is a deliberately misbehaving server for the one room "lobby": its HTTP reads are
// correct, but its streams are scripted by each test (duplicates, gaps, epoch changes, drops).
type fakeNatter struct {
	t   *testing.T
	srv *httptest.Server

	mu    sync.Mutex
	epoch string
	log   []natter.Message // log[i] has seq i+1

	// wsScript runs the n-th (from 1) WebSocket connection after its subscribe frame.
	wsScript  func(n int, conn net.Conn, after int64)
	wsAfters  []int64
	sseScript func(n int, w http.ResponseWriter, r *http.Request, flush func())
	sseIDs    []string
}

func newFakeNatter(t *testing.T) *fakeNatter {
	f := &fakeNatter{t: t, epoch: "e1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/rooms/lobby/messages", f.handleMessages)
	mux.HandleFunc("GET /ws", f.handleWS)
	mux.HandleFunc("GET /api/rooms/lobby/events", f.handleSSE)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// setLog replaces the room's log with n messages in epoch, bodies tagged with the epoch.
func (f *fakeNatter) setLog(epoch string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch, f.log = epoch, nil
	for range n {
		f.appendLocked()
	}
}

// add appends one message and returns it.
func (f *fakeNatter) add() natter.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.appendLocked()
}

func (f *fakeNatter) appendLocked() natter.Message {
	seq := int64(len(f.log) + 1)
	m := natter.Message{Room: "lobby", Seq: seq, ID: fmt.Sprint(f.epoch, "-", seq), Author: "fake", Body: fmt.Sprint(f.epoch, " #", seq), TS: time.Unix(seq, 0).UTC()}
	f.log = append(f.log, m)
	return m
}

// msg returns the stored message seq.
func (f *fakeNatter) msg(seq int64) natter.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log[seq-1]
}

func (f *fakeNatter) handleMessages(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 100
	}
	f.mu.Lock()
	var msgs []natter.Message
	if r.URL.Query().Has("after") {
		for _, m := range f.log {
			if m.Seq > after && len(msgs) < limit {
				msgs = append(msgs, m)
			}
		}
	} else {
		msgs = f.log[max(0, len(f.log)-limit):]
	}
	page := client.Page{Room: "lobby", Epoch: f.epoch, LastSeq: int64(len(f.log)), Messages: msgs}
	f.mu.Unlock()
	if page.Messages == nil {
		page.Messages = []natter.Message{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(page)
}

func (f *fakeNatter) handleWS(w http.ResponseWriter, r *http.Request) {
	conn, err := ws.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	_, p, err := ws.NewReader(conn, true, 0).ReadMessage()
	if err != nil {
		return
	}
	var sub struct {
		Type  string `json:"type"`
		Room  string `json:"room"`
		After int64  `json:"after"`
	}
	if json.Unmarshal(p, &sub) != nil || sub.Type != "subscribe" || sub.Room != "lobby" {
		f.t.Errorf("first frame %s; want a subscribe to lobby", p)
		return
	}
	f.mu.Lock()
	f.wsAfters = append(f.wsAfters, sub.After)
	n := len(f.wsAfters)
	f.mu.Unlock()
	f.wsScript(n, conn, sub.After)
}

func (f *fakeNatter) handleSSE(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.sseIDs = append(f.sseIDs, r.Header.Get("Last-Event-ID"))
	n := len(f.sseIDs)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flush := func() { http.NewResponseController(w).Flush() }
	flush()
	f.sseScript(n, w, r, flush)
}

// afters returns the after of each WebSocket subscribe so far.
func (f *fakeNatter) afters() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.wsAfters)
}

// lastEventIDs returns the Last-Event-ID of each event stream request so far.
func (f *fakeNatter) lastEventIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sseIDs)
}

// wsSend writes a server frame with the given fields.
func wsSend(conn net.Conn, v any) {
	data, _ := json.Marshal(v)
	conn.Write(ws.AppendFrame(nil, ws.OpText, data))
}

func wsMessage(conn net.Conn, m natter.Message) {
	wsSend(conn, map[string]any{"type": "message", "message": m})
}

func wsSubscribed(conn net.Conn, epoch string, last int64) {
	wsSend(conn, map[string]any{"type": "subscribed", "room": "lobby", "epoch": epoch, "last_seq": last})
}

// waitClosed blocks until the client closes conn.
func waitClosed(conn net.Conn) { io.Copy(io.Discard, conn) }

// follow runs Follow in the background and returns a collector and a stop func that waits for it.
func follow(t *testing.T, c *client.Client, s client.Subscription) (*collector, func() error) {
	col := newCollector()
	s.OnMessage = col.add
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	done := make(chan error, 1)
	go func() { done <- c.Follow(ctx, s) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	return col, stop
}

func fastClient(url string) *client.Client {
	return client.New(url, client.WithRetry(0, time.Millisecond, 20*time.Millisecond))
}

func TestFollowRepairsDuplicatesAndGaps(t *testing.T) {
	f := newFakeNatter(t)
	f.setLog("e1", 8)
	f.wsScript = func(n int, conn net.Conn, after int64) {
		switch n {
		case 1:
			wsSubscribed(conn, "e1", 8)
			for _, seq := range []int64{1, 2, 2, 1, 5, 6} { // a duplicate, an old one, a gap
				wsMessage(conn, f.msg(seq))
			}
			conn.Write(ws.AppendFrame(nil, ws.OpClose, ws.ClosePayload(ws.CloseSlow, "slow")))
			waitClosed(conn)
		default:
			wsSubscribed(conn, "e1", 8)
			wsMessage(conn, f.msg(8)) // skips 7
			wsMessage(conn, f.msg(8))
			waitClosed(conn)
		}
	}
	var errs []error
	col, stop := follow(t, fastClient(f.srv.URL), client.Subscription{Room: "lobby", Transport: client.TransportWS,
		OnError: func(err error) { errs = append(errs, err) }})
	got := col.waitFor(t, 8)
	stop()
	checkSeqs(t, col.msgs, 1, 8)
	for i, m := range got {
		if m != f.msg(int64(i+1)) {
			t.Errorf("delivered %+v; want %+v", m, f.msg(int64(i+1)))
		}
	}
	if got := f.afters(); !slices.Equal(got, []int64{0, 6}) {
		t.Errorf("subscribed with after %v; want [0 6]: the reconnect resumes after the last delivered", got)
	}
	var ce *ws.CloseError
	if len(errs) == 0 || !errors.As(errs[0], &ce) || ce.Code != ws.CloseSlow {
		t.Errorf("OnError got %v; want the close 4008 first", errs)
	}
}

func TestFollowRestartsOnNewEpoch(t *testing.T) {
	f := newFakeNatter(t)
	f.setLog("e1", 3)
	var e1 []natter.Message
	for seq := int64(1); seq <= 3; seq++ {
		e1 = append(e1, f.msg(seq))
	}
	f.wsScript = func(n int, conn net.Conn, after int64) {
		switch n {
		case 1:
			wsSubscribed(conn, "e1", 3)
			for seq := after + 1; seq <= 3; seq++ {
				wsMessage(conn, f.msg(seq))
			}
			f.setLog("e2", 2) // the log is lost and restarts while the client is away
			// an abrupt end, no close frame
		default:
			f.mu.Lock()
			epoch, last := f.epoch, int64(len(f.log))
			f.mu.Unlock()
			wsSubscribed(conn, epoch, last)
			for seq := after + 1; seq <= last; seq++ {
				wsMessage(conn, f.msg(seq))
			}
			waitClosed(conn)
		}
	}
	var epochs []string
	col, stop := follow(t, fastClient(f.srv.URL), client.Subscription{Room: "lobby", Transport: client.TransportWS,
		OnEpoch: func(old, new string) { epochs = append(epochs, old+"->"+new) }})
	got := col.waitFor(t, 5)
	stop()
	want := append(e1, f.msg(1), f.msg(2))
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v; want seqs 1-3 of e1 then 1-2 of e2", got)
	}
	if !slices.Equal(epochs, []string{"->e1", "e1->e2"}) {
		t.Errorf("OnEpoch calls %v", epochs)
	}
	if got := f.afters(); !slices.Equal(got, []int64{0, 3, 0}) {
		t.Errorf("subscribed with after %v; want [0 3 0]", got)
	}
}

func TestFollowSSEParsesAndResumes(t *testing.T) {
	f := newFakeNatter(t)
	f.setLog("e1", 2)
	f.sseScript = func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		switch n {
		case 1:
			io.WriteString(w, ": hello\r\n\r\nevent: subscribed\r\ndata: {\"room\":\"lobby\",\"epoch\":\"e1\"}\r\n\r\n")
			m3, _, m5, m6 := f.add(), f.add(), f.add(), f.add() // 4 is stored but never streamed
			j := func(m natter.Message) string { b, _ := json.Marshal(m); return string(b) }
			fmt.Fprintf(w, "id: 3\r\nevent: message\r\ndata: %s\r\n\r\n", j(m3))
			fmt.Fprintf(w, "id: 3\nevent: message\ndata: %s\n\n", j(m3)) // duplicate
			fmt.Fprintf(w, "id: 5\rdata: %s\r\r", j(m5))                 // CR endings, default type, skips 4
			// data split over two lines joins with "\n", which is JSON whitespace
			js := j(m6)
			cut := strings.Index(js, `"seq"`)
			fmt.Fprintf(w, "id: 6\nevent: message\ndata: %s\ndata: %s\n\n", js[:cut], js[cut:])
			io.WriteString(w, "event: presence\ndata: {\"online\":[]}\n\n")
			flush()
		default:
			m7 := f.add()
			b, _ := json.Marshal(m7)
			fmt.Fprintf(w, "id: 7\nevent: message\ndata: %s\n\n", b)
			flush()
			<-r.Context().Done()
		}
	}
	col, stop := follow(t, fastClient(f.srv.URL), client.Subscription{Room: "lobby", Transport: client.TransportSSE})
	got := col.waitFor(t, 7)
	stop()
	checkSeqs(t, col.msgs, 1, 7)
	for i, m := range got {
		if m != f.msg(int64(i+1)) {
			t.Errorf("delivered %+v; want %+v", m, f.msg(int64(i+1)))
		}
	}
	if ids := f.lastEventIDs(); len(ids) < 2 || ids[0] != "2" || ids[1] != "6" {
		t.Errorf("Last-Event-ID per stream %q; want 2 (after the catch-up read) then 6", ids)
	}
}

// recorder is a scripted HTTP endpoint: answer n is answers[n] (the last repeats), and every
// request body is kept.
type recorder struct {
	mu      sync.Mutex
	bodies  []string
	answers []func(w http.ResponseWriter)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.bodies = append(rec.bodies, string(b))
	answer := rec.answers[min(len(rec.bodies), len(rec.answers))-1]
	rec.mu.Unlock()
	answer(w)
}

// requests returns the request bodies received so far.
func (rec *recorder) requests() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.bodies)
}

func status(code int, body string, hdr ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// dropConnection answers nothing: the connection just ends, as when a server crashes.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestSendRetriesWithTheSameClientID(t *testing.T) {
	msg := `{"message":{"room":"lobby","seq":7,"id":"x","client_id":"?","author":"a","body":"hi","ts":"2026-11-27T04:30:40Z"}}`
	rec := &recorder{answers: []func(http.ResponseWriter){
		status(500, `{"error":{"code":"internal","message":"internal error"}}`),
		status(429, `{"error":{"code":"rate_limited","message":"slow down"}}`, "Retry-After", "1"),
		dropConnection,
		status(502, `<html>bad gateway</html>`),
		status(201, msg),
	}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	m, err := fastClient(srv.URL).Send(testCtx(t), "lobby", "hi")
	if err != nil || m.Seq != 7 {
		t.Fatalf("Send = %+v, %v", m, err)
	}
	bodies := rec.requests()
	if len(bodies) != 5 {
		t.Fatalf("%d attempts; want 5", len(bodies))
	}
	var first struct {
		ClientID string `json:"client_id"`
	}
	json.Unmarshal([]byte(bodies[0]), &first)
	if !strings.HasPrefix(first.ClientID, "c-") {
		t.Fatalf("client_id %q", first.ClientID)
	}
	for i, b := range bodies {
		if b != bodies[0] {
			t.Errorf("attempt %d sent %s; want the same request as the first, %s", i+1, b, bodies[0])
		}
	}
}

func TestRetriesGiveUp(t *testing.T) {
	rec := &recorder{answers: []func(http.ResponseWriter){status(503, `{"error":{"code":"unavailable","message":"shutting down"}}`)}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := client.New(srv.URL, client.WithRetry(3, time.Millisecond, time.Millisecond))
	_, err := c.Send(testCtx(t), "lobby", "hi")
	wantCode(t, err, natter.EUNAVAILABLE)
	if n := len(rec.requests()); n != 3 {
		t.Fatalf("%d attempts; want 3", n)
	}
}

func TestUnsafeCallsRetryOnlyRefusals(t *testing.T) {
	room := `{"room":{"name":"ops","title":"Ops"}}`
	for _, tt := range []struct {
		name     string
		answers  []func(http.ResponseWriter)
		attempts int
		code     string
	}{
		{"500 may have created it", []func(http.ResponseWriter){status(500, `{"error":{"code":"internal","message":"internal error"}}`), status(201, room)}, 1, natter.EINTERNAL},
		{"lost answer may have created it", []func(http.ResponseWriter){dropConnection, status(201, room)}, 1, ""},
		{"503 did nothing", []func(http.ResponseWriter){status(503, `{"error":{"code":"unavailable","message":"busy"}}`), status(201, room)}, 2, ""},
		{"429 did nothing", []func(http.ResponseWriter){status(429, `{"error":{"code":"rate_limited","message":"busy"}}`, "Retry-After", "0"), status(201, room)}, 2, ""},
		{"conflict is final", []func(http.ResponseWriter){status(409, `{"error":{"code":"conflict","message":"exists"}}`), status(201, room)}, 1, natter.ECONFLICT},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{answers: tt.answers}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			_, err := fastClient(srv.URL).CreateRoom(testCtx(t), "ops", "Ops")
			if n := len(rec.requests()); n != tt.attempts {
				t.Errorf("%d attempts; want %d", n, tt.attempts)
			}
			switch {
			case tt.code != "":
				wantCode(t, err, tt.code)
			case tt.attempts == 1 && err == nil:
				t.Errorf("no error after a lost answer")
			case tt.attempts == 2 && err != nil:
				t.Errorf("error %v after the retry succeeded", err)
			}
		})
	}
}

func TestErrorsFromAnyBody(t *testing.T) {
	for _, tt := range []struct {
		answer  func(http.ResponseWriter)
		code    string
		message string
	}{
		{status(404, `{"error":{"code":"not_found","message":"no room named \"x\""}}`), natter.ENOTFOUND, `no room named "x"`},
		{status(413, `{"error":{"code":"too_large","message":"too long"}}`), natter.ETOOLARGE, "too long"},
		{status(401, `Unauthorized`), natter.EUNAUTHORIZED, "HTTP 401 Unauthorized"},
		{status(502, `<h1>Bad Gateway</h1>`), natter.EUNAVAILABLE, "HTTP 502 <h1>Bad Gateway</h1>"},
		{status(200, `not json`), natter.EINTERNAL, ""},
	} {
		srv := httptest.NewServer(&recorder{answers: []func(http.ResponseWriter){tt.answer}})
		c := client.New(srv.URL, client.WithRetry(1, 0, 0))
		_, err := c.Rooms(testCtx(t))
		srv.Close()
		var ne *natter.Error
		if !errors.As(err, &ne) || ne.Code != tt.code || (tt.message != "" && ne.Message != tt.message) {
			t.Errorf("error = %#v; want code %s message %q", err, tt.code, tt.message)
		}
	}
}

func TestContextStopsRetries(t *testing.T) {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(429)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := client.New(srv.URL).Send(ctx, "lobby", "hi")
		done <- err
	}()
	for attempts.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v; want context.Canceled while waiting out Retry-After", err)
	}
}

func TestBaseURLWithPathPrefix(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		io.WriteString(w, `{"rooms":[]}`)
	}))
	defer srv.Close()
	if _, err := client.New(srv.URL + "/natter/").Rooms(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if path != "/natter/api/rooms" {
		t.Fatalf("requested %q", path)
	}
	_, err := client.New("not a url").Rooms(testCtx(t))
	wantCode(t, err, natter.EINVALID)
}
