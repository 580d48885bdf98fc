package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"natter"
)

// sseEvent is one event of a text/event-stream, with the lines it was made of.
type sseEvent struct {
	ID, Event, Data string
	lines           []string
}

// sseStream reads an event stream in a goroutine.
type sseStream struct {
	t      testing.TB
	resp   *http.Response
	events chan sseEvent
	err    error // why the stream ended; set before events is closed
}

// openSSE GETs an event stream (with a bearer token unless tok is "") that must answer 200
// text/event-stream; header adds name/value pairs.
func (ts *testServer) openSSE(path, tok string, header ...string) *sseStream {
	ts.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ts.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", ts.URL+path, nil)
	if err != nil {
		ts.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ts.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		ts.t.Fatalf("GET %s: Content-Type %q, want text/event-stream", path, ct)
	}
	s := &sseStream{t: ts.t, resp: resp, events: make(chan sseEvent, 4096)}
	go s.readLoop()
	return s
}

// readLoop parses the stream as the HTML standard's event-stream format: "field: value" lines,
// comments starting with a colon, a blank line ending each event.
func (s *sseStream) readLoop() {
	defer close(s.events)
	defer s.resp.Body.Close()
	br := bufio.NewReader(s.resp.Body)
	var ev sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			s.err = err
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if ev.lines != nil {
				s.events <- ev
			}
			ev = sseEvent{}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment: a keepalive
		}
		ev.lines = append(ev.lines, line)
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.ID = value
		case "event":
			ev.Event = value
		case "data":
			if ev.Data != "" {
				ev.Data += "\n"
			}
			ev.Data += value
		}
	}
}

// next returns the next event, failing if none comes or the stream ends.
func (s *sseStream) next() sseEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatalf("event stream ended: %v", s.err)
		}
		return ev
	case <-time.After(guard):
		s.t.Fatalf("no event within %v", guard)
	}
	panic("unreachable")
}

// nextMessage returns the next message event, checking its exact form: "id: <seq>",
// "event: message" and "data: <the message as JSON>", in that order.
func (s *sseStream) nextMessage() natter.Message {
	s.t.Helper()
	for {
		ev := s.next()
		if ev.Event != "message" {
			continue
		}
		if len(ev.lines) != 3 || !strings.HasPrefix(ev.lines[0], "id: ") || ev.lines[1] != "event: message" || !strings.HasPrefix(ev.lines[2], "data: {") {
			s.t.Fatalf("message event is not id/event/data lines: %q", ev.lines)
		}
		m := checkMessageJSON(s.t, []byte(ev.Data))
		if ev.ID != fmt.Sprint(m.Seq) {
			s.t.Fatalf("event id %q for message seq %d", ev.ID, m.Seq)
		}
		return m
	}
}

// waitSubscribed skips to the "subscribed" event, after which the stream is live.
func (s *sseStream) waitSubscribed() {
	s.t.Helper()
	for {
		if ev := s.next(); ev.Event == "subscribed" {
			return
		}
	}
}

// ended waits for the stream to end, skipping events, and returns how it ended.
func (s *sseStream) ended() error {
	s.t.Helper()
	timeout := time.After(guard)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return s.err
			}
		case <-timeout:
			s.t.Fatalf("stream still open after %v", guard)
		}
	}
}

func TestSSEResumesFromLastEventIDOrAfter(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	ts.fill(tok, "lobby", 3)

	fromHeader := ts.openSSE("/api/rooms/lobby/events", tok, "Last-Event-ID", "1")
	fromQuery := ts.openSSE("/api/rooms/lobby/events?after=2", tok)
	fromZero := ts.openSSE("/api/rooms/lobby/events?after=0", tok)
	// A browser's EventSource reconnects to the same URL with Last-Event-ID: the header wins.
	reconnect := ts.openSSE("/api/rooms/lobby/events?after=0", tok, "Last-Event-ID", "3")
	atEnd := ts.openSSE("/api/rooms/lobby/events", tok)
	for _, s := range []*sseStream{fromHeader, fromQuery, fromZero, reconnect, atEnd} {
		s.waitSubscribed()
	}
	live := ts.mustPost(tok, "lobby", "live")

	for _, c := range []struct {
		name  string
		s     *sseStream
		first int64
	}{
		{"Last-Event-ID: 1", fromHeader, 2},
		{"?after=2", fromQuery, 3},
		{"?after=0", fromZero, 1},
		{"?after=0 with Last-Event-ID: 3", reconnect, 4},
		{"no position", atEnd, 4},
	} {
		for seq := c.first; seq <= live.Seq; seq++ {
			m := c.s.nextMessage()
			if m.Seq != seq {
				t.Fatalf("%s: got seq %d, want %d", c.name, m.Seq, seq)
			}
			if seq == live.Seq && (m.ID != live.ID || m.Body != "live" || m.Author != "alice") {
				t.Fatalf("%s: live event %+v, posted %+v", c.name, m, live)
			}
		}
	}
}

// TestSSEBacklogThenLiveHasNoGap opens streams from the start of the log while messages are being
// stored, so that the replay and the live feed overlap: every stream must see each seq once, in
// order.
func TestSSEBacklogThenLiveHasNoGap(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	const n = 400
	filled := make(chan error, 1)
	go func() {
		_, err := ts.fillErr(ts.signIn("writer"), "lobby", n)
		filled <- err
	}()
	var streams []*sseStream
	for _, at := range []int64{1, 100, 200} {
		waitFor(t, fmt.Sprintf("seq %d", at), func() bool { return ts.lastSeq(tok, "lobby") >= at })
		streams = append(streams, ts.openSSE("/api/rooms/lobby/events?after=0", tok))
	}
	for i, s := range streams {
		for seq := int64(1); seq <= n; seq++ {
			if m := s.nextMessage(); m.Seq != seq || m.Body != fmt.Sprintf("fill %d", seq-1) {
				t.Fatalf("stream %d: got seq %d %q, want seq %d", i, m.Seq, m.Body, seq)
			}
		}
	}
	if err := <-filled; err != nil {
		t.Fatal(err)
	}
}

func TestSSEEndsOnShutdown(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	s := ts.openSSE("/api/rooms/lobby/events", tok)
	s.waitSubscribed()
	ts.close()
	if err := s.ended(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("stream ended with %v, want the end of the body", err)
	}
}
