package server

import (
	"context"
	"sync"
	"time"

	"natter"
)

// What one writes, one has read: a message an account sends moves its read mark in the room to
// that message, so that its other devices (and the room list here) do not count its own messages
// as new, nor what it answered. The marks are set off the send path, by one goroutine per
// server, newest per account and room; at most ownMarksPending wait, and past that more are
// dropped (a mark is a convenience: the page moves it too, as it shows the messages).
const ownMarksPending = 10_000

type markKey struct{ user, room string }

type ownMarks struct {
	mu      sync.Mutex
	pending map[markKey]int64
	wake    chan struct{}
}

func newOwnMarks() *ownMarks {
	return &ownMarks{pending: make(map[markKey]int64), wake: make(chan struct{}, 1)}
}

// sent notes that user's message seq is stored in room.
func (o *ownMarks) sent(user, room string, seq int64) {
	o.mu.Lock()
	k := markKey{user, room}
	prev, ok := o.pending[k]
	if ok || len(o.pending) < ownMarksPending {
		o.pending[k] = max(prev, seq)
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// loop stores the marks as they come until stop closes.
func (o *ownMarks) loop(s *Server) {
	for {
		select {
		case <-s.stop:
			return
		case <-o.wake:
		}
		o.mu.Lock()
		batch := o.pending
		o.pending = make(map[markKey]int64, len(batch))
		o.mu.Unlock()
		epochs := map[string]string{}
		for k, seq := range batch {
			epoch, ok := epochs[k.room]
			if !ok {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				room, err := s.store.Room(ctx, k.room)
				cancel()
				if err != nil {
					continue
				}
				epoch, epochs[k.room] = room.Epoch, room.Epoch
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := s.store.SetReadMark(ctx, k.user, natter.ReadMark{Room: k.room, Epoch: epoch, Seq: seq})
			cancel()
			if natter.ErrorCode(err) == natter.EINTERNAL {
				s.logger.Warn("move the read mark to one's own message", "user", k.user, "room", k.room, "err", err)
			}
		}
	}
}
