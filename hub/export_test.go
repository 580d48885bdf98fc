package hub

import "time"

// SetSpliceHook makes every catch-up run f while it holds its subscription's lock to splice in
// the live frames (nil: nothing).
func SetSpliceHook(f func()) {
	if f == nil {
		spliceHook.Store(nil)
		return
	}
	spliceHook.Store(&f)
}

// SetTypingEvery sets the shortest time between two typing notices of one user in one room.
func (h *Hub) SetTypingEvery(d time.Duration) { h.typingEvery = d }
