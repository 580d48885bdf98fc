package client

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestEventReader(t *testing.T) {
	stream := ": comment\n\n" + // a comment alone dispatches nothing
		"retry: 2000\n\n" + // no data: dropped
		"id: 1\nevent: message\ndata: one\n\n" +
		"data: two\r\ndata:  lines\r\n\r\n" + // CRLF; one leading space is stripped, not two
		"event: custom\rdata\rid: 9\r\r" + // CR; "data" without a colon is an empty data line
		"id: a\x00b\ndata: nul id ignored\n\n" +
		"data: unterminated" // an event the stream never finished is dropped
	want := []sseEvent{
		{ID: "1", Type: "message", Data: "one"},
		{ID: "1", Type: "message", Data: "two\n lines"},
		{ID: "9", Type: "custom", Data: ""},
		{ID: "9", Type: "message", Data: "nul id ignored"},
	}
	// One byte per read, so that every line ending is split across reads.
	lines := 0
	r := newEventReader(iotest.OneByteReader(strings.NewReader(stream)), func() { lines++ })
	for i, w := range want {
		got, err := r.next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got != w {
			t.Errorf("event %d = %+v; want %+v", i, got, w)
		}
	}
	if _, err := r.next(); err != io.EOF {
		t.Fatalf("end = %v; want io.EOF", err)
	}
	if lines < 15 {
		t.Errorf("onLine called %d times; want once per line", lines)
	}
}

func TestDecodeFrame(t *testing.T) {
	f, err := decodeFrame([]byte(`{"type":"message","message":{"room":"lobby","seq":3,"id":"i","author":"a","body":"b","ts":"2026-11-27T04:30:40.123456789Z"}}`))
	if err != nil || f.Message == nil || f.Message.Seq != 3 || f.Message.Body != "b" || f.Err() != nil {
		t.Fatalf("message frame: %+v %v", f, err)
	}
	f, err = decodeFrame([]byte(`{"type":"error","code":"not_found","message":"no room","ref":"x"}`))
	if err != nil || f.ErrMessage != "no room" || f.Message != nil || f.Ref != "x" || f.Err() == nil {
		t.Fatalf("error frame: %+v %v", f, err)
	}
	f, err = decodeFrame([]byte(`{"type":"ack","client_id":"c-1","seq":43}`))
	if err != nil || f.ClientID != "c-1" || f.Seq != 43 {
		t.Fatalf("ack frame: %+v %v", f, err)
	}
	f, err = decodeFrame([]byte(`{"type":"join","room":"lobby","user":"carol","extra":[1]}`))
	if err != nil || f.User != "carol" || f.Room != "lobby" {
		t.Fatalf("join frame: %+v %v", f, err)
	}
	for _, bad := range []string{`not json`, `{"type":"message"}`, `{"type":"message","message":{"seq":"x"}}`} {
		if _, err := decodeFrame([]byte(bad)); err == nil {
			t.Errorf("decodeFrame(%s) succeeded", bad)
		}
	}
}

func TestBackoffStaysInBounds(t *testing.T) {
	b := &backoff{min: 10, max: 1000}
	for i := range 100 {
		d := b.next()
		if d < 5 || d > 1000 {
			t.Fatalf("wait %d = %d; want within [min/2, max]", i, d)
		}
	}
	b.reset()
	if d := b.next(); d > 10 {
		t.Fatalf("after reset: %d; want at most min", d)
	}
}
