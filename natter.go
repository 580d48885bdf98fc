// Package natter holds the domain types of the natter chat server and the interfaces between its
// parts. Implementations live in subpackages (sqlite, hub, server); cmd/natter wires them together.
package natter

import (
	"io"
	"strconv"
	"strings"
	"time"
)

// Store is everything natter keeps durably: users, sessions, rooms and their logs, read marks.
type Store interface {
	UserStore
	RoomStore
	MessageStore
	ReadMarkStore
	ModerationStore
	InviteStore
	io.Closer
}

// Metric is one figure a store reports for GET /metrics: a Prometheus name, type ("gauge" or
// "counter") and help text, and its value now.
type Metric struct {
	Name, Type, Help string
	Value            float64
}

// MetricsReporter is implemented by stores with figures of their own for GET /metrics.
type MetricsReporter interface {
	Metrics() []Metric
}

// MinRetention is the shortest retention natter serve takes (ParseRetention).
const MinRetention = time.Hour

// ParseRetention reads how long messages are kept: a Go duration ("720h") or a number of days
// ("90d"); "" or "0" keeps them for ever (0). Anything else, or less than MinRetention, is
// EINVALID.
func ParseRetention(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	d, err := parseSpan(s)
	if err != nil || d < MinRetention {
		return 0, Errorf(EINVALID, `messages are kept for at least an hour ("90d", "720h"), or for ever ("0"), not %q`, s)
	}
	return d, nil
}

// parseSpan reads a Go duration ("90m", "2h") or a number of days ("7d"). Days past about a
// century come out negative, which every caller refuses.
func parseSpan(s string) (time.Duration, error) {
	days, ok := strings.CutSuffix(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.Atoi(days)
	if n > 100*366 {
		n = -1
	}
	return time.Duration(n) * 24 * time.Hour, err
}
