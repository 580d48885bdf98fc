// Package server is natter's HTTP face: pages, static files, the JSON API and the three real-time
// transports (WebSocket, Server-Sent Events, long-polling), all on one listener.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"natter"
	"natter/hub"
)

// Keepalive timing, documented together because they depend on each other: a WebSocket ping or an
// SSE comment goes out whenever a connection has been quiet for KeepaliveIdle, checked every
// quarter of that, so something is written at least every 25 s (the contract's bound for SSE); a
// WebSocket peer from which nothing (not even a pong) has been read for PongWait is dead.
const (
	DefaultKeepaliveIdle = 20 * time.Second
	// DefaultWriteCoalesce trades latency in busy rooms for CPU: a connection is written at most
	// once per interval, so a room at 100 msg/s costs 13 writes a second per connection instead
	// of 100. At 75 ms a fan-out to 1,000 at 100 msg/s took 2.7 CPU-s per million deliveries
	// (3.5 at 50 ms, 2.6 at 100 ms; docs/benchmarks.md). Quiet rooms, acks and errors never wait.
	DefaultWriteCoalesce = 75 * time.Millisecond
	DefaultPollerGrace   = 15 * time.Second
	DefaultPongWait      = 60 * time.Second
)

// Connection limits (Config.MaxConns, Config.MaxUserConns, Config.MaxAddrConns). A long-lived connection holds a file
// descriptor: a server that runs out of them can't even accept a connection to say no, so natter
// refuses long-lived connections while FileReserve descriptors (or a quarter of the limit, if
// that is fewer) are left for the rest (the database, short requests, connections on their way
// in).
const (
	DefaultMaxConns     = 100_000
	DefaultMaxUserConns = 256
	DefaultMaxAddrConns = 1024
	// DefaultMaxConnRooms bounds the rooms one WebSocket is subscribed to at once
	// (Config.MaxConnRooms).
	DefaultMaxConnRooms = 100
	FileReserve         = 1024
)

// fileBudget returns how many long-lived connections an open-file limit of n allows: n less
// FileReserve, or less a quarter of n where that is fewer (a low limit still leaves most of it to
// connections); 0 when n is 0 (unknown).
func fileBudget(n int) int {
	if n <= 0 {
		return 0
	}
	return max(n-min(FileReserve, n/4), 1)
}

// The HTTP server's timeouts for requests that are not streams. natter serve gives its
// http.Server these (app.Open), and the long-poll code needs the idle one: a connection kept
// after a long-poll's answer waits for its next request outside net/http.
const (
	// DefaultReadHeaderTimeout bounds how long a client may take to send a request's header once
	// its first bytes have come (on a new connection: from the connection's start).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long a kept-alive connection may wait for its next request.
	DefaultIdleTimeout = 120 * time.Second
)

// Defaults for Config's zero fields.
const (
	DefaultSessionTTL   = 30 * 24 * time.Hour
	DefaultMinPassword  = 6
	DefaultSendRate     = 20 // messages per second per user, sustained
	DefaultSendBurst    = 100
	DefaultSearchRate   = 2 // searches per second per user, sustained
	DefaultSearchBurst  = 10
	DefaultRoomRate     = 10 // rooms (direct conversations too) a user may make per minute, sustained
	DefaultRoomBurst    = 20
	DefaultChangeRate   = 60 // room and account changes a user may make per minute, sustained
	DefaultChangeBurst  = 30
	DefaultSignInRate   = 60 // sign-ins and registrations per minute per client address, in bursts of as many
	maxPasswordBytes    = 1024
	maxJSONRequestBytes = 1 << 20
	sessionCookieName   = "natter_session"
)

