package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"natter/internal/park"
	"natter/server"
	"natter/ws"
)

// checkIdleParked opens n idle connections with open, parked and (to tell the two apart) with
// parking off. Parked, they add no goroutine and each has an armed waiter; unparked, each adds
// at least one goroutine. Then between (if set) runs with the connections open, half of them
// hang up, which ends them at once, and shutdown forgets the rest.
func checkIdleParked(t *testing.T, n int, open func(ts *testServer, tok string) io.Closer, between func(t *testing.T, conns []io.Closer, parked bool)) {
	t.Helper()
	if !park.Supported {
		t.Skip("parked connections need epoll (Linux)")
	}
	for _, parked := range []bool{true, false} {
		t.Run(map[bool]string{true: "parked", false: "goroutine each"}[parked], func(t *testing.T) {
			ts := startServer(t)
			srv := ts.Main.Server()
			server.SetParking(srv, parked)
			server.SetBusyGap(srv, 0) // a WebSocket parks as soon as it has read everything
			tok := ts.signIn("alice")
			runtime.GC()
			baseG, baseArmed, baseConns := runtime.NumGoroutine(), park.Armed(), srv.ConnCount()
			conns := make([]io.Closer, n)
			for i := range conns {
				conns[i] = open(ts, tok)
				t.Cleanup(func() { conns[i].Close() })
			}
			waitFor(t, "every connection open", func() bool { return srv.ConnCount() == baseConns+n })
			armed := func(want int) func() bool {
				if !parked {
					want = 0
				}
				return func() bool { return park.Armed() == baseArmed+want }
			}
			waitFor(t, "every connection parked", armed(n))
			extra := runtime.NumGoroutine() - baseG
			if parked && extra > n/10 {
				t.Fatalf("%d idle connections added %d goroutines; parked, they should add none", n, extra)
			}
			if !parked && extra < n {
				t.Fatalf("%d idle connections added %d goroutines; unparked, each has its own", n, extra)
			}
			if between != nil {
				between(t, conns, parked)
				waitFor(t, "every connection parked again", armed(n))
			}
			for _, c := range conns[:n/2] {
				c.Close()
			}
			waitFor(t, "the connections that hung up gone", func() bool { return srv.ConnCount() == baseConns+n/2 })
			waitFor(t, "the connections that hung up unparked", armed(n/2))
			ts.close()
			waitFor(t, "no connection parked after shutdown", func() bool { return park.Armed() == baseArmed })
		})
	}
}

// TestIdleWebSocketsHoldNoGoroutine: a WebSocket that has nothing to read is parked, with no
// goroutine (and so no stack) of its own; bytes that arrive start a reader again, and the
// connection's end, from either side, forgets it.
func TestIdleWebSocketsHoldNoGoroutine(t *testing.T) {
	ping := func(t testing.TB, c *ws.Conn) {
		t.Helper()
		if err := c.WriteMessage(ws.OpText, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		_, data, err := c.ReadMessage()
		var f struct{ Type string }
		if err != nil || json.Unmarshal(data, &f) != nil || f.Type != "pong" {
			t.Fatalf("ping: got %q, %v; want a pong", data, err)
		}
	}
	open := func(ts *testServer, tok string) io.Closer {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		c, _, err := ws.Dial(ctx, "ws://"+ts.Addr+"/ws", http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			ts.t.Fatal(err)
		}
		ping(ts.t, c) // the raw client reads in this goroutine: it adds none
		return c
	}
	// Parked connections still answer, and park again.
	pingSome := func(t *testing.T, conns []io.Closer, parked bool) {
		for _, c := range conns[:20] {
			ping(t, c.(*ws.Conn))
		}
	}
	checkIdleParked(t, 200, open, pingSome)
}

// TestIdleSSEStreamsHoldNoGoroutine: an event stream waits for its client's hang-up parked, with
// no goroutine; the hang-up still ends it at once.
func TestIdleSSEStreamsHoldNoGoroutine(t *testing.T) {
	open := func(ts *testServer, tok string) io.Closer {
		c, err := net.Dial("tcp", ts.Addr)
		if err != nil {
			ts.t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /api/rooms/lobby/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", ts.Addr, tok)
		c.SetReadDeadline(time.Now().Add(guard))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			ts.t.Fatalf("event stream: %v %v", resp, err)
		}
		return c
	}
	checkIdleParked(t, 100, open, nil)
}

// TestParkRefusedFallsBack: when the poller refuses to park a connection (epoll's limit on
// watched sockets, say), the WebSocket reads on with a goroutine and the event stream watches
// with one, both working as before, and the server says so once in its log.
func TestParkRefusedFallsBack(t *testing.T) {
	if !park.Supported {
		t.Skip("parked connections need epoll (Linux)")
	}
	ts, logs := startServerLogged(t)
	restore := park.FailArms(errors.New("no room to watch another socket"))
	defer restore()
	tok := ts.signIn("alice")

	var clients []*wsClient
	for range 3 {
		c := ts.dialWS(tok)
		c.subscribe("lobby")
		clients = append(clients, c)
	}
	sse := ts.openSSE("/api/rooms/lobby/events", tok)
	msg := ts.mustPost(tok, "lobby", "still here")
	for i, c := range clients {
		if m := c.nextExcept("presence").msg(t); m.Seq != msg.Seq {
			t.Fatalf("WebSocket %d got message %d, want %d", i, m.Seq, msg.Seq)
		}
		c.send(map[string]string{"type": "ping"})
		if f := c.nextExcept("presence"); f.Type != "pong" {
			t.Fatalf("WebSocket %d got %s, want a pong", i, f)
		}
	}
	if m := sse.nextMessage(); m.Seq != msg.Seq {
		t.Fatalf("event stream got message %d, want %d", m.Seq, msg.Seq)
	}
	if n := strings.Count(logs.String(), "cannot park idle connections"); n != 1 {
		t.Fatalf("the refusal logged %d times, want once:\n%s", n, logs.String())
	}
	// The goroutines that stand in for the poller notice a hang-up at once, as it would (the
	// next keepalive write, which would notice it too, is 20 s away).
	srv := ts.Main.Server()
	sse.resp.Body.Close()
	waitFor(t, "the event stream that hung up gone", func() bool { return srv.ConnCount() == len(clients) })
	for _, c := range clients {
		c.conn.Close()
	}
	waitFor(t, "the WebSockets that hung up gone", func() bool { return srv.ConnCount() == 0 })
}
