package server

import (
	"context"
	"sync"
	"time"

	"natter"
)

// Session cache bounds: a token seen within sessionCacheTTL is not looked up in the store again,
// so a burst of polls or reconnects costs no database read per request. Revoking a session drops
// it from this node's cache at once (revokeSession); sessionCacheTTL is also the most a session
// could outlive a revocation made by another process writing the same store.
const (
	sessionCacheTTL = 5 * time.Second
	sessionCacheMax = 100_000
)

// sessionCache remembers recently validated sessions by token hash.
type sessionCache struct {
	mu      sync.Mutex
	m       map[string]cachedSession
	revoked map[string]time.Time // recently revoked: a lookup that raced the revocation can't cache it
}

type cachedSession struct {
	sess  natter.Session
	until time.Time
}

func (c *sessionCache) get(hash string, now time.Time) (natter.Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok || !now.Before(e.until) || !now.Before(e.sess.ExpiresAt) {
		return natter.Session{}, false
	}
	return e.sess, true
}

func (c *sessionCache) put(sess natter.Session, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until, ok := c.revoked[sess.TokenHash]; ok && now.Before(until) {
		return
	}
	if c.m == nil {
		c.m = make(map[string]cachedSession)
	}
	if len(c.m) >= sessionCacheMax {
		for h, e := range c.m { // drop what has lapsed, or failing that an arbitrary tenth
			if !now.Before(e.until) || len(c.m) > sessionCacheMax*9/10 {
				delete(c.m, h)
			}
		}
	}
	c.m[sess.TokenHash] = cachedSession{sess: sess, until: now.Add(sessionCacheTTL)}
}

func (c *sessionCache) drop(hash string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, hash)
	if c.revoked == nil {
		c.revoked = make(map[string]time.Time)
	}
	for h, until := range c.revoked {
		if !now.Before(until) {
			delete(c.revoked, h)
		}
	}
	c.revoked[hash] = now.Add(2 * sessionCacheTTL)
}

// sessionByTokenHash is SessionByTokenHash through the cache.
func (s *Server) sessionByTokenHash(ctx context.Context, hash string) (natter.Session, error) {
	now := s.now()
	if sess, ok := s.sessions.get(hash, now); ok {
		return sess, nil
	}
	sess, err := s.store.SessionByTokenHash(ctx, hash)
	if err == nil {
		s.sessions.put(sess, now)
	}
	return sess, err
}

// revokeSession deletes a session; it stops working on this node at once.
func (s *Server) revokeSession(ctx context.Context, hash string) error {
	s.sessions.drop(hash, s.now())
	return s.store.DeleteSession(ctx, hash)
}
