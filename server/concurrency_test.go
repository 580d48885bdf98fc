package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"natter"
	"natter/ws"
)

// TestConcurrentTransportsSeeOneLog is the seed's lesson as a test: many writers (WebSocket and
// POST) and many readers (four per transport) share one room; readers drop their connections at
// random and resume from their last seq. Every reader must see exactly seq 1..N, each once, in
// order, with the stored bodies. Readers speak the raw protocol and check every delivery as it
// arrives, so a duplicate or a gap from the server (for instance if subscribe stopped merging the
// backlog with live messages) fails the test.
func TestConcurrentTransportsSeeOneLog(t *testing.T) {
	ts := startServer(t)
	const (
		wsWriters   = 4
		postWriters = 4
		perWriter   = 60
		total       = (wsWriters + postWriters) * perWriter
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var readers sync.WaitGroup
	results := make([]*readerLog, 0, 12)
	var mu sync.Mutex
	startReader := func(name string, run func(ctx context.Context, log *readerLog) error) {
		log := &readerLog{name: name, token: ts.signIn(name), rng: rand.New(rand.NewPCG(uint64(len(results)), 7))}
		mu.Lock()
		results = append(results, log)
		mu.Unlock()
		readers.Add(1)
		go func() {
			defer readers.Done()
			for log.last < total && ctx.Err() == nil {
				if err := run(ctx, log); err != nil {
					log.fail(err)
					return
				}
				log.reconnects++
			}
		}()
	}
	for i := range 4 {
		startReader(fmt.Sprintf("ws-reader-%d", i), func(ctx context.Context, log *readerLog) error { return readWS(ctx, ts, log, total) })
		startReader(fmt.Sprintf("sse-reader-%d", i), func(ctx context.Context, log *readerLog) error { return readSSE(ctx, ts, log, total) })
		startReader(fmt.Sprintf("poll-reader-%d", i), func(ctx context.Context, log *readerLog) error { return readPoll(ctx, ts, log, total) })
	}

	var writers sync.WaitGroup
	errs := make(chan error, wsWriters+postWriters)
	for w := range wsWriters + postWriters {
		writers.Add(1)
		go func() {
			defer writers.Done()
			name := fmt.Sprintf("writer-%d", w)
			tok := ts.signIn(name)
			var err error
			if w < wsWriters {
				err = writeWS(ctx, ts, tok, name, perWriter)
			} else {
				err = writePOST(ts, tok, name, perWriter)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	writers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	readers.Wait()

	stored := ts.do("GET", fmt.Sprintf("/api/rooms/lobby/messages?after=0&limit=%d", 1000), ts.signIn("checker"), nil)
	var page struct {
		Messages []natter.Message `json:"messages"`
	}
	if err := json.Unmarshal(stored.Raw, &page); err != nil || len(page.Messages) != total {
		t.Fatalf("store holds %d messages (err %v), want %d", len(page.Messages), err, total)
	}
	// Each writer sends one message at a time, so its messages must be stored in its order.
	nextOf := map[string]int{}
	for i, m := range page.Messages {
		if m.Seq != int64(i+1) {
			t.Fatalf("stored message %d has seq %d", i, m.Seq)
		}
		want := fmt.Sprintf("%s #%d", m.Author, nextOf[m.Author])
		if m.Body != want {
			t.Fatalf("seq %d: body %q, want %q (a writer's messages out of order)", m.Seq, m.Body, want)
		}
		nextOf[m.Author]++
	}
	reconnects := 0
	for _, r := range results {
		if r.err != nil {
			t.Errorf("%s: %v", r.name, r.err)
			continue
		}
		if len(r.bodies) != total {
			t.Errorf("%s saw %d messages, want %d", r.name, len(r.bodies), total)
			continue
		}
		for i, body := range r.bodies {
			if body != page.Messages[i].Body {
				t.Errorf("%s: seq %d body %q, stored %q", r.name, i+1, body, page.Messages[i].Body)
				break
			}
		}
		reconnects += r.reconnects
	}
	if reconnects < len(results) {
		t.Errorf("readers reconnected only %d times: the test did not exercise resuming", reconnects)
	}
}

// readerLog is what one reader has seen, checked as it arrives.
type readerLog struct {
	name       string
	token      string
	rng        *rand.Rand
	last       int64
	bodies     []string
	reconnects int
	err        error
}

func (l *readerLog) fail(err error) { l.err = err }

// accept records one delivery; anything but the next seq is a server bug.
func (l *readerLog) accept(m natter.Message) error {
	if m.Seq != l.last+1 {
		return fmt.Errorf("got seq %d after %d: the server delivered a gap or a duplicate", m.Seq, l.last)
	}
	l.last = m.Seq
	l.bodies = append(l.bodies, m.Body)
	return nil
}

// dropAfter picks how many deliveries a connection takes before the reader hangs up.
func (l *readerLog) dropAfter() int { return 1 + l.rng.IntN(40) }

func wsURL(ts *testServer) string { return "ws://" + ts.Addr + "/ws" }

// dialRaw opens a raw WebSocket as the holder of token, closed when the test ends.
func (ts *testServer) dialRaw(ctx context.Context, token string) *ws.Conn {
	ts.t.Helper()
	conn, _, err := ws.Dial(ctx, wsURL(ts), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		ts.t.Fatalf("dial %s: %v", wsURL(ts), err)
	}
	ts.t.Cleanup(func() { conn.Close() })
	return conn
}

func readWS(ctx context.Context, ts *testServer, log *readerLog, total int64) error {
	conn, _, err := ws.Dial(ctx, wsURL(ts), http.Header{"Authorization": {"Bearer " + log.token}})
	if err != nil {
		return err
	}
	defer conn.Close()
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "room": "lobby", "after": log.last})
	if err := conn.WriteMessage(ws.OpText, sub); err != nil {
		return err
	}
	budget := log.dropAfter()
	for log.last < total {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		var f struct {
			Type    string          `json:"type"`
			Message *natter.Message `json:"message"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			return err
		}
		switch f.Type {
		case "message":
			if err := log.accept(*f.Message); err != nil {
				return err
			}
			if budget--; budget == 0 {
				return nil // hang up mid-stream; the loop resumes with after=last
			}
		case "error":
			return fmt.Errorf("error frame: %s", data)
		}
	}
	return nil
}

func readSSE(ctx context.Context, ts *testServer, log *readerLog, total int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/rooms/lobby/events", nil)
	req.Header.Set("Authorization", "Bearer "+log.token)
	req.Header.Set("Last-Event-ID", strconv.FormatInt(log.last, 10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("events: status %d", resp.StatusCode)
	}
	budget := log.dropAfter()
	br := bufio.NewReader(resp.Body)
	var event, data string
	for log.last < total {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if event == "message" {
				var m natter.Message
				if err := json.Unmarshal([]byte(data), &m); err != nil {
					return err
				}
				if err := log.accept(m); err != nil {
					return err
				}
				if budget--; budget == 0 {
					return nil
				}
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
	return nil
}

func readPoll(ctx context.Context, ts *testServer, log *readerLog, total int64) error {
	for polls := log.dropAfter(); polls > 0 && log.last < total; polls-- {
		limit := 1 + log.rng.IntN(25)
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/rooms/lobby/messages?after=%d&limit=%d&wait=10", ts.URL, log.last, limit), nil)
		req.Header.Set("Authorization", "Bearer "+log.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var page struct {
			Messages []natter.Message `json:"messages"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("poll: status %d, %v", resp.StatusCode, err)
		}
		if len(page.Messages) > limit {
			return fmt.Errorf("poll returned %d messages for limit %d", len(page.Messages), limit)
		}
		for _, m := range page.Messages {
			if err := log.accept(m); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeWS(ctx context.Context, ts *testServer, token, name string, n int) error {
	conn, _, err := ws.Dial(ctx, wsURL(ts), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return err
	}
	defer conn.Close()
	for i := range n {
		frame, _ := json.Marshal(map[string]string{"type": "send", "room": "lobby", "body": fmt.Sprintf("%s #%d", name, i), "client_id": fmt.Sprintf("%s-%d", name, i)})
		if err := conn.WriteMessage(ws.OpText, frame); err != nil {
			return err
		}
		for acked := false; !acked; {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return err
			}
			var f struct{ Type, ClientID string }
			json.Unmarshal(data, &f)
			if f.Type == "error" {
				return fmt.Errorf("send: %s", data)
			}
			acked = f.Type == "ack"
		}
	}
	return nil
}

func writePOST(ts *testServer, token, name string, n int) error {
	for i := range n {
		r := ts.do("POST", "/api/rooms/lobby/messages", token, map[string]string{"body": fmt.Sprintf("%s #%d", name, i), "client_id": fmt.Sprintf("%s-%d", name, i)})
		if r.Status != http.StatusCreated {
			return fmt.Errorf("post: %d %s", r.Status, r.Raw)
		}
	}
	return nil
}
