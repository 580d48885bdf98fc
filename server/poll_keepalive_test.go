package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"natter/app"
	"natter/server"
)

// dialRaw opens a plain TCP connection to ts for hand-written requests, closed at the end of
// the test.
func dialRaw(t *testing.T, ts *testServer) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	return conn, bufio.NewReader(conn)
}

// holdReadsUntilJoined makes each long-poll store read wait until n answers have joined one (or
// 10 s pass, as they would if no answer shared a read), so that sharing does not depend on timing.
func holdReadsUntilJoined(srv *server.Server, n int64) {
	server.SetPollReadHook(srv, func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if _, joined := server.PollAnswerCounts(srv); joined >= n {
				return
			}
		}
	})
}

// rawPoll writes one GET on conn and reads its answer with br.
func rawPoll(t *testing.T, conn net.Conn, br *bufio.Reader, token, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req := "GET " + path + " HTTP/1.1\r\nHost: natter\r\nAuthorization: Bearer " + token + "\r\n"
	for i := 0; i+1 < len(hdr); i += 2 {
		req += hdr[i] + ": " + hdr[i+1] + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, body
}

// TestLongPollKeepsTheConnection: a parked long-poll's connection is hijacked from net/http, yet
// once answered the client sends its next requests on the same connection.
func TestLongPollKeepsTheConnection(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	ts.mustPost(tok, "lobby", "one")
	conn, br := dialRaw(t, ts)

	// Woken by a message.
	type page struct {
		Messages []struct{ Seq int64 } `json:"messages"`
	}
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		resp, body := rawPoll(t, conn, br, tok, "/api/rooms/lobby/messages?after=1&wait=30")
		var p page
		json.Unmarshal(body, &p)
		if resp.StatusCode != 200 || resp.Close || len(p.Messages) != 1 || p.Messages[0].Seq != 2 {
			t.Errorf("woken poll: %s, close %v, %s", resp.Status, resp.Close, body)
		}
	}()
	parked(t, ts, 1)
	ts.mustPost(tok, "lobby", "two")
	<-answered
	if t.Failed() {
		return
	}

	// Parked again on the same connection, and answered empty when its wait ends.
	resp, body := rawPoll(t, conn, br, tok, "/api/rooms/lobby/messages?after=2&wait=0.2")
	var p page
	if err := json.Unmarshal(body, &p); err != nil || resp.StatusCode != 200 || resp.Close || len(p.Messages) != 0 {
		t.Fatalf("expired poll on the kept connection: %s, close %v, %s", resp.Status, resp.Close, body)
	}
	// And any other request after it.
	if resp, body := rawPoll(t, conn, br, tok, "/api/rooms"); resp.StatusCode != 200 {
		t.Fatalf("GET /api/rooms on the kept connection: %s %s", resp.Status, body)
	}
	if n := ts.Main.Server().ConnCount(); n != 0 {
		t.Fatalf("%d parked polls left", n)
	}
}

// TestKeptConnectionOutlivesTheAnswersWriteDeadline: a long-poll's answer is written under a
// write deadline, which net/http (with no WriteTimeout) never clears; the answer clears it before
// the connection goes back, or every answer on the connection after the deadline would fail.
func TestKeptConnectionOutlivesTheAnswersWriteDeadline(t *testing.T) {
	ts := startServer(t)
	const timeout = 50 * time.Millisecond
	server.SetPollWriteTimeout(ts.Main.Server(), timeout)
	tok := ts.signIn("alice")
	conn, br := dialRaw(t, ts)
	resp, body := rawPoll(t, conn, br, tok, "/api/rooms/lobby/messages?after=0&wait=0.1")
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("poll: %s, close %v, %s", resp.Status, resp.Close, body)
	}
	time.Sleep(4 * timeout) // the answer's deadline is well past
	if resp, body := rawPoll(t, conn, br, tok, "/api/rooms"); resp.StatusCode != 200 {
		t.Fatalf("GET /api/rooms on the kept connection: %s %s", resp.Status, body)
	}
}

// TestLongPollHonoursConnectionClose: a client that asks to close after the answer gets
// Connection: close, and the connection ends.
func TestLongPollHonoursConnectionClose(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	conn, br := dialRaw(t, ts)
	resp, body := rawPoll(t, conn, br, tok, "/api/rooms/lobby/messages?after=0&wait=0.2", "Connection", "close")
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("poll with Connection: close answered %s, close %v, %s", resp.Status, resp.Close, body)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("read after the answer = %v, want EOF", err)
	}
}