// Config configures a Server. Zero fields take the documented defaults.
type Config struct {
	Store  natter.Store
	Hub    *hub.Hub
	Logger *slog.Logger
	Now    func() time.Time
	Limits natter.Limits

	// Guests lets a name that is not registered sign in without a password.
	Guests bool
	// SessionTTL is how long a sign-in lasts (default 30 days).
	SessionTTL time.Duration
	// MinPasswordChars is the shortest password accepted at registration (default 6).
	MinPasswordChars int
	// SendRate and SendBurst bound how fast one user may send (token bucket); a negative
	// SendRate turns the limit off. Defaults: 20 messages/s sustained, bursts of 100. On a store
	// several nodes share (a natter.SharedLimiter) it holds across them: each node takes tokens
	// from the shared bucket a tenth of a burst at a time (at most 10), so a user's bursts across
	// N nodes may exceed SendBurst by up to N such leases, and the sustained rate holds.
	SendRate  float64
	SendBurst int
	// SearchRate and SearchBurst bound how often one user may search a room (each search reads
	// up to natter.SearchScan log entries); a negative SearchRate turns the limit off. Defaults:
	// 2 searches/s sustained, bursts of 10. On a store several nodes share it holds across them.
	SearchRate  float64
	SearchBurst int
	// RoomRate and RoomBurst bound how many rooms one user may make (direct conversations
	// included; opening one that exists is free): RoomRate a minute, sustained, in bursts of
	// RoomBurst. A negative RoomRate turns the limit off. Defaults: 10 a minute, bursts of 20. On
	// a store several nodes share it holds across them.
	RoomRate  float64
	RoomBurst int
	// ChangeRate and ChangeBurst bound the changes one user makes to rooms and accounts
	// (members added or removed, bans made or lifted, renames, conversations closed,
	// suspensions, password resets), each a write the store makes durable on its own: ChangeRate a minute,
	// sustained, in bursts of ChangeBurst. A negative ChangeRate turns the limit off. Defaults: 60
	// a minute, bursts of 30. On a store several nodes share it holds across them.
	ChangeRate  float64
	ChangeBurst int
	// SignInRate bounds sign-ins and registrations per client address (see TrustedProxies; an
	// IPv6 client counts by its /64): so many a minute, in bursts of as many. More are refused
	// with 429 rate_limited. Default DefaultSignInRate; negative: no limit. On a store several
	// nodes share (a natter.SharedLimiter) it holds across the nodes, like the failed password
	// sign-ins per account.
	SignInRate float64
	// Retention, if positive, is how long messages keep their words: every RetentionEvery
	// (default 10 minutes) the store erases those of the messages and edits older than that, as
	// a deletion would (natter.MessageStore.ExpireBefore). 0 keeps them for ever.
	Retention      time.Duration
	RetentionEvery time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For (or, without it, Forwarded) is
	// believed: a request from one of them counts against the nearest address in that header that
	// is not one of them. Others' headers are ignored.
	TrustedProxies []netip.Prefix
	// QueueBytes bounds each connection's outgoing queue (default hub.DefaultQueueBytes).
	QueueBytes int
	// WriteCoalesce is the shortest time between two writes to one WebSocket or SSE connection
	// (default 50 ms; negative: none). Messages that arrive faster than that go out together in
	// one system call, which is what keeps a busy room's fan-out cheap; a message that arrives
	// after a quiet spell is written at once.
	WriteCoalesce time.Duration
	// KeepaliveIdle is how long a WebSocket or SSE connection may be quiet before the server pings
	// it or sends an SSE comment (default 20 s). PongWait is how long a WebSocket may send nothing,
	// not even a pong, before it is considered dead (default 60 s; at least 2 x KeepaliveIdle).
	KeepaliveIdle time.Duration
	PongWait      time.Duration
	// PollerGrace is how long after its wait a long-poller stays online without polling again
	// (default 15 s): the time a client takes to handle an answer and ask again.
	PollerGrace time.Duration
	// MaxConns bounds the long-lived connections (WebSockets, SSE streams and parked long-polls)
	// open at once: more are refused with 503 unavailable. Default: DefaultMaxConns, or the
	// process's open-file limit less its reserve where that is lower (fileBudget); negative: no
	// limit.
	// MaxUserConns bounds them per user (default DefaultMaxUserConns; negative: no limit): more
	// are refused with 429 rate_limited. MaxAddrConns bounds them per client address, counted
	// as the sign-ins are (clientAddr, addrKey: behind a trusted proxy, the client's), so that
	// one host cannot take every place with guest names (default DefaultMaxAddrConns;
	// negative: no limit); more are refused with 429 rate_limited. All three count on this node
	// only.
	MaxConns     int
	MaxUserConns int
	MaxAddrConns int
	// MaxConnRooms bounds the rooms one WebSocket may be subscribed to at once (default
	// DefaultMaxConnRooms): a subscribe past it is refused with an error frame, invalid, and
	// the connection's other subscriptions go on.
	MaxConnRooms int
	// Metrics serves GET /metrics: counts of connections, messages and refusals, the send
	// latency and the process's memory, in the Prometheus text format (README, "Metrics").
	Metrics bool
	// IdleTimeout is how long a connection kept alive after a long-poll's answer may wait for
	// the client's next request before it is closed (default DefaultIdleTimeout). Give the
	// http.Server the same IdleTimeout: it applies it to every other kept-alive connection.
	IdleTimeout time.Duration
	// AllowedOrigins lists extra origins (scheme://host[:port]) whose pages may open WebSockets
	// and send cookie-authenticated requests; the server's own origin is always allowed.
	AllowedOrigins []string
	// Admins are the accounts that moderate every room but direct conversations (ban users from
	// posting in it, delete anyone's message, rename it) and may suspend accounts. A guest of
	// such a name is no admin.
	Admins []string
	// StaticDirs and TemplateDirs are searched in order before the embedded web files.
	StaticDirs   []string
	TemplateDirs []string
}

