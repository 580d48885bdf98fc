package natter_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"natter"
)

func TestValidateAppend(t *testing.T) {
	ok := natter.AppendRequest{Room: "lobby", Author: "alice", Body: "hi"}
	cases := []struct {
		name string
		edit func(*natter.AppendRequest)
		code string
	}{
		{"valid", func(*natter.AppendRequest) {}, ""},
		{"limit in characters, not bytes", func(r *natter.AppendRequest) { r.Body = strings.Repeat("é", 4096) }, ""},
		{"empty body", func(r *natter.AppendRequest) { r.Body = "" }, natter.EINVALID},
		{"too long", func(r *natter.AppendRequest) { r.Body = strings.Repeat("a", 4097) }, natter.ETOOLARGE},
		{"invalid UTF-8", func(r *natter.AppendRequest) { r.Body = "caf\xe9" }, natter.EINVALID},
		{"bad room", func(r *natter.AppendRequest) { r.Room = "Lobby" }, natter.EINVALID},
		{"client_id of 64", func(r *natter.AppendRequest) { r.ClientID = strings.Repeat("c", 64) }, ""},
		{"client_id of 65", func(r *natter.AppendRequest) { r.ClientID = strings.Repeat("c", 65) }, natter.EINVALID},
		{"an edit", func(r *natter.AppendRequest) { r.Kind, r.Target = natter.KindEdit, 3 }, ""},
		{"an edit without a target", func(r *natter.AppendRequest) { r.Kind = natter.KindEdit }, natter.EINVALID},
		{"an empty edit", func(r *natter.AppendRequest) { r.Kind, r.Target, r.Body = natter.KindEdit, 3, "" }, natter.EINVALID},
		{"a deletion", func(r *natter.AppendRequest) { r.Kind, r.Target, r.Body = natter.KindDelete, 3, "" }, ""},
		{"a deletion with a body", func(r *natter.AppendRequest) { r.Kind, r.Target = natter.KindDelete, 3 }, natter.EINVALID},
		{"a target without a kind", func(r *natter.AppendRequest) { r.Target = 3 }, natter.EINVALID},
		{"an unknown kind", func(r *natter.AppendRequest) { r.Kind, r.Target = "pin", 3 }, natter.EINVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := ok
			c.edit(&req)
			if got := natter.ErrorCode(natter.ValidateAppend(req, 0)); got != c.code {
				t.Fatalf("code %q, want %q", got, c.code)
			}
		})
	}
}

func TestNames(t *testing.T) {
	for name, want := range map[string]bool{"alice": true, "a": true, "0.bob_x-y": true, "": false, "Alice": false, "-a": false, strings.Repeat("a", 32): true, strings.Repeat("a", 33): false} {
		if natter.ValidUserName(name) != want {
			t.Errorf("ValidUserName(%q) = %v", name, !want)
		}
	}
	for name, want := range map[string]bool{"lobby": true, "ops-2_x": true, "a.b": false, "": false, strings.Repeat("r", 64): true, strings.Repeat("r", 65): false} {
		if natter.ValidRoomName(name) != want {
			t.Errorf("ValidRoomName(%q) = %v", name, !want)
		}
	}
}

// The name checks are written out for speed; these are the patterns they promise (PROTOCOL.md).
var (
	userNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,31}$`)
	roomNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

func checkNamePatterns(t *testing.T, name string) {
	if got, want := natter.ValidUserName(name), userNamePattern.MatchString(name); got != want {
		t.Errorf("ValidUserName(%q) = %v, the pattern says %v", name, got, want)
	}
	if got, want := natter.ValidRoomName(name), roomNamePattern.MatchString(name); got != want {
		t.Errorf("ValidRoomName(%q) = %v, the pattern says %v", name, got, want)
	}
}

// TestNamesMatchTheirPatterns tries every name of up to three bytes from an alphabet of each
// class the patterns tell apart, and the lengths around each limit.
func TestNamesMatchTheirPatterns(t *testing.T) {
	const alphabet = "az09_.-A/ \x00\xff"
	var walk func(prefix string)
	walk = func(prefix string) {
		checkNamePatterns(t, prefix)
		if len(prefix) == 3 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			walk(prefix + alphabet[i:i+1])
		}
	}
	walk("")
	for _, n := range []int{31, 32, 33, 63, 64, 65} {
		for _, c := range []string{"a", "_", "."} {
			checkNamePatterns(t, "a"+strings.Repeat(c, n-1))
		}
	}
}

func FuzzNamesMatchTheirPatterns(f *testing.F) {
	for _, s := range []string{"lobby", "a.b", "-x", "é", strings.Repeat("r", 64)} {
		f.Add(s)
	}
	f.Fuzz(checkNamePatterns)
}

func TestErrorCodesAndMessages(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", natter.Errorf(natter.ENOTFOUND, "no room named %q", "x"))
	if natter.ErrorCode(err) != natter.ENOTFOUND || natter.ErrorMessage(err) != `no room named "x"` {
		t.Fatalf("code %q message %q", natter.ErrorCode(err), natter.ErrorMessage(err))
	}
	internal := natter.Internal("sqlite: append", errors.New("disk on fire"))
	if natter.ErrorCode(internal) != natter.EINTERNAL || strings.Contains(natter.ErrorMessage(internal), "fire") {
		t.Fatalf("internal error leaks its cause: %q", natter.ErrorMessage(internal))
	}
	if natter.ErrorCode(errors.New("plain")) != natter.EINTERNAL || natter.ErrorCode(nil) != "" {
		t.Fatal("plain errors are internal, nil has no code")
	}
}

func TestMentions(t *testing.T) {
	for body, want := range map[string]bool{
		"@alice hi": true, "hi @alice": true, "hi @Alice!": true, "(@alice)": true, "@alice.": true,
		"@alice, see": true, "line\n@alice": true,
		"alice": false, "x@alice": false, "@alicex": false, "@alice_b": false, "@alice-b": false,
		"@alice.b": false, "@@alice": false, "mail bob@alice.example": false, "": false,
	} {
		if got := natter.Mentions(body, "alice"); got != want {
			t.Errorf("Mentions(%q, alice) = %v, want %v", body, got, want)
		}
	}
	if natter.Mentions("@a.b hi", "a.b") != true || natter.Mentions("@a.bc", "a.b") != false {
		t.Error("a name with a dot")
	}
}
