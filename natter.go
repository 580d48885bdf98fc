// Package natter holds the domain types of the natter chat server and the interfaces between its
// parts. Implementations live in subpackages (sqlite, hub, server); cmd/natter wires them together.
package natter

import "io"

// Store is everything natter keeps durably: users, sessions, rooms and their logs, read marks.
type Store interface {
	UserStore
	RoomStore
	MessageStore
	ReadMarkStore
	ModerationStore
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
