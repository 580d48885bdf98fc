package natter_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"natter"
)

// TestMessageJSONMatchesEncodingJSON: the hand-written encoder decodes back to the same message
// for awkward bodies, and ts always has nine fraction digits.
func TestMessageJSONMatchesEncodingJSON(t *testing.T) {
	tsRE := regexp.MustCompile(`"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"`)
	for _, body := range []string{"hi", "", `quote " backslash \ slash /`, "tab\tnl\ncr\r\x00\x1f\x7f\b\f", "<script>&amp;</script>", "é 😀 \u2028 \u2029", "caf\xe9"} {
		m := natter.Message{Room: "lobby", Seq: 42, ID: "abc", ClientID: "c-1", Author: "alice", Body: body, TS: time.Date(2026, 11, 27, 4, 30, 40, 120000000, time.FixedZone("x", 3600))}
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(data) {
			t.Fatalf("invalid JSON for %q: %s", body, data)
		}
		if !tsRE.Match(data) {
			t.Fatalf("ts is not RFC 3339 UTC with nine digits: %s", data)
		}
		var back natter.Message
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		std, _ := json.Marshal(body)
		if !regexp.MustCompile(`"body":` + regexp.QuoteMeta(string(std)) + `,`).Match(data) {
			t.Fatalf("body encoded differently from encoding/json's %s: %s", std, data)
		}
		want := body
		if body == "caf\xe9" {
			want = "caf\uFFFD"
		}
		if back.Body != want || back.Seq != 42 || back.ClientID != "c-1" || !back.TS.Equal(m.TS) {
			t.Fatalf("round trip of %q gave %+v", body, back)
		}
	}
	noID, _ := json.Marshal(natter.Message{Room: "r", Seq: 1, Author: "a", Body: "b"})
	if regexp.MustCompile(`client_id`).Match(noID) {
		t.Fatalf("empty client_id must be omitted: %s", noID)
	}
}

// TestEditJSON: an edit or a deletion carries kind and target; a message has neither.
func TestEditJSON(t *testing.T) {
	for _, m := range []natter.Message{
		{Room: "r", Seq: 9, ID: "x", Author: "a", Body: "fixed", Kind: natter.KindEdit, Target: 7},
		{Room: "r", Seq: 10, ID: "y", Author: "a", Kind: natter.KindDelete, Target: 7},
	} {
		data, err := json.Marshal(m)
		if err != nil || !json.Valid(data) {
			t.Fatalf("%+v: %s %v", m, data, err)
		}
		var back natter.Message
		if err := json.Unmarshal(data, &back); err != nil || back.Kind != m.Kind || back.Target != 7 || back.Body != m.Body || back.Seq != m.Seq {
			t.Fatalf("round trip of %s gave %+v, %v", data, back, err)
		}
	}
	plain, _ := json.Marshal(natter.Message{Room: "r", Seq: 1, Author: "a", Body: "b"})
	if bytes.Contains(plain, []byte("kind")) || bytes.Contains(plain, []byte("target")) || bytes.Contains(plain, []byte("reply_to")) {
		t.Fatalf("a message has no kind, target or reply_to: %s", plain)
	}
}

// TestReplyJSON: a reply carries reply_to, after ts, and reads back.
func TestReplyJSON(t *testing.T) {
	m := natter.Message{Room: "r", Seq: 3, ID: "x", Author: "a", Body: "yes", ReplyTo: 2}
	data, err := json.Marshal(m)
	if err != nil || !json.Valid(data) || !bytes.HasSuffix(data, []byte(`Z","reply_to":2}`)) {
		t.Fatalf("%+v: %s %v", m, data, err)
	}
	var back natter.Message
	if err := json.Unmarshal(data, &back); err != nil || back.ReplyTo != 2 || back.Kind != "" || back.Body != "yes" {
		t.Fatalf("round trip of %s gave %+v, %v", data, back, err)
	}
}

func FuzzMessageJSON(f *testing.F) {
	f.Add("hello", "c-1")
	f.Add("\x00\u2028\"\\", "")
	f.Fuzz(func(t *testing.T, body, clientID string) {
		m := natter.Message{Room: "lobby", Seq: 7, ID: "x", ClientID: clientID, Author: "a", Body: body, TS: time.Unix(0, 1).UTC()}
		data, _ := json.Marshal(m)
		stdBody, _ := json.Marshal(body)
		if !bytes.Contains(data, append([]byte(`"body":`), stdBody...)) {
			t.Fatalf("body %q: encoded %s, encoding/json writes %s", body, data, stdBody)
		}
		var back natter.Message
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("%q: %v: %s", body, err, data)
		}
		var viaStd struct {
			Body     string `json:"body"`
			ClientID string `json:"client_id"`
		}
		std, _ := json.Marshal(struct {
			Body     string `json:"body"`
			ClientID string `json:"client_id"`
		}{body, clientID})
		json.Unmarshal(std, &viaStd)
		if back.Body != viaStd.Body || back.ClientID != viaStd.ClientID {
			t.Fatalf("body %q, client_id %q decode to %q, %q; encoding/json's to %q, %q", body, clientID, back.Body, back.ClientID, viaStd.Body, viaStd.ClientID)
		}
	})
}

// TestDeletedJSON: an erased message or edit says so (with its reply_to, kind and target), reads
// back, and MarkDeleted tells erased entries from a deletion's own.
func TestDeletedJSON(t *testing.T) {
	for _, m := range []natter.Message{
		{Room: "r", Seq: 3, ID: "x", Author: "a", ReplyTo: 2},
		{Room: "r", Seq: 4, ID: "y", Author: "a"},
		{Room: "r", Seq: 5, ID: "z", Author: "a", Kind: natter.KindEdit, Target: 4},
	} {
		m.MarkDeleted()
		data, err := json.Marshal(m)
		if err != nil || !json.Valid(data) || !bytes.Contains(data, []byte(`"body":"",`)) || !bytes.Contains(data, []byte(`"deleted":true`)) {
			t.Fatalf("%+v: %s %v", m, data, err)
		}
		var back natter.Message
		if err := json.Unmarshal(data, &back); err != nil || !back.Deleted || back.ReplyTo != m.ReplyTo || back.Kind != m.Kind || back.Target != m.Target || back.Seq != m.Seq {
			t.Fatalf("round trip of %s gave %+v, %v", data, back, err)
		}
	}
	kept := []natter.Message{
		{Room: "r", Seq: 6, Author: "a", Kind: natter.KindDelete, Target: 4},
		{Room: "r", Seq: 7, Author: "a", Body: "hi"},
		{Room: "r", Seq: 8, Author: "a", Body: "👍", Kind: natter.KindReact, Target: 7},
	}
	for _, m := range kept {
		m.MarkDeleted()
		if data, _ := json.Marshal(m); m.Deleted || bytes.Contains(data, []byte("deleted")) {
			t.Fatalf("%+v is not erased: %s", m, data)
		}
	}
}
