package natter

import (
	"strings"
	"testing"
	"time"
)

// TestParseBanFor: durations a person writes ("30m", "2h", "7d") within 1m..366d; none is until
// lifted; anything else is EINVALID.
func TestParseBanFor(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "1m": time.Minute, "90m": 90 * time.Minute, "2h": 2 * time.Hour, "7d": 7 * 24 * time.Hour, "366d": MaxBanFor, "1h30m": 90 * time.Minute} {
		if got, err := ParseBanFor(in); err != nil || got != want {
			t.Errorf("ParseBanFor(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"59s", "0", "0d", "-1h", "367d", "9223372036854775807d", "soon", "d", "1.5d", "2 h"} {
		if _, err := ParseBanFor(in); ErrorCode(err) != EINVALID {
			t.Errorf("ParseBanFor(%q): %v, want invalid", in, err)
		}
	}
}

func TestCheckBanReason(t *testing.T) {
	for _, ok := range []string{"", "spam", "links to spam: see #ops", strings.Repeat("é", MaxBanReasonChars)} {
		if err := CheckBanReason(ok); err != nil {
			t.Errorf("CheckBanReason(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"two\nlines", "tab\there", "\xff", strings.Repeat("x", MaxBanReasonChars+1)} {
		if err := CheckBanReason(bad); ErrorCode(err) != EINVALID {
			t.Errorf("CheckBanReason(%q): %v, want invalid", bad, err)
		}
	}
}

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "0": 0, "1h": time.Hour, "720h": 720 * time.Hour, "90d": 90 * 24 * time.Hour, "1d": 24 * time.Hour} {
		if got, err := ParseRetention(in); err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"59m", "0d", "-1h", "-5d", "99999999999d", "9223372036854775807d", "soon", "d", "1.5d", "2 h"} {
		if _, err := ParseRetention(in); ErrorCode(err) != EINVALID {
			t.Errorf("ParseRetention(%q): %v, want invalid", in, err)
		}
	}
}
