package natter_test

import (
	"errors"
	"fmt"
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
