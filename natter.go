// Package natter holds the domain types of the natter chat server and the interfaces between its
// parts. Implementations live in subpackages (sqlite, hub, server); cmd/natter wires them together.
package natter

import "io"

// Store is everything natter keeps durably: users, sessions, rooms and their logs.
type Store interface {
	UserStore
	RoomStore
	MessageStore
	io.Closer
}
