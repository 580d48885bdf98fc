package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"natter"
)

// Password hashing parameters: argon2id with OWASP's recommended minimum (19 MiB, 2 passes, one
// lane). At most two hashes run at once (hashSem) so a burst of sign-ins can't exhaust memory.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

func hashPassword(password string) string {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// checkPassword compares in constant time and honours the parameters stored with the hash, so
// they can be raised later without invalidating old accounts.
func checkPassword(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// withHashSlot runs f while holding one of the few password-hashing slots.
func (s *Server) withHashSlot(ctx context.Context, f func()) error {
	select {
	case s.hashSem <- struct{}{}:
	case <-ctx.Done():
		return natter.Errorf(natter.EUNAVAILABLE, "request cancelled")
	}
	defer func() { <-s.hashSem }()
	f()
	return nil
}

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenHash is what the store keeps: a stolen database does not yield usable tokens.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

type credentials struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// readCredentials decodes a name and password and checks the name's form.
func readCredentials(w http.ResponseWriter, r *http.Request) (credentials, error) {
	var req credentials
	if err := decodeJSON(w, r, maxJSONRequestBytes, &req); err != nil {
		return req, err
	}
	if !natter.ValidUserName(req.Name) {
		return req, natter.Errorf(natter.EINVALID, "user name %q is not valid: use 1 to 32 of a-z 0-9 _ . - starting with a letter or digit", req.Name)
	}
	return req, nil
}

type userBody struct {
	User natter.User `json:"user"`
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	req, err := readCredentials(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.allowSignIn(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.checkNewPassword(req.Password); err != nil {
		s.writeError(w, r, err)
		return
	}
	var hash string
	if err := s.withHashSlot(r.Context(), func() { hash = hashPassword(req.Password) }); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.store.CreateUser(r.Context(), req.Name, hash)
	if err != nil {
		if natter.ErrorCode(err) == natter.ECONFLICT {
			err = natter.Errorf(natter.ECONFLICT, "the name %q is taken", req.Name)
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, userBody{User: u})
}

type sessionBody struct {
	Token string      `json:"token"`
	User  natter.User `json:"user"`
}

func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	req, err := readCredentials(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.allowSignIn(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(req.Password) > maxPasswordBytes {
		s.writeError(w, r, natter.Errorf(natter.EUNAUTHORIZED, "wrong name or password"))
		return
	}
	user, hash, err := s.store.UserPasswordHash(r.Context(), req.Name)
	switch {
	case err == nil && user.Deleted:
		// With a password or as a guest: nobody may appear under a deleted account's name.
		s.writeError(w, r, deletedAccountError(req.Name))
		return
	case err == nil:
		if err := s.signInFails.check(req.Name); err != nil {
			s.writeError(w, r, err)
			return
		}
		ok := false
		if req.Password != "" {
			if err := s.withHashSlot(r.Context(), func() { ok = checkPassword(hash, req.Password) }); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		if !ok {
			s.signInFails.allow(req.Name) // one failure spent
			s.writeError(w, r, natter.Errorf(natter.EUNAUTHORIZED, "wrong name or password"))
			return
		}
		if user.Suspended {
			s.writeError(w, r, suspendedError(user.Name))
			return
		}
	case natter.ErrorCode(err) == natter.ENOTFOUND:
		if !s.cfg.Guests {
			s.writeError(w, r, natter.Errorf(natter.EUNAUTHORIZED, "wrong name or password"))
			return
		}
		if req.Password != "" {
			s.writeError(w, r, natter.Errorf(natter.EUNAUTHORIZED, "no account is named %q: sign in without a password to join as a guest, or register first", req.Name))
			return
		}
		user = natter.User{Name: req.Name, Guest: true}
	default:
		s.writeError(w, r, err)
		return
	}

	token := newToken()
	now := s.now().UTC()
	sess := natter.Session{TokenHash: tokenHash(token), UserName: user.Name, Guest: user.Guest, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.store.CreateSession(r.Context(), sess); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !user.Guest {
		// Suspended while signing in: the suspension's revocation may have missed this session.
		again, _, err := s.store.UserPasswordHash(r.Context(), user.Name)
		if err == nil && again.Suspended {
			err = suspendedError(user.Name)
		}
		if err == nil && again.Deleted {
			err = deletedAccountError(user.Name)
		}
		if err != nil {
			s.store.DeleteSession(context.WithoutCancel(r.Context()), sess.TokenHash)
			s.writeError(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookieName, Value: token, Path: "/", Expires: sess.ExpiresAt,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
	writeJSON(w, http.StatusOK, sessionBody{Token: token, User: user})
}

func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	a := authFrom(r.Context())
	if err := s.revokeSession(r.Context(), a.tokenHash); err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	w.WriteHeader(http.StatusNoContent)
}

// checkNewPassword refuses a password that registration would refuse.
func (s *Server) checkNewPassword(password string) error {
	if n := utf8.RuneCountInString(password); n < s.cfg.MinPasswordChars || len(password) > maxPasswordBytes {
		return natter.Errorf(natter.EINVALID, "password must have at least %d characters and at most %d bytes", s.cfg.MinPasswordChars, maxPasswordBytes)
	}
	return nil
}

type passwordChange struct {
	Password    string `json:"password"`
	NewPassword string `json:"new_password"`
}

// confirmPassword checks that password is the account name's, as a change of the account asks
// (a wrong one counts as a failed sign-in, and the failed sign-ins' limit applies): the account,
// or EFORBIDDEN with wrong as its message. then, if not nil, runs in the same slot of the password
// hashing's limit, once the password is right.
func (s *Server) confirmPassword(ctx context.Context, name, password, wrong string, then func()) (natter.User, error) {
	if err := s.signInFails.check(name); err != nil {
		return natter.User{}, err
	}
	user, hash, err := s.store.UserPasswordHash(ctx, name)
	if err != nil {
		return natter.User{}, err
	}
	ok := false
	if err := s.withHashSlot(ctx, func() {
		if ok = password != "" && len(password) <= maxPasswordBytes && checkPassword(hash, password); ok && then != nil {
			then()
		}
	}); err != nil {
		return natter.User{}, err
	}
	if !ok {
		s.signInFails.allow(name) // one failure spent
		return natter.User{}, natter.Errorf(natter.EFORBIDDEN, "%s", wrong)
	}
	return user, nil
}

// handleChangePassword sets a new password for the signed-in account, given its current one. Every
// other session of the account ends (and its connections close): whoever else knew the old
// password is signed out; the session that made the change goes on. A wrong current password
// counts as a failed sign-in of the account.
func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	a := authFrom(r.Context())
	var req passwordChange
	if err := decodeJSON(w, r, maxJSONRequestBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if a.user.Guest {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "%s is a guest, with no password to change: register an account first", a.user.Name))
		return
	}
	if err := s.checkNewPassword(req.NewPassword); err != nil {
		s.writeError(w, r, natter.Errorf(natter.EINVALID, "new %s", natter.ErrorMessage(err)))
		return
	}
	var newHash string
	user, err := s.confirmPassword(r.Context(), a.user.Name, req.Password, "the current password is not right", func() {
		newHash = hashPassword(req.NewPassword)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.SetPasswordHash(r.Context(), a.user.Name, newHash); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.revokeUserSessions(r.Context(), a.user.Name, a.tokenHash); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userBody{User: user})
}

// handleSignOutEverywhere ends every session of the signed-in account, this one too, and closes
// their connections. Guests can't: a guest name is not an account, and other people may be
// using it.
func (s *Server) handleSignOutEverywhere(w http.ResponseWriter, r *http.Request) {
	a := authFrom(r.Context())
	if a.user.Guest {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "%s is a guest: other people may be using the name, so only this session can sign out (DELETE /api/session)", a.user.Name))
		return
	}
	if _, err := s.revokeUserSessions(r.Context(), a.user.Name, ""); err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleWhoAmI(w http.ResponseWriter, r *http.Request) {
	a := authFrom(r.Context())
	writeJSON(w, http.StatusOK, userBody{User: a.user})
}

// auth is the signed-in identity of a request.
type auth struct {
	user      natter.User
	tokenHash string
	created   time.Time // the session's
	viaCookie bool
}

type authKey struct{}

func authFrom(ctx context.Context) auth {
	a, _ := ctx.Value(authKey{}).(auth)
	return a
}

// authenticate finds the session of r: the bearer header first, then (where allowQuery) ?token=,
// then the cookie.
func (s *Server) authenticate(r *http.Request, allowQuery bool) (auth, error) {
	var token string
	viaCookie := false
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || t == "" {
			return auth{}, natter.Errorf(natter.EUNAUTHORIZED, "the Authorization header must be \"Bearer <token>\"")
		}
		token = strings.TrimSpace(t)
	} else if t := r.URL.Query().Get("token"); allowQuery && t != "" {
		token = t
	} else if c, err := r.Cookie(sessionCookieName); err == nil && c.Value != "" {
		token = c.Value
		viaCookie = true
	}
	if token == "" {
		return auth{}, natter.Errorf(natter.EUNAUTHORIZED, "sign in first: send a session cookie or an Authorization: Bearer token")
	}
	sess, err := s.sessionByTokenHash(r.Context(), tokenHash(token))
	if err != nil {
		if natter.ErrorCode(err) == natter.EUNAUTHORIZED || natter.ErrorCode(err) == natter.ENOTFOUND {
			return auth{}, natter.Errorf(natter.EUNAUTHORIZED, "the session has ended or was never valid: sign in again")
		}
		return auth{}, err
	}
	return auth{user: natter.User{Name: sess.UserName, Guest: sess.Guest}, tokenHash: sess.TokenHash, created: sess.CreatedAt, viaCookie: viaCookie}, nil
}

func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc { return s.requireAuth(h, false) }

func (s *Server) authedQueryToken(h http.HandlerFunc) http.HandlerFunc {
	return s.requireAuth(h, true)
}

// requireAuth admits requests with a live session. A cookie-authenticated request that changes
// state must also pass the cross-origin check, since a browser attaches the cookie to requests
// that other sites trigger; a bearer token can't be attached by another site.
func (s *Server) requireAuth(h http.HandlerFunc, allowQuery bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := s.authenticate(r, allowQuery)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if a.viaCookie {
			if err := s.csrf.Check(r); err != nil {
				s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "cross-site request refused"))
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), authKey{}, a)))
	}
}

// rateLimiter is a token bucket per key (a user): rate tokens a second, up to burst.
type rateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time
	// refusal, if set, says why a key is refused and when to retry; the default speaks of sends.
	refusal func(key string, wait time.Duration) string
	// shared, if set, keeps the buckets (under scope) where every node sees them; the local
	// buckets stand in while it can't be reached.
	shared natter.SharedLimiter
	scope  string
	// lease, if positive, has the node take up to so many tokens at once from the shared bucket
	// and spend them itself (leased), so that only one check in about lease asks the store: the
	// limit still holds across the nodes, each of which may hold up to lease tokens unspent.
	lease int

	mu      sync.Mutex
	buckets map[string]*bucket
	leased  map[string]int // tokens taken from the shared bucket and not yet spent, per key
	sweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int, now func() time.Time) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), now: now, buckets: make(map[string]*bucket)}
}

