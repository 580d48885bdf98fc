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

// sessionCache remembers recently validated sessions by token hash, and recent revocations: a
// lookup or a connection that raced a revocation must not bring the session back.
type sessionCache struct {
	mu           sync.Mutex
	m            map[string]cachedSession
	revokedHash  map[string]time.Time      // one session, until when it is remembered
	revokedUsers map[string]userRevocation // every session of a user made before at, but keep
}

// userRevocation is the revocation of every session of a user created up to at, except keep.
type userRevocation struct {
	at, until time.Time
	keep      string
}

// revocationMemory is how long a revocation is remembered: longer than any lookup or connection
// set-up takes from its authentication to its use of the cache (sessionCacheTTL at the most).
const revocationMemory = 2 * sessionCacheTTL

// revokedLocked reports whether the session hash of user, created at created, was revoked
// recently.
func (c *sessionCache) revokedLocked(hash, user string, created, now time.Time) bool {
	if until, ok := c.revokedHash[hash]; ok && now.Before(until) {
		return true
	}
	r, ok := c.revokedUsers[user]
	return ok && now.Before(r.until) && hash != r.keep && !created.After(r.at)
}

// revoked is revokedLocked for callers outside the cache.
func (c *sessionCache) revoked(hash, user string, created, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revokedLocked(hash, user, created, now)
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
	if c.revokedLocked(sess.TokenHash, sess.UserName, sess.CreatedAt, now) {
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
	c.forgetLapsedLocked(now)
	if c.revokedHash == nil {
		c.revokedHash = make(map[string]time.Time)
	}
	c.revokedHash[hash] = now.Add(revocationMemory)
}

// forgetAll empties the cache (the revocations it remembers stay).
func (c *sessionCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

// dropUser forgets every cached session of user made up to at but keep, and remembers the
// revocation.
func (c *sessionCache) dropUser(user, keep string, at, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.m {
		if e.sess.UserName == user && h != keep && !e.sess.CreatedAt.After(at) {
			delete(c.m, h)
		}
	}
	c.forgetLapsedLocked(now)
	if c.revokedUsers == nil {
		c.revokedUsers = make(map[string]userRevocation)
	}
	c.revokedUsers[user] = userRevocation{at: at, until: now.Add(revocationMemory), keep: keep}
}

func (c *sessionCache) forgetLapsedLocked(now time.Time) {
	for h, until := range c.revokedHash {
		if !now.Before(until) {
			delete(c.revokedHash, h)
		}
	}
	for u, r := range c.revokedUsers {
		if !now.Before(r.until) {
			delete(c.revokedUsers, u)
		}
	}
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

// revokeSession deletes a session; it stops working on this node at once, and the connections it
// opened are closed.
func (s *Server) revokeSession(ctx context.Context, hash string) error {
	s.sessions.drop(hash, s.now())
	err := s.store.DeleteSession(ctx, hash)
	s.closeConns(func(o connOwner) bool { return o.tokenHash == hash })
	return err
}

// revokeUserSessions deletes every session of user but keep ("" keeps none) and closes the
// connections they opened; it returns how many sessions it deleted.
func (s *Server) revokeUserSessions(ctx context.Context, user, keep string) (int64, error) {
	now := s.now()
	s.sessions.dropUser(user, keep, now, now)
	n, err := s.store.DeleteUserSessions(ctx, user, keep)
	s.closeUserConns(user, keep, now)
	return n, err
}

// closeUserConns closes the connections of user's sessions made up to at, but keep's.
func (s *Server) closeUserConns(user, keep string, at time.Time) {
	s.closeConns(func(o connOwner) bool { return o.user == user && o.tokenHash != keep && !o.created.After(at) })
}

// Revoked applies a revocation made on another node that shares the store (natter on Redis):
// the session tokenHash, or, when it is "", every session of user made up to at (that node's
// clock) but keep, stops working on this node too, and the connections it opened here close.
func (s *Server) Revoked(tokenHash, user, keep string, at time.Time) {
	now := s.now()
	if tokenHash != "" {
		s.sessions.drop(tokenHash, now)
		s.closeConns(func(o connOwner) bool { return o.tokenHash == tokenHash })
		return
	}
	s.sessions.dropUser(user, keep, at, now)
	s.closeUserConns(user, keep, at)
}

// RecheckSessions looks up the session of every open connection again and closes those whose
// session has ended, and empties the session cache: for a node that may have missed revocations
// made on other nodes (its subscription to them was lost for a while).
func (s *Server) RecheckSessions(ctx context.Context) {
	s.sessions.forgetAll()
	s.access.members.Clear() // members removed meanwhile: ask the store again
	s.bans.forget("")        // bans changed meanwhile: read them again
	hashes := make(map[string]bool)
	s.connsMu.Lock()
	for _, o := range s.conns {
		hashes[o.tokenHash] = true
	}
	s.connsMu.Unlock()
	ended := 0
	for hash := range hashes {
		_, err := s.store.SessionByTokenHash(ctx, hash)
		if natter.ErrorCode(err) != natter.EUNAUTHORIZED {
			continue // live, or the store can't say now: keep it
		}
		s.sessions.drop(hash, s.now())
		s.closeConns(func(o connOwner) bool { return o.tokenHash == hash })
		ended++
	}
	if ended > 0 {
		s.logger.Info("closed the connections of sessions that ended while revocations could not be heard", "sessions", ended)
	}
	// Rooms deleted meanwhile: what this node's connections receive of them ends as if it had
	// heard (the store tells of those this node had delivered messages of; this finds the rest).
	for _, room := range s.hub.SubscribedRooms() {
		if s.isDeleted(room) {
			continue
		}
		if _, err := s.store.Room(ctx, room); natter.ErrorCode(err) == natter.ENOTFOUND {
			s.logger.Info("a room was deleted while deletions could not be heard", "room", room)
			s.RoomDeleted(room)
		}
	}
}

// closeConns tells the live connections whose owner matches that their session has ended.
func (s *Server) closeConns(match func(connOwner) bool) {
	var ended []liveConn
	s.connsMu.Lock()
	for c, o := range s.conns {
		if match(o) {
			ended = append(ended, c)
		}
	}
	s.connsMu.Unlock()
	for _, c := range ended {
		c.signedOut()
	}
}
