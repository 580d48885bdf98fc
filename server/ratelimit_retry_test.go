package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"natter/app"
)

// slowRefill sets a rate limit whose burst is 2 and whose next token comes after 1,000 s, so that
// a test at the limit stays there however slowly it runs.
func slowRefill(c *app.Config) { c.Server.SendRate, c.Server.SendBurst = 0.001, 2 }

// TestRateLimitedRetryGetsOriginal: a retry of a stored client_id is answered with the original
// message even when the sender is at the rate limit, since its message is stored and waiting
// would get it nothing; a new message at the limit is still refused and stored nowhere.
func TestRateLimitedRetryGetsOriginal(t *testing.T) {
	ts := startServer(t, slowRefill)
	alice := ts.signIn("alice")
	first := ts.post(alice, "lobby", "first", "c-1")
	if first.Status != http.StatusCreated {
		t.Fatalf("first send: %d %s", first.Status, first.Raw)
	}
	orig := messageOf(t, first)
	if r := ts.post(alice, "lobby", "second", "c-2"); r.Status != http.StatusCreated {
		t.Fatalf("second send: %d %s", r.Status, r.Raw)
	}
	checkError(t, ts.post(alice, "lobby", "third", "c-3"), http.StatusTooManyRequests, "rate_limited")

	// The lost-ack retry of the first message: 200 and the original, nothing stored.
	r := ts.post(alice, "lobby", "first", "c-1")
	if r.Status != http.StatusOK {
		t.Fatalf("retry of a stored client_id at the rate limit: %d %s, want 200 with the original", r.Status, r.Raw)
	}
	if m := messageOf(t, r); m.ID != orig.ID || m.Seq != orig.Seq || m.Body != "first" || m.ClientID != "c-1" || m.Author != "alice" {
		t.Fatalf("retry answered %+v, want the original %+v", m, orig)
	}
	if n := ts.lastSeq(alice, "lobby"); n != 2 {
		t.Fatalf("last_seq %d after the retry, want 2", n)
	}

	// Still at the limit: a client_id not stored (the refused one included), the same client_id
	// in another room, and a send without client_id are refused, and store nothing.
	checkError(t, ts.post(alice, "lobby", "third", "c-3"), http.StatusTooManyRequests, "rate_limited")
	checkError(t, ts.post(alice, "lobby", "new", "c-new"), http.StatusTooManyRequests, "rate_limited")
	checkError(t, ts.post(alice, "lobby", "no key", ""), http.StatusTooManyRequests, "rate_limited")
	if r := ts.do("POST", "/api/rooms", alice, map[string]string{"name": "ops"}); r.Status != http.StatusCreated {
		t.Fatalf("create ops: %d %s", r.Status, r.Raw)
	}
	checkError(t, ts.post(alice, "ops", "first", "c-1"), http.StatusTooManyRequests, "rate_limited")
	// Validation still comes first, and an unknown room is no retry.
	checkError(t, ts.post(alice, "lobby", "", "c-1"), http.StatusBadRequest, "invalid")
	checkError(t, ts.post(alice, "nope", "first", "c-1"), http.StatusTooManyRequests, "rate_limited")
	if n := ts.lastSeq(alice, "lobby"); n != 2 {
		t.Fatalf("last_seq %d: a refused send was stored", n)
	}
	if n := ts.lastSeq(alice, "ops"); n != 0 {
		t.Fatalf("ops last_seq %d: a refused send was stored", n)
	}

	// Another author's client_id is not alice's retry.
	bob := ts.signIn("bob")
	if r := ts.post(bob, "lobby", "bob's", "c-1"); r.Status != http.StatusCreated {
		t.Fatalf("bob's first send with c-1: %d %s", r.Status, r.Raw)
	}
}

// TestRateLimitedRetryGetsOriginalWS is the same over a WebSocket send frame: the retry of a
// stored client_id at the limit gets the ack of a repeat, created false with the original seq.
func TestRateLimitedRetryGetsOriginalWS(t *testing.T) {
	ts := startServer(t, slowRefill)
	tok := ts.signIn("bob")
	bob := ts.dialWS(tok)
	ts.mustPost(ts.signIn("alice"), "lobby", "someone else's") // so that seq and count differ
	b1 := bob.sendMessage("lobby", "b1", "b1")
	bob.sendMessage("lobby", "b2", "b2")
	bob.send(map[string]string{"type": "send", "room": "lobby", "body": "b3", "client_id": "b3"})
	if f := bob.nextExcept("message", "presence", "join", "leave"); f.Type != "error" || f.Code != "rate_limited" {
		t.Fatalf("third send: %s, want rate_limited", f)
	}

	f := bob.sendMessage("lobby", "b1", "b1")
	var ack struct {
		Seq     int64  `json:"seq"`
		Room    string `json:"room"`
		Created *bool  `json:"created"`
	}
	if err := json.Unmarshal(f.raw, &ack); err != nil {
		t.Fatal(err)
	}
	if ack.Created == nil || *ack.Created || ack.Seq != *b1.Seq || ack.Room != "lobby" {
		t.Fatalf("retry of b1 at the rate limit: %s, want an ack with created false and seq %d", f, *b1.Seq)
	}

	// A key that is not stored is still refused, with its ref, and nothing is stored.
	bob.send(map[string]string{"type": "send", "room": "lobby", "body": "b3", "client_id": "b3"})
	if f := bob.nextExcept("message", "presence", "join", "leave"); f.Type != "error" || f.Code != "rate_limited" || f.Ref == nil || *f.Ref != "b3" {
		t.Fatalf("retry of the refused b3: %s, want rate_limited with ref b3", f)
	}
	if n := ts.lastSeq(tok, "lobby"); n != 3 {
		t.Fatalf("last_seq %d, want 3", n)
	}
}

// TestRateLimitedLookupsAreLimited: looking up a refused send's client_id costs the store a trip
// through its committer, so those lookups have a budget of their own (the send rate): once a
// sender at the limit has used it on keys that were not stored, even a real retry is refused
// until the budget refills, instead of every refused send reaching the store.
func TestRateLimitedLookupsAreLimited(t *testing.T) {
	ts := startServer(t, slowRefill)
	alice := ts.signIn("alice")
	for _, id := range []string{"c-1", "c-2"} {
		if r := ts.post(alice, "lobby", id, id); r.Status != http.StatusCreated {
			t.Fatalf("send %s: %d %s", id, r.Status, r.Raw)
		}
	}
	// Two refused sends with new keys use the two lookups of the burst.
	checkError(t, ts.post(alice, "lobby", "x", "c-3"), http.StatusTooManyRequests, "rate_limited")
	checkError(t, ts.post(alice, "lobby", "y", "c-4"), http.StatusTooManyRequests, "rate_limited")
	// Now a retry of a stored key is refused too: it was not looked up.
	checkError(t, ts.post(alice, "lobby", "c-1", "c-1"), http.StatusTooManyRequests, "rate_limited")
	if n := ts.lastSeq(alice, "lobby"); n != 2 {
		t.Fatalf("last_seq %d, want 2", n)
	}
}
