package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"natter"
	"natter/app"
)

type searchPage struct {
	Room     string           `json:"room"`
	Epoch    string           `json:"epoch"`
	Messages []natter.Message `json:"messages"`
	Changes  []natter.Message `json:"changes"`
	Scanned  int              `json:"scanned"`
	Before   int64            `json:"before"`
}

func (ts *testServer) search(tok, room, query string) searchPage {
	ts.t.Helper()
	r := ts.do("GET", "/api/rooms/"+room+"/search?"+query, tok, nil)
	if r.Status != http.StatusOK {
		ts.t.Fatalf("search %s: %d %s", query, r.Status, r.Raw)
	}
	var p searchPage
	if err := json.Unmarshal(r.Raw, &p); err != nil {
		ts.t.Fatalf("search %s: %v in %s", query, err, r.Raw)
	}
	return p
}

func seqsOf(msgs []natter.Message) []int64 {
	seqs := make([]int64, len(msgs))
	for i, m := range msgs {
		seqs[i] = m.Seq
	}
	return seqs
}

// TestSearch: GET /api/rooms/{room}/search finds a room's messages by their words and author,
// newest first, by the text they have now (deleted ones never), page by page; bad queries are
// refused with a clear error, and each search is timed in /metrics.
func TestSearch(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.Metrics, c.Server.SearchRate = true, -1 })
	alice, bob, guest := ts.account("alice"), ts.account("bob"), ts.signIn("gus")
	first := ts.mustPost(alice, "lobby", "Deploy at noon")
	ts.mustPost(bob, "lobby", "deploy done?")
	if r := ts.do("POST", "/api/rooms/lobby/messages", alice, map[string]any{"kind": "edit", "target": first.Seq, "body": "Deploy at one"}); r.Status != http.StatusCreated {
		t.Fatalf("edit: %d %s", r.Status, r.Raw)
	}
	ts.mustPost(guest, "lobby", "lunch? <b>now</b>")
	gone := ts.mustPost(bob, "lobby", "deploy failed")
	if r := ts.do("POST", "/api/rooms/lobby/messages", bob, map[string]any{"kind": "delete", "target": gone.Seq}); r.Status != http.StatusCreated {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}

	p := ts.search(guest, "lobby", "q=DEPLOY")
	if p.Room != "lobby" || p.Epoch == "" || p.Scanned != 6 || p.Before != 0 {
		t.Fatalf("search: room %q, epoch %q, scanned %d, before %d", p.Room, p.Epoch, p.Scanned, p.Before)
	}
	if got := seqsOf(p.Messages); len(got) != 2 || got[0] != 2 || got[1] != 1 || p.Messages[1].Body != "Deploy at noon" {
		t.Fatalf("search deploy found %v (%+v), want 2 and 1 as stored", got, p.Messages)
	}
	if len(p.Changes) != 1 || p.Changes[0].Seq != 3 || p.Changes[0].Body != "Deploy at one" {
		t.Fatalf("search deploy gave changes %+v, want the edit 3", p.Changes)
	}
	for q, want := range map[string][]int64{
		"q=noon":                      {},
		"q=at+one":                    {1},
		"q=failed":                    {},
		"q=from:gus":                  {4},
		"q=" + url.QueryEscape("<b>"): {4},
		"q=deploy&before=2":           {1},
		"q=deploy&before=999":         {2, 1},
	} {
		if got := seqsOf(ts.search(alice, "lobby", q).Messages); len(got) != len(want) || (len(want) > 0 && got[0] != want[0]) {
			t.Fatalf("search %s found %v, want %v", q, got, want)
		}
	}
	one := ts.search(alice, "lobby", "q=deploy&limit=1")
	if got := seqsOf(one.Messages); len(got) != 1 || got[0] != 2 || one.Before != 2 {
		t.Fatalf("limit 1: %v, before %d; want [2] and before 2", got, one.Before)
	}
	next := ts.search(alice, "lobby", "q=deploy&limit=1&before=2")
	if got := seqsOf(next.Messages); len(got) != 1 || got[0] != 1 || next.Before != 0 {
		t.Fatalf("the next page: %v, before %d; want [1] and the end", got, next.Before)
	}

	for _, q := range []string{"", "q=", "q=+++", "q=" + strings.Repeat("a", natter.MaxSearchLen+1),
		"q=" + strings.Repeat("a+", natter.MaxSearchWords+1), "q=from:a+from:b",
		"q=x&limit=0", "q=x&limit=101", "q=x&limit=many", "q=x&before=0", "q=x&before=-1", "q=x&before=one"} {
		checkError(t, ts.do("GET", "/api/rooms/lobby/search?"+q, alice, nil), http.StatusBadRequest, "invalid")
	}
	checkError(t, ts.do("GET", "/api/rooms/nowhere/search?q=x", alice, nil), http.StatusNotFound, "not_found")
	checkError(t, ts.do("GET", "/api/rooms/lobby/search?q=x", "", nil), http.StatusUnauthorized, "unauthorized")

	m := scrape(t, ts)
	if n := m["natter_search_duration_seconds_count"]; n != 1+7+2 {
		t.Fatalf("natter_search_duration_seconds_count %v, want 10 (the searches answered)", n)
	}
	if m[`natter_message_changes_total{kind="edit"}`] != 1 || m[`natter_message_changes_total{kind="delete"}`] != 1 {
		t.Fatalf("natter_message_changes_total: edit %v, delete %v; want 1 and 1", m[`natter_message_changes_total{kind="edit"}`], m[`natter_message_changes_total{kind="delete"}`])
	}
}