// Server serves natter over HTTP.
type Server struct {
	mentions mentionCounts // per account and room, how many unread messages name it (api.go)
	cfg      Config
	store    natter.Store
	hub      *hub.Hub
	logger   *slog.Logger
	now      func() time.Time
	limits   natter.Limits

	handler http.Handler
	pages   *pages
	limiter *rateLimiter
	// lookups bounds the store lookups of refused sends (is this client_id a retry of a stored
	// message?) to the send rate, so that sending at the limit cannot flood the committer.
	lookups *rateLimiter
	// searches bounds each user's searches (Config.SearchRate).
	searches *rateLimiter
	// roomsMade bounds the rooms each user makes (Config.RoomRate).
	roomsMade *rateLimiter
	// changes bounds each user's changes to rooms and accounts (Config.ChangeRate).
	changes *rateLimiter
	// signInFails bounds failed password sign-ins per account (newSignInLimiter).
	signInFails *rateLimiter
	// signIns bounds sign-ins and registrations per client address (newAddrSignInLimiter).
	signIns     *rateLimiter
	proxyWarned atomic.Bool // allowSignIn has logged about an untrusted X-Forwarded-For
	sessions    sessionCache
	hashSem     chan struct{}
	csrf        *http.CrossOriginProtection
	draining    atomic.Bool
	stop        chan struct{} // closed when shutdown begins: parked long-polls answer at once

	connsMu sync.Mutex
	conns   map[liveConn]connOwner // the connections and whose they are
	// slots, userSlots and addrSlots count the places takeSlot gave: the connections in conns
	// and those on their way there.
	slots     int
	userSlots map[string]int
	addrSlots map[string]int

	reuse       atomic.Pointer[reuseListener] // set by Listener: where answered long-polls go back
	pollAnswers pollAnswerGroup
	frameHook   func(where string, payload []byte) // tests: runs on each WebSocket frame read ("read") and handled ("handle")
	afterReads  atomic.Int64                       // reads of the log after a cursor in handleMessages, for tests

	pushAfter   atomic.Int32 // pushAfterTexts; tests change it
	pushReaders atomic.Int64 // times WebSocket readers switched to wsReadState or, parked ones, to a goroutine of their own, for tests
	noPark      atomic.Bool  // tests: WebSocket readers keep a goroutine while they wait (readLoop)
	busyGap     atomic.Int64 // nanoseconds: defaultBusyGap; tests change it
	pollWrite   atomic.Int64 // nanoseconds: how long a long-poll answer may take to write; tests change it
	parkFailed  atomic.Bool  // noteParkFailed has logged

	metrics  serverMetrics
	ownMarks *ownMarks // what accounts send moves their read marks
	access   roomAccess
	bans     banCache        // the banned users of the rooms this node has met (moderation.go)
	admins   map[string]bool // Config.Admins
	started  time.Time
}

