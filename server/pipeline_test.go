package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"natter/app"
	"natter/ws"
)

// TestPipelinedWebSocketSendsKeepTheirOrder sends many frames without waiting for acks: each
// must be acknowledged once, and the seqs must follow the order the frames were sent in, even
// though several are committed together.
func TestPipelinedWebSocketSendsKeepTheirOrder(t *testing.T) {
	ts := startServer(t)
	tok := ts.signIn("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := ts.dialRaw(ctx, tok)
	const n = 300
	go func() {
		for i := range n {
			frame, _ := json.Marshal(map[string]string{"type": "send", "room": "lobby", "body": fmt.Sprint(i), "client_id": fmt.Sprintf("c%d", i)})
			if err := conn.WriteMessage(ws.OpText, frame); err != nil {
				return
			}
		}
	}()
	seqOf := map[string]int64{}
	for len(seqOf) < n {
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("after %d acks: %v", len(seqOf), err)
		}
		var f struct {
			Type     string `json:"type"`
			ClientID string `json:"client_id"`
			Seq      int64  `json:"seq"`
		}
		json.Unmarshal(data, &f)
		if f.Type != "ack" {
			t.Fatalf("unexpected frame %s", data)
		}
		if _, dup := seqOf[f.ClientID]; dup {
			t.Fatalf("second ack for %s", f.ClientID)
		}
		seqOf[f.ClientID] = f.Seq
	}
	for i := range n {
		if got := seqOf[fmt.Sprintf("c%d", i)]; got != int64(i+1) {
			t.Fatalf("frame %d was stored as seq %d: pipelined sends were reordered", i, got)
		}
	}
}

// TestAcksSkipTheCoalescingWait: a sender that waits for each ack must not wait for the write
// coalescing interval too. With an interval of an hour, only acks written at once let this
// sender finish.
func TestAcksSkipTheCoalescingWait(t *testing.T) {
	ts := startServer(t, func(c *app.Config) { c.Server.WriteCoalesce = time.Hour })
	c := ts.dialWS(ts.signIn("alice"))
	// Subscribed, the sender also gets each message frame: those wait for the interval, and the
	// ack that follows must not wait behind them.
	c.send(map[string]string{"type": "subscribe", "room": "lobby"})
	if f := c.nextExcept("presence"); f.Type != "subscribed" {
		t.Fatalf("got %s, want subscribed", f)
	}
	for i := range 5 {
		c.sendMessage("lobby", fmt.Sprint("body ", i), fmt.Sprint("c", i)) // fails unless acked
	}
}

// TestPromptReaderIsNotSlowUnderBurst: with the default queue bound and write coalescing, a
// subscriber that reads everything must not be cut off as slow when a burst of large messages
// (about 24 KB frames, as fast as four writers can post) fills a coalescing interval.
func TestPromptReaderIsNotSlowUnderBurst(t *testing.T) {
	ts := startServer(t)
	steady := ts.dialWS(ts.signIn("steady"))
	steady.subscribe("lobby")
	const n = 300
	errs := make(chan error, 4)
	for w := range 4 {
		go func() {
			tok := ts.signIn(fmt.Sprintf("writer%d", w))
			for i := range n / 4 {
				r, err := ts.doErr("POST", "/api/rooms/lobby/messages", tok, map[string]string{"body": fmt.Sprintf("%d %s", i, strings.Repeat("<", 4000))})
				if err != nil || r.Status != 201 {
					errs <- fmt.Errorf("post: %v %d", err, r.Status)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= n; i++ {
		if m := steady.next().msg(t); m.Seq != int64(i) {
			t.Fatalf("got seq %d, want %d", m.Seq, i)
		}
	}
}
