package server_test

import (
	"net/http"
	"testing"
)

// nextSSE returns the next event of s whose type is not listed.
func nextSSE(s *sseStream, skip ...string) sseEvent {
	s.t.Helper()
	for {
		ev := s.next()
		skipped := false
		for _, t := range skip {
			skipped = skipped || ev.Event == t
		}
		if !skipped {
			return ev
		}
	}
}

// TestTyping: a typing notice (a WebSocket frame, or POST /typing) reaches the room's other
// subscribers, over WebSocket and SSE, and not the typer's own connections; a second one within
// TypingEvery is dropped without error; typing in a room the connection is not subscribed to is
// refused, and in a room that does not exist is 404.
func TestTyping(t *testing.T) {
	ts := startServer(t)
	alice, bob, carol := ts.signIn("alice"), ts.signIn("bob"), ts.signIn("carol")
	aliceWS, bobWS, bobPhone := ts.dialWS(alice), ts.dialWS(bob), ts.dialWS(bob)
	aliceWS.subscribe("lobby")
	bobWS.subscribe("lobby")
	bobPhone.subscribe("lobby")
	carolSSE := ts.openSSE("/api/rooms/lobby/events", carol)
	carolSSE.waitSubscribed()

	bobWS.send(map[string]string{"type": "typing", "room": "lobby"})
	if f := aliceWS.nextExcept("join"); f.Type != "typing" || f.User != "bob" || f.Room == nil || *f.Room != "lobby" {
		t.Fatalf("alice got %s, want bob typing in the lobby", f)
	}
	if ev := nextSSE(carolSSE, "join", "presence"); ev.Event != "typing" || ev.Data != `{"type":"typing","room":"lobby","user":"bob"}` {
		t.Fatalf("carol's stream got %q %q, want a typing event for bob", ev.Event, ev.Data)
	}
	// Again at once: dropped. Then a message, which is the next thing everyone sees.
	bobWS.send(map[string]string{"type": "typing", "room": "lobby"})
	bobWS.sendMessage("lobby", "hello", "c-1")
	if f := aliceWS.nextExcept("join"); f.Type != "message" {
		t.Fatalf("alice got %s after bob's second notice, want his message (the notice dropped)", f)
	}
	if f := bobPhone.nextExcept("join"); f.Type != "message" {
		t.Fatalf("bob's other connection got %s, want only the message (no notice of his own typing)", f)
	}
	if ev := nextSSE(carolSSE, "join"); ev.Event != "message" {
		t.Fatalf("carol's stream got %q after bob's second notice, want the message", ev.Event)
	}

	// Over HTTP, for clients that send that way.
	if r := ts.do("POST", "/api/rooms/lobby/typing", carol, nil); r.Status != http.StatusNoContent {
		t.Fatalf("POST typing: %d %s", r.Status, r.Raw)
	}
	if f := aliceWS.next(); f.Type != "typing" || f.User != "carol" {
		t.Fatalf("alice got %s, want carol typing", f)
	}
	if r := ts.do("POST", "/api/rooms/lobby/typing", carol, nil); r.Status != http.StatusNoContent {
		t.Fatalf("a second POST typing at once: %d %s, want 204 (dropped quietly)", r.Status, r.Raw)
	}
	checkError(t, ts.do("POST", "/api/rooms/nowhere/typing", carol, nil), http.StatusNotFound, "not_found")

	// Not subscribed to the room: refused, with the room as ref.
	bobWS.send(map[string]string{"type": "typing", "room": "elsewhere"})
	if f := bobWS.nextExcept("message", "typing"); f.Type != "error" || f.Code != "invalid" || f.Ref == nil || *f.Ref != "elsewhere" {
		t.Fatalf("typing outside a subscription: %s, want an invalid error with ref elsewhere", f)
	}
	// Nothing more reached alice: the next thing she sees is the next message.
	ts.mustPost(carol, "lobby", "after the notices")
	if f := aliceWS.next(); f.Type != "message" {
		t.Fatalf("alice got %s, want the message (no further notice)", f)
	}
}
