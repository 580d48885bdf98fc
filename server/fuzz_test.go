package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"natter"
	"natter/app"
	"natter/ws"
)

// FuzzSendRequest posts arbitrary bytes as a message request to one real server. Whatever the
// bytes, the answer has the contract's shape and a status the contract allows for a send (never
// 500), an error answer stores nothing, and a stored message is exactly what the request said.
func FuzzSendRequest(f *testing.F) {
	for _, seed := range []string{
		`{"body": "hi"}`,
		`{"body": "hi", "client_id": "c-7f3a"}`,
		`{"body": "hi", "client_id": "c-7f3a"}`, // a repeat: 200
		`{"body": ""}`,
		`{"body": null}`,
		`{"body": 5}`,
		`{"BODY": "case-insensitive field"}`,
		`{"body": "a", "body": "b"}`,
		`{"body": "\u0000nul\u0000"}`,
		`{"body": "\ud83d\ude00 pair"}`,
		`{"body": "\ud800 lone surrogate"}`,
		`{"body": "x", "client_id": "` + strings.Repeat("c", 65) + `"}`,
		`{"body": "` + strings.Repeat("é", 4096) + `"}`,
		`{"body": "` + strings.Repeat("a", 4097) + `"}`,
		"{\"body\": \"caf\xe9\"}",
		`{"body": "hi"} trailing`,
		`{"body": "hi"`,
		` {"body": "leading space"}`,
		`[]`,
		`null`,
		``,
		`{"body": {"nested": true}}`,
		`{"body": "tricky", "room": "other", "author": "mallory", "seq": 1}`,
	} {
		f.Add([]byte(seed))
	}
	ts := startServer(f)
	tok := ts.signIn("fuzzer")
	f.Fuzz(func(t *testing.T, req []byte) {
		ts := ts.as(t)
		before := ts.lastSeq(tok, "lobby")
		r := ts.do("POST", "/api/rooms/lobby/messages", tok, req)
		after := ts.lastSeq(tok, "lobby")
		switch r.Status {
		case http.StatusOK, http.StatusCreated:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
			checkErrorShape(t, r)
			if after != before {
				t.Fatalf("an error answer (%d %s) stored something: last_seq %d -> %d", r.Status, r.Raw, before, after)
			}
			return
		default:
			t.Fatalf("status %d for a send: %s", r.Status, r.Raw)
		}

		var answer map[string]json.RawMessage
		if err := json.Unmarshal(r.Raw, &answer); err != nil || len(answer) != 1 || answer["message"] == nil {
			t.Fatalf("send answer is not {\"message\": {...}}: %s", r.Raw)
		}
		m := checkMessageJSON(t, answer["message"])
		if m.Room != "lobby" || m.Author != "fuzzer" {
			t.Fatalf("stored %+v: wrong room or author", m)
		}
		if !utf8.ValidString(m.Body) || m.Body == "" || utf8.RuneCountInString(m.Body) > natter.DefaultMaxBodyChars {
			t.Fatalf("stored a body the contract forbids: %q", m.Body)
		}
		// What the server understood, decoded the way any JSON client would.
		var sent struct {
			Body     string `json:"body"`
			ClientID string `json:"client_id"`
		}
		if err := json.Unmarshal(req, &sent); err != nil {
			t.Fatalf("accepted a request that is not JSON (%v): %q", err, req)
		}
		if m.ClientID != sent.ClientID {
			t.Fatalf("client_id %q stored as %q", sent.ClientID, m.ClientID)
		}
		if r.Status == http.StatusCreated {
			if m.Seq != before+1 || after != before+1 || m.Body != sent.Body {
				t.Fatalf("201 with seq %d body %q; last_seq %d -> %d; sent body %q", m.Seq, m.Body, before, after, sent.Body)
			}
			if got := ts.read(tok, fmt.Sprintf("/api/rooms/lobby/messages?after=%d&limit=1", before)); len(got.Messages) != 1 || got.Messages[0].Body != sent.Body || got.Messages[0].ID != m.ID {
				t.Fatalf("read back %+v, sent body %q", got.Messages, sent.Body)
			}
		} else {
			if sent.ClientID == "" || after != before || m.Seq > before {
				t.Fatalf("200 (a repeat) for client_id %q with seq %d; last_seq %d -> %d", sent.ClientID, m.Seq, before, after)
			}
		}
	})
}

// clientFrameShape mirrors what a client frame may hold, to predict the server's answer.
type clientFrameShape struct {
	Type     string          `json:"type"`
	Room     string          `json:"room"`
	After    json.RawMessage `json:"after"`
	Body     string          `json:"body"`
	ClientID string          `json:"client_id"`
}

// serverFrameTypes are the frames a server sends: the contract's, plus pong (the answer to an
// application-level ping).
var serverFrameTypes = []string{"message", "subscribed", "ack", "error", "presence", "join", "leave", "pong"}