// TestSearchRateLimit: each user may search SearchBurst times at once and SearchRate times a
// second; past that 429 rate_limited with Retry-After, for that user only. Refused searches (a bad
// query, an unknown room) take nothing from the budget.
func TestSearchRateLimit(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.SearchRate, c.Server.SearchBurst = 0.5, 2 })
	ann, ben := ts.signIn("ann"), ts.signIn("ben")
	for range 3 {
		checkError(t, ts.do("GET", "/api/rooms/lobby/search?q=", ann, nil), http.StatusBadRequest, "invalid")
		checkError(t, ts.do("GET", "/api/rooms/nowhere/search?q=x", ann, nil), http.StatusNotFound, "not_found")
	}
	ts.search(ann, "lobby", "q=x")
	ts.search(ann, "lobby", "q=x")
	r := ts.do("GET", "/api/rooms/lobby/search?q=x", ann, nil)
	checkError(t, r, http.StatusTooManyRequests, "rate_limited")
	if ra := r.Header.Get("Retry-After"); ra == "" || !strings.Contains(r.errorMessage(), "searching too fast: at most 0.5 searches a second (bursts of 2)") {
		t.Fatalf("refusal: Retry-After %q, %q", ra, r.errorMessage())
	}
	ts.search(ben, "lobby", "q=x")
}

// TestOwnMessagesAreRead: what an account sends, over HTTP or WebSocket, moves its read mark
// to it, so its own messages (and what it answered) are not new to it on its other devices;
// others' messages after it are. Guests have no marks.
func TestOwnMessagesAreRead(t *testing.T) {
	ts := startServer(t)
	alice, bob, guest := ts.account("alice"), ts.account("bob"), ts.signIn("gus")
	ts.fill(bob, "lobby", 3)
	sent := ts.mustPost(alice, "lobby", "I read up to here")
	waitFor(t, "alice's read mark at her message", func() bool {
		seq, ok := roomReadSeq(t, ts, alice, "lobby")
		return ok && seq == sent.Seq
	})
	waitFor(t, "bob's read mark at his third message", func() bool {
		seq, ok := roomReadSeq(t, ts, bob, "lobby")
		return ok && seq == 3
	})
	ts.fill(bob, "lobby", 2)
	c := ts.dialWS(alice)
	c.subscribe("lobby", 0)
	ack := c.sendMessage("lobby", "and over WebSocket", "c-own")
	if *ack.Seq != sent.Seq+3 {
		t.Fatalf("ack %s, want seq %d", ack, sent.Seq+3)
	}
	waitFor(t, "alice's read mark at her WebSocket message", func() bool {
		seq, ok := roomReadSeq(t, ts, alice, "lobby")
		return ok && seq == *ack.Seq
	})
	ts.mustPost(bob, "lobby", "new to alice")
	r := ts.do("GET", "/api/rooms/lobby", alice, nil).Body["room"].(map[string]any)
	if r["unread"] != float64(1) {
		t.Fatalf("alice has %v unread after bob's message, want 1", r["unread"])
	}
	ts.mustPost(guest, "lobby", "guests keep no marks")
	if _, ok := roomReadSeq(t, ts, guest, "lobby"); ok {
		t.Fatal("a guest has a read mark")
	}
}