// allow takes one token for user, or returns ERATELIMITED with the wait until the next one.
func (l *rateLimiter) allow(user string) error { return l.use(user, true) }

// check refuses as allow would, without taking a token.
func (l *rateLimiter) check(user string) error { return l.use(user, false) }

func (l *rateLimiter) use(user string, take bool) error {
	if l.rate < 0 {
		return nil
	}
	if l.shared != nil && l.lease > 0 {
		if err, ok := l.useLeased(user, take); ok {
			return err
		}
		// The store can't say now: the local bucket stands in.
	} else if l.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		wait, err := l.shared.TakeToken(ctx, l.scope+":"+user, l.rate, int(l.burst), take)
		cancel()
		if err == nil {
			if wait > 0 {
				return l.refuse(user, wait)
			}
			return nil
		}
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		// Full buckets carry no information: drop them so the map does not grow without bound.
		for u, b := range l.buckets {
			if math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate) >= l.burst {
				delete(l.buckets, u)
			}
		}
		l.sweep = now
	}
	b := l.buckets[user]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[user] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return l.refuse(user, time.Duration((1-b.tokens)/l.rate*float64(time.Second)))
	}
	if take {
		b.tokens--
	}
	return nil
}

// useLeased answers use from the tokens this node leased for user, leasing more from the shared
// bucket when there are none. ok is false when the shared bucket can't be reached.
func (l *rateLimiter) useLeased(user string, take bool) (err error, ok bool) {
	spend := func() bool {
		n := l.leased[user]
		if n == 0 {
			return false
		}
		if take {
			if n == 1 {
				delete(l.leased, user)
			} else {
				l.leased[user] = n - 1
			}
		}
		return true
	}
	l.mu.Lock()
	had := spend()
	l.mu.Unlock()
	if had {
		return nil, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	took, wait, lerr := l.shared.LeaseTokens(ctx, l.scope+":"+user, l.rate, int(l.burst), l.lease)
	cancel()
	if lerr != nil {
		return nil, false
	}
	if took == 0 {
		return l.refuse(user, wait), true
	}
	l.mu.Lock()
	if l.leased == nil {
		l.leased = make(map[string]int)
	}
	l.leased[user] += took
	spend()
	l.mu.Unlock()
	return nil, true
}

// refuse is the refusal of user, who may try again after wait.
func (l *rateLimiter) refuse(user string, wait time.Duration) error {
	msg := fmt.Sprintf("sending too fast: at most %g messages a second (bursts of %g); retry in %s", l.rate, l.burst, wait.Round(time.Millisecond))
	if l.refusal != nil {
		msg = l.refusal(user, wait)
	}
	return &retryError{err: &natter.Error{Code: natter.ERATELIMITED, Message: msg}, retryAfter: wait}
}

// Failed password sign-ins per account: signInFailBurst in a row, then one per
// signInFailEvery. Past that every password sign-in of the account is refused until the next
// attempt is due, the right password too: otherwise the guessing would go on. Guests, who have no
// password, are not counted.
const (
	signInFailBurst = 10
	signInFailEvery = 10 * time.Second
)

func newSignInLimiter(now func() time.Time) *rateLimiter {
	l := newRateLimiter(1/signInFailEvery.Seconds(), signInFailBurst, now)
	l.refusal = func(name string, wait time.Duration) string {
		return fmt.Sprintf("too many failed sign-ins for %q: at most %d in a row, then one every %s; retry in %s", name, signInFailBurst, signInFailEvery, (wait + time.Second - 1).Truncate(time.Second))
	}
	return l
}

// allowSignIn spends one of the client address's sign-ins (Config.SignInRate): every sign-in
// makes a session row that lasts SessionTTL, a guest's without a password, and every
// registration an account that lasts for ever.
func (s *Server) allowSignIn(r *http.Request) error {
	err := s.signIns.allow(addrKey(s.clientAddr(r)))
	if err != nil {
		s.warnUntrustedProxy(r, "sign-ins")
	}
	return err
}

// warnUntrustedProxy logs, once per process, that what (sign-ins, connections) was refused at a
// per-address limit for a peer that sends X-Forwarded-For or Forwarded without being a trusted
// proxy: behind
// an unconfigured reverse proxy every client counts as the proxy.
func (s *Server) warnUntrustedProxy(r *http.Request, what string) {
	if !sendsForwarded(r) || s.trustedProxy(parseHop(r.RemoteAddr)) || !s.proxyWarned.CompareAndSwap(false, true) {
		return
	}
	s.logger.Warn(what+" refused for an address that sends X-Forwarded-For or Forwarded but is not a trusted proxy: if it is your reverse proxy, pass --trusted-proxy so that each client counts on its own", "addr", parseHop(r.RemoteAddr).String())
}

// newAddrSignInLimiter bounds sign-ins and registrations per client address: perMinute a minute,
// in bursts of as many; negative: no limit.
func newAddrSignInLimiter(perMinute float64, now func() time.Time) *rateLimiter {
	l := newRateLimiter(perMinute/60, int(max(perMinute, 1)), now)
	l.refusal = func(addr string, wait time.Duration) string {
		return fmt.Sprintf("too many sign-ins from %s: at most %g a minute; retry in %s", addr, perMinute, (wait + time.Second - 1).Truncate(time.Second))
	}
	return l
}