// newOutbox makes the output queue of a hijacked connection.
func (s *Server) newOutbox(conn net.Conn, onClose func()) *hub.Outbox {
	out := hub.NewOutbox(conn, s.cfg.QueueBytes, onClose)
	out.Coalesce = max(s.cfg.WriteCoalesce, 0)
	return out
}

// liveConn is a hijacked connection (WebSocket or SSE) that the keepalive sweeper and shutdown
// must reach, since http.Server no longer tracks it.
type liveConn interface {
	keepalive(now time.Time)
	goingAway()
	// signedOut closes the connection because its session ended: a WebSocket with 4001
	// "signed out", an SSE stream and a parked long-poll as at shutdown (the client's next
	// request gets 401).
	signedOut()
	// leftRoom ends what the connection receives of room, whose member its user no longer is:
	// a WebSocket's subscription to it (with the error a new subscribe would get), an event
	// stream or a parked long-poll of it (the client's next request gets 404). The rest goes on.
	leftRoom(room string)
	done() <-chan struct{}
}

// connOwner is the user and session of a live connection.
type connOwner struct {
	slot      // whose it is: user and client address
	tokenHash string
	created   time.Time // the session's
}

// New returns a Server. It panics if Store or Hub is missing, which is a wiring bug.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Hub == nil {
		panic("server: Config.Store and Config.Hub are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MinPasswordChars <= 0 {
		cfg.MinPasswordChars = DefaultMinPassword
	}
	if cfg.SendRate == 0 {
		cfg.SendRate = DefaultSendRate
	}
	if cfg.SendBurst <= 0 {
		cfg.SendBurst = DefaultSendBurst
	}
	if cfg.SearchRate == 0 {
		cfg.SearchRate = DefaultSearchRate
	}
	if cfg.SearchBurst <= 0 {
		cfg.SearchBurst = DefaultSearchBurst
	}
	if cfg.SignInRate == 0 {
		cfg.SignInRate = DefaultSignInRate
	}
	if cfg.RoomRate == 0 {
		cfg.RoomRate = DefaultRoomRate
	}
	if cfg.RoomBurst <= 0 {
		cfg.RoomBurst = DefaultRoomBurst
	}
	if cfg.ChangeRate == 0 {
		cfg.ChangeRate = DefaultChangeRate
	}
	if cfg.ChangeBurst <= 0 {
		cfg.ChangeBurst = DefaultChangeBurst
	}
	if cfg.PollerGrace <= 0 {
		cfg.PollerGrace = DefaultPollerGrace
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
		if n := fileBudget(openFileLimit()); n > 0 {
			cfg.MaxConns = min(cfg.MaxConns, n)
		}
	}
	if cfg.MaxConnRooms <= 0 {
		cfg.MaxConnRooms = DefaultMaxConnRooms
	}
	if cfg.MaxUserConns == 0 {
		cfg.MaxUserConns = DefaultMaxUserConns
	}
	if cfg.MaxAddrConns == 0 {
		cfg.MaxAddrConns = DefaultMaxAddrConns
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WriteCoalesce == 0 {
		cfg.WriteCoalesce = DefaultWriteCoalesce
	}
	if cfg.KeepaliveIdle <= 0 {
		cfg.KeepaliveIdle = DefaultKeepaliveIdle
	}
	if cfg.PongWait <= 0 {
		cfg.PongWait = DefaultPongWait * cfg.KeepaliveIdle / DefaultKeepaliveIdle
	}
	cfg.PongWait = max(cfg.PongWait, 2*cfg.KeepaliveIdle) // a live peer always has time to answer a ping
	s := &Server{
		cfg:       cfg,
		store:     cfg.Store,
		hub:       cfg.Hub,
		logger:    cfg.Logger,
		now:       cfg.Now,
		limits:    cfg.Limits.WithDefaults(),
		hashSem:   make(chan struct{}, 2),
		stop:      make(chan struct{}),
		started:   time.Now(),
		conns:     make(map[liveConn]connOwner),
		userSlots: make(map[string]int),
		addrSlots: make(map[string]int),
	}
	admins, err := adminSet(cfg.Admins)
	if err != nil {
		return nil, err
	}
	s.admins = admins
	s.pushAfter.Store(pushAfterTexts)
	s.busyGap.Store(int64(defaultBusyGap))
	s.pollWrite.Store(int64(pollWriteTimeout))
	s.limiter = newRateLimiter(cfg.SendRate, cfg.SendBurst, cfg.Now)
	s.lookups = newRateLimiter(cfg.SendRate, cfg.SendBurst, cfg.Now)
	s.searches = newRateLimiter(cfg.SearchRate, cfg.SearchBurst, cfg.Now)
	s.searches.refusal = func(_ string, wait time.Duration) string {
		return fmt.Sprintf("searching too fast: at most %g searches a second (bursts of %d); retry in %s", cfg.SearchRate, cfg.SearchBurst, wait.Round(time.Millisecond))
	}
	s.roomsMade = newRateLimiter(cfg.RoomRate/60, cfg.RoomBurst, cfg.Now)
	s.roomsMade.refusal = func(_ string, wait time.Duration) string {
		return fmt.Sprintf("making rooms too fast: at most %g a minute (bursts of %d), direct conversations included; retry in %s", cfg.RoomRate, cfg.RoomBurst, max(wait.Round(100*time.Millisecond), 100*time.Millisecond))
	}
	s.changes = newRateLimiter(cfg.ChangeRate/60, cfg.ChangeBurst, cfg.Now)
	s.changes.refusal = func(_ string, wait time.Duration) string {
		return fmt.Sprintf("changing rooms and accounts too fast: at most %g changes a minute (bursts of %d); retry in %s", cfg.ChangeRate, cfg.ChangeBurst, max(wait.Round(100*time.Millisecond), 100*time.Millisecond))
	}
	s.signInFails = newSignInLimiter(cfg.Now)
	s.signIns = newAddrSignInLimiter(cfg.SignInRate, cfg.Now)
	if shared, ok := cfg.Store.(natter.SharedLimiter); ok {
		// Several nodes on one store: the sign-in limits hold across them, not on each.
		s.signInFails.shared, s.signInFails.scope = shared, "signin-fails"
		s.signIns.shared, s.signIns.scope = shared, "signins"
		s.searches.shared, s.searches.scope = shared, "searches"
		s.roomsMade.shared, s.roomsMade.scope = shared, "rooms"
		s.changes.shared, s.changes.scope = shared, "changes"
		// Sends too, from leases: asking the store on every send would add a round trip to each.
		s.limiter.shared, s.limiter.scope = shared, "sends"
		s.limiter.lease = min(max(cfg.SendBurst/10, 1), 10)
	}
	s.csrf = http.NewCrossOriginProtection()
	for _, o := range cfg.AllowedOrigins {
		if err := s.csrf.AddTrustedOrigin(o); err != nil {
			return nil, natter.Errorf(natter.EINVALID, "allowed origin %q: %v", o, err)
		}
	}
	if need := s.maxSendRequestBytes() + 256; int64(s.limits.MaxFrameBytes) < need {
		return nil, natter.Errorf(natter.EINVALID, "the WebSocket frame limit (%d bytes) is too small for the body limit of %d characters: a send frame can take %d bytes; raise the frame limit", s.limits.MaxFrameBytes, s.limits.MaxBodyChars, need)
	}
	p, err := newPages(s)
	if err != nil {
		return nil, err
	}
	s.pages = p
	s.handler = s.routes()
	go s.keepaliveLoop()
	if cfg.Retention > 0 {
		go s.retentionLoop()
	}
	s.ownMarks = newOwnMarks()
	go s.ownMarks.loop(s)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	if s.cfg.Metrics {
		mux.HandleFunc("GET /metrics", s.handleMetrics)
	}

	mux.HandleFunc("POST /api/users", s.handleRegister)
	mux.HandleFunc("POST /api/session", s.handleSignIn)
	mux.HandleFunc("DELETE /api/session", s.authed(s.handleSignOut))
	mux.HandleFunc("GET /api/session", s.authed(s.handleWhoAmI))
	mux.HandleFunc("PUT /api/account/password", s.authed(s.handleChangePassword))
	mux.HandleFunc("DELETE /api/account/sessions", s.authed(s.handleSignOutEverywhere))
	mux.HandleFunc("DELETE /api/account", s.authed(s.handleDeleteAccount))

	mux.HandleFunc("GET /api/rooms", s.authed(s.handleListRooms))
	mux.HandleFunc("POST /api/rooms", s.authed(s.handleCreateRoom))
	mux.HandleFunc("GET /api/rooms/{room}", s.authed(s.handleGetRoom))
	mux.HandleFunc("PATCH /api/rooms/{room}", s.authed(s.handleRenameRoom))
	mux.HandleFunc("DELETE /api/rooms/{room}", s.authed(s.handleDeleteRoom))
	mux.HandleFunc("POST /api/dms", s.authed(s.handleDirect))
	mux.HandleFunc("DELETE /api/dms/{user}", s.authed(s.handleCloseDirect))
	mux.HandleFunc("GET /api/rooms/{room}/bans", s.authed(s.handleBans))
	mux.HandleFunc("PUT /api/rooms/{room}/bans/{user}", s.authed(s.handleBan))
	mux.HandleFunc("DELETE /api/rooms/{room}/bans/{user}", s.authed(s.handleUnban))
	mux.HandleFunc("GET /api/suspensions", s.authed(s.handleSuspensions))
	mux.HandleFunc("GET /api/rooms/{room}/pins", s.authed(s.handlePins))
	mux.HandleFunc("GET /api/rooms/{room}/messages/{seq}/edits", s.authed(s.handleEdits))
	mux.HandleFunc("PUT /api/users/{name}/suspension", s.authed(s.handleSuspend))
	mux.HandleFunc("DELETE /api/users/{name}/suspension", s.authed(s.handleSuspend))
	mux.HandleFunc("PUT /api/users/{name}/password", s.authed(s.handleResetPassword))
	mux.HandleFunc("GET /api/rooms/{room}/members", s.authed(s.handleMembers))
	mux.HandleFunc("PUT /api/rooms/{room}/members/{user}", s.authed(s.handleAddMember))
	mux.HandleFunc("DELETE /api/rooms/{room}/members/{user}", s.authed(s.handleRemoveMember))
	mux.HandleFunc("GET /api/rooms/{room}/invites", s.authed(s.handleInvites))
	mux.HandleFunc("POST /api/rooms/{room}/invites", s.authed(s.handleCreateInvite))
	mux.HandleFunc("DELETE /api/rooms/{room}/invites/{id}", s.authed(s.handleRevokeInvite))
	mux.HandleFunc("POST /api/rooms/{room}/join", s.authed(s.handleJoin))
	mux.HandleFunc("PUT /api/rooms/{room}/mute", s.authed(s.handleMute))
	mux.HandleFunc("DELETE /api/rooms/{room}/mute", s.authed(s.handleMute))
	mux.HandleFunc("GET /api/rooms/{room}/messages", s.authed(s.handleReadMessages))
	mux.HandleFunc("POST /api/rooms/{room}/messages", s.authed(s.handlePostMessage))
	mux.HandleFunc("GET /api/rooms/{room}/presence", s.authed(s.handlePresence))
	mux.HandleFunc("PUT /api/rooms/{room}/read", s.authed(s.handleSetReadMark))
	mux.HandleFunc("POST /api/rooms/{room}/typing", s.authed(s.handleTyping))
	mux.HandleFunc("GET /api/rooms/{room}/search", s.authed(s.handleSearch))
	mux.HandleFunc("GET /api/rooms/{room}/events", s.authedQueryToken(s.handleSSE))
	mux.HandleFunc("GET /ws", s.authedQueryToken(s.handleWS))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, natter.Errorf(natter.ENOTFOUND, "no API endpoint %s %s", r.Method, r.URL.Path))
	})

	s.pages.register(mux)
	return mux
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady answers 200 while the server takes traffic and its store answers, 503 otherwise, so
// a load balancer stops routing here as soon as shutdown begins.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.writeError(w, r, natter.Errorf(natter.EUNAVAILABLE, "shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.store.Room(ctx, natter.DefaultRoom); err != nil && natter.ErrorCode(err) != natter.ENOTFOUND {
		s.writeError(w, r, natter.Errorf(natter.EUNAVAILABLE, "store is not answering"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// slot is one place for a long-lived connection, and whom it counts against.
type slot struct {
	user string
	addr string // addrKey of the client's address
}

// takeSlot claims a place for one more long-lived connection (a WebSocket, an event stream, a
// parked long-poll) of user, from the client that sent r, within MaxConns, MaxUserConns and
// MaxAddrConns. It comes before the connection is upgraded or hijacked, so that a refusal is an
// ordinary HTTP error; the place is given back by removeConn once the connection is added, or by
// releaseSlot if it never is.
func (s *Server) takeSlot(r *http.Request, user string) (slot, error) {
	a := s.clientAddr(r)
	sl := slot{user: user, addr: addrKey(a)}
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.cfg.MaxConns > 0 && s.slots >= s.cfg.MaxConns {
		s.metrics.refused[0].Add(1)
		return slot{}, &retryError{
			err:        natter.Errorf(natter.EUNAVAILABLE, "natter is at its limit of %d open connections (WebSockets, event streams and waiting long-polls); try again later", s.cfg.MaxConns),
			retryAfter: connRetryAfter,
		}
	}
	if n := s.userSlots[user]; s.cfg.MaxUserConns > 0 && n >= s.cfg.MaxUserConns {
		s.metrics.refused[1].Add(1)
		return slot{}, &retryError{
			err:        natter.Errorf(natter.ERATELIMITED, "%s already has %d open %s (WebSockets, event streams and waiting long-polls), the most one user may have; close one first", user, n, plural(n, "connection", "connections")),
			retryAfter: connRetryAfter,
		}
	}
	if n := s.addrSlots[sl.addr]; s.cfg.MaxAddrConns > 0 && n >= s.cfg.MaxAddrConns {
		s.metrics.refused[2].Add(1)
		s.warnUntrustedProxy(r, "connections")
		return slot{}, &retryError{
			err:        natter.Errorf(natter.ERATELIMITED, "%s already has %d open %s (WebSockets, event streams and waiting long-polls), the most one client address may have; close one first", sl.addr, n, plural(n, "connection", "connections")),
			retryAfter: connRetryAfter,
		}
	}
	s.slots++
	s.userSlots[sl.user]++
	s.addrSlots[sl.addr]++
	return sl, nil
}

// connRetryAfter is the Retry-After of a connection refused at a limit.
const connRetryAfter = 5 * time.Second

// releaseSlot gives back a place takeSlot gave for a connection that was never added.
func (s *Server) releaseSlot(sl slot) {
	s.connsMu.Lock()
	s.releaseSlotLocked(sl)
	s.connsMu.Unlock()
}

func (s *Server) releaseSlotLocked(sl slot) {
	s.slots--
	if s.userSlots[sl.user]--; s.userSlots[sl.user] <= 0 {
		delete(s.userSlots, sl.user)
	}
	if s.addrSlots[sl.addr]--; s.addrSlots[sl.addr] <= 0 {
		delete(s.addrSlots, sl.addr)
	}
}

// addConn registers c, opened by the session a in the place sl (takeSlot), for keepalives,
// revocation and shutdown; the place goes back when c is removed. While shutting down, or once
// a's session has been revoked (it was authenticated before the revocation, and is added after
// its connections were closed), it refuses c and gives the place back at once.
func (s *Server) addConn(c liveConn, a auth, sl slot) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.draining.Load() || s.sessions.revoked(a.tokenHash, a.user.Name, a.created, s.now()) {
		s.releaseSlotLocked(sl)
		return false
	}
	s.conns[c] = connOwner{slot: sl, tokenHash: a.tokenHash, created: a.created}
	s.metrics.conns[transportOf(c)].Add(1)
	return true
}

func (s *Server) removeConn(c liveConn) {
	s.connsMu.Lock()
	if owner, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.metrics.conns[transportOf(c)].Add(-1)
		s.releaseSlotLocked(owner.slot)
	}
	s.connsMu.Unlock()
}

