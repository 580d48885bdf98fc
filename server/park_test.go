package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"natter/internal/park"
	"natter/server"
	"natter/ws"
)

// TestIdleWebSocketsHoldNoGoroutine: a WebSocket that has nothing to read is parked, with no
// goroutine (and so no stack) of its own; bytes that arrive start a reader again, and the
// connection's end, from either side, forgets it. With parking off, each connection keeps its
// reader goroutine, which the test also checks so that it can tell the two apart.
func TestIdleWebSocketsHoldNoGoroutine(t *testing.T) {
	if !park.Supported {
		t.Skip("parked WebSocket readers need epoll (Linux)")
	}
	const n = 200
	for _, mode := range []struct {
		name string
		park bool
	}{{"parked", true}, {"goroutine each", false}} {
		t.Run(mode.name, func(t *testing.T) {
			ts := startServer(t)
			srv := ts.Main.Server()
			server.SetParking(srv, mode.park)
			server.SetBusyGap(srv, 0) // every connection parks as soon as it has read everything
			tok := ts.signIn("alice")
			h := http.Header{"Authorization": {"Bearer " + tok}}
			ping := func(c *ws.Conn) {
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

			runtime.GC()
			baseG, baseArmed, baseConns := runtime.NumGoroutine(), park.Armed(), srv.ConnCount()
			conns := make([]*ws.Conn, n)
			for i := range conns {
				ctx, cancel := context.WithTimeout(context.Background(), guard)
				c, _, err := ws.Dial(ctx, "ws://"+ts.Addr+"/ws", h)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				conns[i] = c
				ping(c) // the raw client reads in this goroutine: it adds none
			}
			armedWant := baseArmed
			if mode.park {
				armedWant += n
			}
			waitFor(t, "every idle connection parked", func() bool { return park.Armed() == armedWant })
			extra := runtime.NumGoroutine() - baseG
			if mode.park && extra > n/10 {
				t.Fatalf("%d idle WebSockets added %d goroutines; parked, they should add none", n, extra)
			}
			if !mode.park && extra < n {
				t.Fatalf("%d idle WebSockets added %d goroutines; unparked, each has its reader", n, extra)
			}

			// Parked connections still answer, and park again.
			for _, c := range conns[:20] {
				ping(c)
			}
			waitFor(t, "the pinged connections parked again", func() bool { return park.Armed() == armedWant })

			// Half end from the client: their readers wake to the close and forget them.
			for _, c := range conns[:n/2] {
				c.Close()
			}
			waitFor(t, "the closed connections gone", func() bool { return srv.ConnCount() == baseConns+n/2 })
			if mode.park {
				waitFor(t, "the closed connections unparked", func() bool { return park.Armed() == baseArmed+n/2 })
			}
			// The rest end from the server's side (shutdown), while parked.
			ts.close()
			waitFor(t, "no connection parked after shutdown", func() bool { return park.Armed() == baseArmed })
			for _, c := range conns[n/2:] {
				c.Close()
			}
		})
	}
}

// TestIdleSSEStreamsHoldNoGoroutine: an event stream waits for its client's hang-up parked, with
// no goroutine; the hang-up still ends it at once, and shutdown forgets the rest.
func TestIdleSSEStreamsHoldNoGoroutine(t *testing.T) {
	if !park.Supported {
		t.Skip("parked streams need epoll (Linux)")
	}
	const n = 100
	for _, mode := range []struct {
		name string
		park bool
	}{{"parked", true}, {"goroutine each", false}} {
		t.Run(mode.name, func(t *testing.T) {
			ts := startServer(t)
			srv := ts.Main.Server()
			server.SetParking(srv, mode.park)
			tok := ts.signIn("alice")
			runtime.GC()
			baseG, baseArmed, baseConns := runtime.NumGoroutine(), park.Armed(), srv.ConnCount()
			conns := make([]net.Conn, n)
			for i := range conns {
				c, err := net.Dial("tcp", ts.Addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				fmt.Fprintf(c, "GET /api/rooms/lobby/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", ts.Addr, tok)
				c.SetReadDeadline(time.Now().Add(guard))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("stream %d: %v %v", i, resp, err)
				}
				conns[i] = c
			}
			waitFor(t, "every stream open", func() bool { return srv.ConnCount() == baseConns+n })
			armedWant := baseArmed
			if mode.park {
				armedWant += n
			}
			waitFor(t, "every stream parked", func() bool { return park.Armed() == armedWant })
			extra := runtime.NumGoroutine() - baseG
			if mode.park && extra > n/10 {
				t.Fatalf("%d idle event streams added %d goroutines; parked, they should add none", n, extra)
			}
			if !mode.park && extra < n {
				t.Fatalf("%d idle event streams added %d goroutines; unparked, each has its watcher", n, extra)
			}
			for _, c := range conns[:n/2] {
				c.Close()
			}
			waitFor(t, "the hung-up streams gone", func() bool { return srv.ConnCount() == baseConns+n/2 })
			if mode.park {
				waitFor(t, "the hung-up streams unparked", func() bool { return park.Armed() == baseArmed+n/2 })
			}
			ts.close()
			waitFor(t, "no stream parked after shutdown", func() bool { return park.Armed() == baseArmed })
		})
	}
}
