package server

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

var frameSeeds = []string{
	`{"type":"send","room":"lobby","body":"hi","client_id":"c-1"}`,
	` { "type" : "subscribe" , "room" : "lobby" , "after" : 42 } `,
	`{"type":"subscribe","room":"lobby","after":null}`,
	`{"type":"subscribe","room":"lobby","after":-1.5e+3}`,
	`{"type":"subscribe","room":"lobby","after":01}`,
	`{"type":"subscribe","room":"lobby","after":"7"}`,
	`{"type":"send","body":"a \"quoted\" word","room":"r"}`,
	`{"Type":"send","ROOM":"r"}`,
	`{"type":"send","type":"ping"}`,
	`{"type":"send","extra":{"a":[1,2]}}`,
	`{"type":null,"body":5}`,
	`{"type":"send",}`,
	`{"type":"send"} x`,
	`{}`,
	`[]`,
	`{"body":"ünïcödé 🎉 <&>"}`,
	"{\"body\":\"tab\there\"}",
}

// FuzzClientFrameDecode: whatever the fast decoder accepts, encoding/json decodes to the same
// frame.
func FuzzClientFrameDecode(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return
		}
		var fast clientFrame
		if !decodeClientFrameFast(data, &fast) {
			return
		}
		var want clientFrame
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("%q: fast decoder accepted what encoding/json refuses: %v", data, err)
		}
		if fast.Type != want.Type || fast.Room != want.Room || fast.Body != want.Body || fast.ClientID != want.ClientID || !bytes.Equal(fast.After, want.After) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", data, fast, want)
		}
	})
}

// TestClientFrameDecodeFastPath: the frames clients send every time take the fast path.
func TestClientFrameDecodeFastPath(t *testing.T) {
	for _, s := range frameSeeds[:4] {
		var f clientFrame
		if !decodeClientFrameFast([]byte(s), &f) {
			t.Errorf("%s: not decoded by the fast path", s)
		}
	}
}

// TestClientFrameDecodeFallsBack: unusual frames still decode (by encoding/json) to what they
// mean, or fail as they did before.
func TestClientFrameDecodeFallsBack(t *testing.T) {
	var f clientFrame
	if err := decodeClientFrame([]byte(`{"Type":"send","ROOM":"r","body":"a\"b"}`), &f); err != nil || f.Type != "send" || f.Room != "r" || f.Body != `a"b` {
		t.Fatalf("case-insensitive keys and escapes: %+v, %v", f, err)
	}
	f = clientFrame{}
	if err := decodeClientFrame([]byte(`{"type":"send",}`), &f); err == nil {
		t.Fatal("a trailing comma was accepted")
	}
	f = clientFrame{}
	if err := decodeClientFrame([]byte(`{"type":"subscribe","after":7}`), &f); err != nil || string(f.After) != "7" {
		t.Fatalf("after: %+v, %v", f, err)
	}
}