// ConnLimits returns the connection limits s runs with (Config.MaxConns, MaxUserConns and
// MaxAddrConns after their defaults; negative: none).
func (s *Server) ConnLimits() (total, perUser, perAddr int) {
	return s.cfg.MaxConns, s.cfg.MaxUserConns, s.cfg.MaxAddrConns
}

// ConnCount returns how many WebSockets, SSE streams and parked long-polls are open.
func (s *Server) ConnCount() int {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	return len(s.conns)
}

// keepaliveLoop is the one timer for all hijacked connections: no connection has a timer or a
// goroutine of its own for keepalives.
func (s *Server) keepaliveLoop() {
	t := time.NewTicker(s.cfg.KeepaliveIdle / 4)
	defer t.Stop()
	var batch []liveConn
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.connsMu.Lock()
			batch = batch[:0]
			for c := range s.conns {
				batch = append(batch, c)
			}
			s.connsMu.Unlock()
			for _, c := range batch {
				c.keepalive(now)
			}
			clear(batch)
			s.hub.ExpirePollers(s.now())
		}
	}
}

// BeginShutdown marks the server as draining (readyz turns 503), answers parked long-polls, and
// tells WebSocket clients "going away" and ends SSE streams. Call it before http.Server.Shutdown,
// which does not know hijacked connections; then call Wait.
func (s *Server) BeginShutdown() {
	s.connsMu.Lock()
	if s.draining.Swap(true) {
		s.connsMu.Unlock()
		return
	}
	conns := make([]liveConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.connsMu.Unlock()
	close(s.stop)
	for _, c := range conns {
		c.goingAway()
	}
}

// WaitConns waits until every hijacked connection has flushed and closed, or ctx ends.
func (s *Server) WaitConns(ctx context.Context) error {
	s.connsMu.Lock()
	conns := make([]liveConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.connsMu.Unlock()
	for _, c := range conns {
		select {
		case <-c.done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// atomicSub holds a subscription that another goroutine may end.
type atomicSub struct {
	p atomic.Pointer[hub.Subscription]
}

func (a *atomicSub) Store(s *hub.Subscription) { a.p.Store(s) }

func (a *atomicSub) Swap(s *hub.Subscription) *hub.Subscription { return a.p.Swap(s) }

// noteParkFailed logs, once per server, that a connection could not be parked and keeps a
// goroutine instead: memory per idle connection is then what it is without parking.
func (s *Server) noteParkFailed(err error) {
	if s.parkFailed.CompareAndSwap(false, true) {
		s.logger.Warn("server: cannot park idle connections; they keep a goroutine each", "err", err)
	}
}

// logPanic logs a panic recovered in a connection's goroutine, with its stack.
func (s *Server) logPanic(where string, v any) {
	s.logger.Error("server: panic in "+where+"; its connection is closed", "panic", v, "stack", string(debug.Stack()))
}

// plural returns one or many as n asks.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
