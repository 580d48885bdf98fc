package server

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"natter"
	"natter/ws"
)

// TestAckFrameMatchesEncodingJSON: the hand-written ack is byte for byte what json.Marshal makes
// of an ackFrame, for client_ids and rooms that need escaping too.
func TestAckFrameMatchesEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		clientID, room string
		seq            int64
		created        bool
	}{
		{"c-7f3a", "lobby", 1, true},
		{"", "ops", 9223372036854775807, false},
		{`quote" back\\slash`, "<script>&", 42, true},
		{"tab\tnew\nline\u2028", "ünïcödé 🎉", 7, false},
		{"bad \xff utf8", "r", 3, true},
	} {
		want, err := json.Marshal(ackFrame{Type: "ack", ClientID: tc.clientID, Seq: tc.seq, Room: tc.room, Created: tc.created})
		if err != nil {
			t.Fatal(err)
		}
		got := appendAckFrame(tc.clientID, natter.Message{Room: tc.room, Seq: tc.seq}, tc.created)
		if wantFrame := ws.AppendFrame(nil, ws.OpText, want); !bytes.Equal(got, wantFrame) {
			t.Errorf("client_id %q room %q: got %q, want %q", tc.clientID, tc.room, got, wantFrame)
		}
	}
}

// TestDropInboxReleasesTheReader: once the frame handler is gone (it panicked), a reader waiting
// for room in the full inbox goes on, and later frames are dropped instead of filling the inbox
// again and leaving the reader waiting for a handler that will never come.
func TestDropInboxReleasesTheReader(t *testing.T) {
	c := &wsConn{processing: true} // a handler is running: enqueue starts none
	for range maxInbox {
		c.enqueue([]byte("queued"))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 * maxInbox { // the first waits for room
			c.enqueue([]byte("more"))
		}
	}()
	c.dropInbox()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader still waits for room after the handler is gone")
	}
	if len(c.inbox) != 0 {
		t.Fatalf("%d frames queued for a handler that is gone", len(c.inbox))
	}
}