// FuzzClientFrame sends arbitrary bytes as a text frame over one real connection, each followed
// by a probe frame whose error answer marks where the server has caught up. The server answers
// every frame (an unsubscribe excepted) with well-formed frames, and keeps the connection up, even
// for text that is not UTF-8 (an invalid error, like any bad frame); only a frame over the limit
// closes it (1009).
func FuzzClientFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type": "subscribe", "room": "lobby"}`,
		`{"type": "subscribe", "room": "lobby", "after": 0}`,
		`{"type": "subscribe", "room": "lobby", "after": 1e3}`,
		`{"type": "subscribe", "room": "lobby", "after": 1.5}`,
		`{"type": "subscribe", "room": "lobby", "after": -1}`,
		`{"type": "subscribe", "room": "lobby", "after": "3"}`,
		`{"type": "subscribe", "room": "nope"}`,
		`{"type": "unsubscribe", "room": "lobby"}`,
		`{"type": "unsubscribe", "room": "NOPE"}`,
		`{"type": "send", "room": "lobby", "body": "hi", "client_id": "c-1"}`,
		`{"type": "send", "room": "lobby", "body": "hi", "client_id": "c-1"}`,
		`{"type": "send", "room": "lobby", "body": ""}`,
		`{"type": "send", "room": "lobby", "body": "` + strings.Repeat("a", 4097) + `", "client_id": "big"}`,
		`{"type": "send", "room": "nope", "body": "hi", "client_id": "c-2"}`,
		`{"type": "ping"}`,
		`{"type": "shout"}`,
		`{"type": 1}`,
		`{}`,
		`[]`,
		`"subscribe"`,
		`{"type": "send"`,
		``,
		"{\"type\": \"send\", \"room\": \"lobby\", \"body\": \"caf\xe9\"}",
	} {
		f.Add([]byte(seed))
	}
	// Without write coalescing, the answer to each frame goes out at once rather than up to 50 ms
	// later, which would cap the fuzzer at a few dozen frames a second.
	ts := startServer(f, func(c *app.Config) { c.Server.WriteCoalesce = -1 })
	tok := ts.signIn("fuzzer")
	var c *wsClient
	dial := func(t testing.TB) {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		conn, _, err := ws.Dial(ctx, "ws://"+ts.Addr+"/ws", http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c = startWSReader(t, conn)
	}
	dial(f)
	f.Cleanup(func() { c.conn.Close() })
	probes := 0

	f.Fuzz(func(t *testing.T, frame []byte) {
		c.t = t
		probes++
		probe := fmt.Sprintf("probe-%d", probes)

		fatal := len(frame) > natter.DefaultMaxFrameBytes
		var shape clientFrameShape
		decoded := utf8.Valid(frame) && bytes.HasPrefix(bytes.TrimSpace(frame), []byte("{")) && json.Unmarshal(frame, &shape) == nil
		needAnswer := !(decoded && shape.Type == "unsubscribe" && natter.ValidRoomName(shape.Room))
		isSend := decoded && shape.Type == "send"

		c.sendRaw(ws.OpText, frame)
		if !fatal {
			c.send(map[string]string{"type": "probe", "client_id": probe})
		}
		sawProbe, answered := false, !needAnswer
		for !(sawProbe && answered) {
			var fr wsFrame
			var ok bool
			select {
			case fr, ok = <-c.frames:
			case <-time.After(guard):
				t.Fatalf("no answer within %v to the frame %q (probe answered: %v, frame answered: %v)", guard, frame, sawProbe, answered)
			}
			if !ok {
				ce, _ := c.err.(*ws.CloseError)
				switch {
				case !fatal:
					t.Fatalf("connection ended (%v) after the frame %q", c.err, frame)
				case ce == nil || ce.Code != ws.CloseTooBig:
					t.Fatalf("connection ended with %v after a frame of %d bytes, want 1009", c.err, len(frame))
				}
				c.conn.Close()
				dial(t)
				return
			}
			checkServerFrame(t, fr)
			switch {
			case fr.Type == "error" && strp(fr.Ref) == probe:
				if fatal {
					t.Fatalf("the server answered a probe after the fatal frame %q", frame)
				}
				sawProbe = true
			case slices.Contains([]string{"message", "presence", "join", "leave"}, fr.Type):
			case isSend && fr.Type == "ack":
				if strp(fr.ClientID) != shape.ClientID {
					t.Fatalf("ack %s for a send with client_id %q", fr, shape.ClientID)
				}
				answered = true
			case isSend && fr.Type == "error":
				if want := shape.ClientID; strp(fr.Ref) != want && !(want == "" && fr.Ref == nil) {
					t.Fatalf("error %s for a send with client_id %q", fr, want)
				}
				answered = true
			case isSend:
				t.Fatalf("got %s for a send", fr)
			default:
				answered = true
			}
		}
	})
}

// checkServerFrame asserts that a frame is one JSON object of a known type, and that an error
// frame carries a contract code (never internal) and a message.
func checkServerFrame(t *testing.T, f wsFrame) {
	t.Helper()
	if f.op != ws.OpText || !slices.Contains(serverFrameTypes, f.Type) {
		t.Fatalf("unexpected frame %s", f)
	}
	switch f.Type {
	case "error":
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(f.raw, &e)
		if _, ok := errorStatus[f.Code]; !ok || f.Code == "internal" || e.Message == "" {
			t.Fatalf("bad error frame %s", f)
		}
	case "message":
		f.msg(t)
	case "ack":
		if f.Seq == nil || *f.Seq < 1 || f.ClientID == nil {
			t.Fatalf("bad ack %s", f)
		}
	case "subscribed":
		if f.Room == nil || f.Epoch == nil || *f.Epoch == "" || f.LastSeq == nil {
			t.Fatalf("bad subscribed frame %s", f)
		}
	}
}
