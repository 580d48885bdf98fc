package server

import (
	"context"
	"time"
)

// DefaultRetentionEvery is how often the words of messages past Config.Retention are erased.
const DefaultRetentionEvery = 10 * time.Minute

// retentionLoop erases the words of the messages older than Config.Retention, at start and then
// every RetentionEvery, until the server stops. On a store several nodes share every node does
// it; each step is safe to repeat.
func (s *Server) retentionLoop() {
	every := s.cfg.RetentionEvery
	if every <= 0 {
		every = DefaultRetentionEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.expireOld()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// expireOld erases what is past the retention now.
func (s *Server) expireOld() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cutoff := s.now().Add(-s.cfg.Retention)
	start := time.Now()
	n, err := s.store.ExpireBefore(ctx, cutoff)
	if err != nil {
		s.logger.Warn("retention: erasing old messages failed; trying again later", "err", err, "erased", n)
		return
	}
	if n > 0 {
		s.logger.Info("retention: erased the words of old messages", "entries", n, "stored_before", cutoff.UTC().Format(time.RFC3339), "took", time.Since(start).Round(time.Millisecond))
	}
}