// TestShutdownClosesKeptConnections: net/http's Shutdown would wait 5 seconds for a kept
// long-poll connection's next request, as for any new connection; the listener closes it instead.
// The 3-second deadline is what net/http alone would overrun, not a speed goal.
func TestShutdownClosesKeptConnections(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	conn, br := dialRaw(t, ts)
	if resp, body := rawPoll(t, conn, br, tok, "/api/rooms/lobby/messages?after=0&wait=0.1"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("poll: %s, close %v, %s", resp.Status, resp.Close, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := ts.Main.Close(ctx)
	ts.Main = nil // closed, or failed to: either way not to be closed again
	if err != nil {
		t.Fatalf("Close with a kept long-poll connection: %v", err)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("read on the kept connection after shutdown = %v, want EOF", err)
	}
}

// TestWokenPollsShareOneRead: polls parked at the same cursor wake on the same message and are
// answered from one store read. The read waits until the others have joined it (or 10 s pass, as
// they would if each poll read on its own), so that the sharing does not depend on timing.
func TestWokenPollsShareOneRead(t *testing.T) {
	const polls = 20
	ts := startServer(t)
	srv := ts.Main.Server()
	holdReadsUntilJoined(srv, polls-1)
	tok := ts.signIn("alice")
	answers := make([]<-chan apiResponse, polls)
	for i := range answers {
		answers[i] = ts.doAsync("GET", "/api/rooms/lobby/messages?after=0&wait=30", tok, nil)
	}
	parked(t, ts, polls)
	posted := ts.mustPost(tok, "lobby", "for everyone")
	for i, a := range answers {
		r := <-a
		p := decodePage(t, r)
		if r.Status != 200 || len(p.Messages) != 1 || p.Messages[0].ID != posted.ID {
			t.Fatalf("poll %d answered %d %s", i, r.Status, r.Raw)
		}
	}
	if reads, joined := server.PollAnswerCounts(srv); reads != 1 || joined != polls-1 {
		t.Fatalf("%d polls made %d store reads (%d shared one); want 1", polls, reads, joined)
	}
}

// TestBehindPollsShareOneRead: long-polls whose cursor is behind the room are answered at once,
// and concurrent ones at the same cursor from one store read (the hook holds the read until the
// others have joined, or 10 s pass, as they would if each poll read on its own).
func TestBehindPollsShareOneRead(t *testing.T) {
	const polls = 20
	ts := startServer(t)
	srv := ts.Main.Server()
	tok := ts.signIn("alice")
	posted := ts.mustPost(tok, "lobby", "already here")
	holdReadsUntilJoined(srv, polls-1)
	answers := make([]<-chan apiResponse, polls)
	for i := range answers {
		answers[i] = ts.doAsync("GET", "/api/rooms/lobby/messages?after=0&wait=30", tok, nil)
	}
	for i, a := range answers {
		r := <-a
		p := decodePage(t, r)
		if r.Status != 200 || len(p.Messages) != 1 || p.Messages[0].ID != posted.ID || p.LastSeq != 1 {
			t.Fatalf("poll %d answered %d %s", i, r.Status, r.Raw)
		}
	}
	if reads, joined := server.PollAnswerCounts(srv); reads != 1 || joined != polls-1 {
		t.Fatalf("%d polls made %d store reads (%d shared one); want 1", polls, reads, joined)
	}
}

// TestPipelinedPollClosesItsConnection: a request sent right behind a long-poll, before its
// answer, sits in net/http's read buffer, which the parked poll does not keep. Handing the
// connection back would lose that request (its client would wait for ever), so the answer says
// Connection: close and the client sends it again on a new connection.
func TestPipelinedPollClosesItsConnection(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	conn, br := dialRaw(t, ts)
	get := func(path string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: natter\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
	}
	// Both requests in one write, so the second is in net/http's buffer when the first parks.
	if _, err := io.WriteString(conn, get("/api/rooms/lobby/messages?after=0&wait=0.2")+get("/api/rooms")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("poll with a request pipelined behind it answered %s, close %v, %s", resp.Status, resp.Close, body)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("read after the answer = %v, want EOF", err)
	}
}

// TestKeptConnectionWaitsTheIdleTimeout: after a long-poll's answer, the kept connection waits for
// the client's next request as long as any kept-alive connection does (IdleTimeout), not the
// much shorter time net/http gives a new connection to send its first header (ReadHeaderTimeout),
// which is what it would get if it went back to net/http at once. After IdleTimeout it is closed.
func TestKeptConnectionWaitsTheIdleTimeout(t *testing.T) {
	const headerTimeout, idle = 100 * time.Millisecond, 2 * time.Second
	ts := startServer(t, func(c *app.Config) {
		c.ReadHeaderTimeout = headerTimeout
		c.Server.IdleTimeout = idle
	})
	tok := ts.signIn("alice")
	conn, br := dialRaw(t, ts)
	for range 2 { // and again on the kept connection: its socket waits in the poller once more
		resp, body := rawPoll(t, conn, br, tok, "/api/rooms/lobby/messages?after=0&wait=0.05")
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("poll: %s, close %v, %s", resp.Status, resp.Close, body)
		}
		time.Sleep(5 * headerTimeout) // a pause between polls, well past the header timeout
	}
	if resp, body := rawPoll(t, conn, br, tok, "/api/rooms"); resp.StatusCode != 200 {
		t.Fatalf("GET /api/rooms on the kept connection: %s %s", resp.Status, body)
	}

	// A connection that sends nothing more is closed once IdleTimeout has passed.
	conn2, br2 := dialRaw(t, ts)
	if resp, body := rawPoll(t, conn2, br2, tok, "/api/rooms/lobby/messages?after=0&wait=0.05"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("poll: %s, close %v, %s", resp.Status, resp.Close, body)
	}
	conn2.SetReadDeadline(time.Now().Add(idle + 10*time.Second))
	if _, err := br2.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("read on a kept connection left idle = %v, want EOF once IdleTimeout passed", err)
	}
}
