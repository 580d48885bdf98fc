// Package redisstore is a natter.Store kept in Redis, so that several natter nodes can share one
// set of rooms, logs, accounts and sessions.
//
// Each room's log is a Redis stream whose entry IDs are the seqs ("42-0"). An append is one Lua
// script: it checks the room and the client_id, takes the next seq from the room's counter, adds
// the entry, records the client_id and publishes the message on one Pub/Sub channel, all at once,
// so seqs are gapless and the channel carries every room's messages in seq order.
//
// Every node subscribes to that channel and hands what arrives to its OnCommit in seq order per
// room, with no gap: a message that comes after a gap (a subscription dropped and resumed) is
// preceded by the missing ones, read from the stream, and after every (re)subscription the
// counters are compared with what was delivered. Pub/Sub may lose messages; the streams do not.
//
// Durability is Redis's: an append is acknowledged once Redis has run the script, so with
// appendonly yes and appendfsync always an acknowledged message survives a crash of Redis too.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"natter"
)

// Config configures a Store.
type Config struct {
	// URL is the Redis server, e.g. redis://127.0.0.1:6379/0 (redis.ParseURL's form). Required.
	URL string
	// Prefix begins every key and the channel (default "natter"): nodes that share a prefix
	// share their data; other prefixes on the same Redis are other natters.
	Prefix string
	// OnCommit receives every node's stored messages, in seq order per room without a gap, from
	// one goroutine. Nil means nobody listens.
	OnCommit natter.CommitFunc
	// Logger reports a lost subscription and the like; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for account and session times (message times are Redis's, so that
	// every node's messages share one clock); nil means time.Now.
	Now func() time.Time
	// MaxBodyChars bounds a message body in characters; 0 means natter.DefaultMaxBodyChars.
	MaxBodyChars int
	// OnRevoke receives every node's session revocations (DeleteSession, DeleteUserSessions),
	// this node's too, from the goroutine that calls OnCommit: a server drops the sessions from
	// its cache and closes the connections they opened. It also hears of removed members
	// (RemoveMember: Revocation.Room) and of changed bans (BanUser, UnbanUser: Revocation.Ban).
	// Nil means nobody listens.
	OnRevoke func(Revocation)
	// OnResubscribe is called (from the same goroutine) after the subscription was lost and is
	// back: revocations published meanwhile were missed, so a server checks the sessions of its
	// open connections again. Nil means nobody listens.
	OnResubscribe func()
	// ClientName names this node's connections in Redis's CLIENT LIST (default
	// "natter-HOST-PID").
	ClientName string
}

// Revocation is a revocation of sessions: the one with TokenHash, or, when it is "", every
// session of User made up to At except Keep.
type Revocation struct {
	TokenHash  string
	User, Keep string
	At         time.Time
	// Room, when set, says that User is no longer a member of this private room (RemoveMember);
	// no session ends. With Ban, it is the room of the ban instead.
	Room string
	// Ban says that User's ban in Room changed (BanUser, UnbanUser): no session ends and no
	// membership changed; read the room's bans (Bans) for where it stands now.
	Ban bool
	// Deleted says that Room was deleted (DeleteRoom); User is empty. It also comes after a
	// resubscription for a room deleted while the note could not arrive.
	Deleted bool
}

// Store is a natter.Store in Redis.
type Store struct {
	rdb      *redis.Client
	p        string // the key prefix with its colon
	log      *slog.Logger
	now      func() time.Time
	onCommit natter.CommitFunc
	onRevoke func(Revocation)
	onResub  func()
	maxBody  int

	sub  *redis.PubSub
	stop context.CancelFunc
	done chan struct{}

	pres     *presence
	presDone chan struct{}

	// The queue of sends and lookups, and its batcher (batch.go). qmu guards qclosed and the
	// closing of queue, so that no send races with it.
	qmu       sync.RWMutex
	qclosed   bool
	queue     chan *call
	batchDone chan struct{}
	// last is the highest seq handed to OnCommit per room; the delivery goroutine's alone.
	last map[string]int64

	// For /metrics.
	subscribed     atomic.Bool  // the subscription is in place
	resubscribed   atomic.Int64 // times it was lost and came back
	fromChannel    atomic.Int64 // commits delivered as the channel brought them
	fromLog        atomic.Int64 // commits delivered from the streams, after a gap or a resubscription
	presenceLosses atomic.Int64 // presence changes dropped because the queue was full

	closeOnce sync.Once
	closeErr  error
}

var _ natter.Store = (*Store)(nil)

// Metrics reports the health of this node's link to Redis, for GET /metrics.
func (s *Store) Metrics() []natter.Metric {
	up := 0.0
	if s.subscribed.Load() {
		up = 1
	}
	return []natter.Metric{
		{Name: "natter_redis_subscribed", Type: "gauge", Help: "1 while this node is subscribed to the commits in Redis, 0 while it is not (and tries again).", Value: up},
		{Name: "natter_redis_resubscriptions_total", Type: "counter", Help: "Times the subscription was lost and came back (each followed by a catch-up from the streams).", Value: float64(s.resubscribed.Load())},
		{Name: "natter_redis_commits_total", Type: "counter", Help: "Commits (of every node) handed to this node's subscribers as the channel brought them.", Value: float64(s.fromChannel.Load())},
		{Name: "natter_redis_caught_up_total", Type: "counter", Help: "Commits read back from the streams because the channel lost them (after a gap or a resubscription).", Value: float64(s.fromLog.Load())},
		{Name: "natter_redis_presence_dropped_total", Type: "counter", Help: "Presence changes not published because the queue was full (the next snapshot tells the other nodes).", Value: float64(s.presenceLosses.Load())},
	}
}

// clientLog routes the Redis client's own messages (a failed dial, each time it retries) to the
// log of the store opened last (the client has one logger per process), at debug level: the
// store's own warnings already say when Redis can't be reached, once.
type clientLog struct{ log *slog.Logger }

func (l clientLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug("redis client: " + fmt.Sprintf(format, v...))
}

// Open connects to Redis, makes sure the default room exists and starts delivering commits. It
// returns once the subscription is in place: every message stored after Open returns reaches
// OnCommit.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, errors.New("redisstore: Config.URL is required")
	}
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redis URL %q: %w", cfg.URL, err)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "natter"
	}
	if cfg.ClientName == "" {
		host, _ := os.Hostname()
		cfg.ClientName = fmt.Sprintf("natter-%s-%d", host, os.Getpid())
	}
	opt.ClientName = cfg.ClientName
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	redis.SetLogger(clientLog{cfg.Logger})
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyChars <= 0 {
		cfg.MaxBodyChars = natter.DefaultMaxBodyChars
	}
	s := &Store{
		rdb: redis.NewClient(opt), p: cfg.Prefix + ":", log: cfg.Logger, now: cfg.Now,
		onCommit: cfg.OnCommit, onRevoke: cfg.OnRevoke, onResub: cfg.OnResubscribe, maxBody: cfg.MaxBodyChars, last: make(map[string]int64),
		pres: newPresence(), queue: make(chan *call, queueDepth), batchDone: make(chan struct{}),
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", opt.Addr, err)
	}
	if _, err := s.CreateRoom(ctx, natter.Room{Name: natter.DefaultRoom, Title: "Lobby"}); err != nil && natter.ErrorCode(err) != natter.ECONFLICT {
		s.rdb.Close()
		return nil, err
	}
	if err := s.loadScripts(ctx); err != nil {
		s.rdb.Close()
		return nil, err
	}
	// Subscribed first, counters read second: a message stored in between arrives on the
	// channel with a seq above the counter read, and one stored before it is not delivered.
	s.sub = s.rdb.Subscribe(ctx, s.key("commits"), s.key("revoked"), s.key("presence"))
	for range 3 { // one confirmation per channel
		if _, err := s.sub.Receive(ctx); err != nil {
			s.sub.Close()
			s.rdb.Close()
			return nil, fmt.Errorf("redis: subscribe: %w", err)
		}
	}
	seqs, err := s.rdb.HGetAll(ctx, s.key("seq")).Result()
	if err != nil {
		s.sub.Close()
		s.rdb.Close()
		return nil, fmt.Errorf("redis: read counters: %w", err)
	}
	for room, v := range seqs {
		s.last[room], _ = strconv.ParseInt(v, 10, 64)
	}
	s.subscribed.Store(true)
	loopCtx, cancel := context.WithCancel(context.Background())
	s.stop, s.done, s.presDone = cancel, make(chan struct{}), make(chan struct{})
	go s.deliverLoop(loopCtx)
	go s.presenceLoop(loopCtx)
	go s.batchLoop()
	return s, nil
}

// Close stops delivering and closes the connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// Sends already queued are sent before the store stops.
		s.qmu.Lock()
		s.qclosed = true
		close(s.queue)
		s.qmu.Unlock()
		<-s.batchDone
		s.stop()
		<-s.presDone  // its goodbye goes out first
		s.sub.Close() // ends a Receive in progress
		<-s.done
		s.closeErr = s.rdb.Close()
	})
	return s.closeErr
}

func (s *Store) key(parts ...string) string { return s.p + strings.Join(parts, ":") }

// unavailable wraps a Redis failure: the store can't answer now, and a retry may succeed.
func unavailable(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &natter.Error{Code: natter.EUNAVAILABLE, Message: "the store (Redis) can't be reached: " + what, Err: err}
}

// Users and sessions.

// CreateUser stores an account. Errors: EINVALID (bad name or empty hash), ECONFLICT (taken).
func (s *Store) CreateUser(ctx context.Context, name, passwordHash string) (natter.User, error) {
	if !natter.ValidUserName(name) {
		return natter.User{}, natter.Errorf(natter.EINVALID, "user name %q is not valid", name)
	}
	if passwordHash == "" {
		return natter.User{}, natter.Errorf(natter.EINVALID, "password hash is empty")
	}
	created := s.now().UTC()
	ok, err := s.rdb.HSetNX(ctx, s.key("users"), name, userValue(created, passwordHash)).Result()
	if err != nil {
		return natter.User{}, unavailable("create user", err)
	}
	if !ok {
		return natter.User{}, natter.Errorf(natter.ECONFLICT, "user name %q is taken", name)
	}
	return natter.User{Name: name, CreatedAt: created}, nil
}

// userValue is an account as stored: its creation time in nanoseconds, a colon, the hash.
func userValue(created time.Time, hash string) string {
	return strconv.FormatInt(created.UnixNano(), 10) + ":" + hash
}

// UserPasswordHash returns the account (with whether it is suspended: the suspended set) and its
// password hash, in one round trip. ENOTFOUND if absent.
func (s *Store) UserPasswordHash(ctx context.Context, name string) (natter.User, string, error) {
	var userCmd *redis.StringCmd
	var suspendedCmd *redis.BoolCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		userCmd = p.HGet(ctx, s.key("users"), name)
		suspendedCmd = p.SIsMember(ctx, s.key("suspended"), name)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return natter.User{}, "", unavailable("read user", err)
	}
	v, err := userCmd.Result()
	if errors.Is(err, redis.Nil) {
		return natter.User{}, "", natter.Errorf(natter.ENOTFOUND, "user %q does not exist", name)
	}
	if err != nil {
		return natter.User{}, "", unavailable("read user", err)
	}
	ns, hash, ok := strings.Cut(v, ":")
	n, perr := strconv.ParseInt(ns, 10, 64)
	if !ok || perr != nil {
		return natter.User{}, "", natter.Internal("redis: user record", fmt.Errorf("malformed: %q", v))
	}
	suspended, err := suspendedCmd.Result()
	if err != nil {
		return natter.User{}, "", unavailable("read user", err)
	}
	return natter.User{Name: name, CreatedAt: time.Unix(0, n).UTC(), Suspended: suspended, Deleted: hash == ""}, hash, nil
}

// deleteUserScript deletes an account (natter.UserStore.DeleteUser) in one step: its record keeps
// its creation time and loses its hash, and it leaves the members of every room but direct
// conversations, every node hearing of each on the channel of revocations. Its sessions go
// apart (DeleteUserSessions). KEYS: the users hash, the rooms hash, the channel. ARGV: the name,
// the members sets' key prefix, the direct conversations' name prefix. It returns the rooms it
// left, or 0 if there is no such account.
var deleteUserScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local created, hash = string.match(v, '^(%d+):(.*)$')
if not created or hash == '' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], created .. ':')
local left = {}
for _, room in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(room, 1, #ARGV[3]) ~= ARGV[3] and redis.call('SREM', ARGV[2] .. room, ARGV[1]) == 1 then
    left[#left + 1] = room
    redis.call('PUBLISH', KEYS[3], cjson.encode({user = ARGV[1], room = room}))
  end
end
return left`)

// DeleteUser deletes an account (natter.UserStore).
func (s *Store) DeleteUser(ctx context.Context, name string) ([]string, error) {
	v, err := deleteUserScript.Run(ctx, s.rdb, []string{s.key("users"), s.key("rooms"), s.key("revoked")}, name, s.key("members", ""), natter.DirectPrefix).Result()
	if err != nil {
		return nil, unavailable("delete user", err)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, natter.Errorf(natter.ENOTFOUND, "user %q does not exist", name)
	}
	rooms := make([]string, 0, len(list))
	for _, r := range list {
		if room, ok := r.(string); ok {
			rooms = append(rooms, room)
		}
	}
	slices.Sort(rooms)
	if _, err := s.DeleteUserSessions(ctx, name, ""); err != nil {
		return rooms, err
	}
	return rooms, nil
}

// setPassword replaces the hash after the creation time, if the account exists.
var setPassword = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local created, hash = string.match(v, '^(%d+):(.*)$')
if hash == '' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], created .. ':' .. ARGV[2])
return 1`)

// SetPasswordHash replaces an account's password hash. EINVALID (empty hash), ENOTFOUND.
func (s *Store) SetPasswordHash(ctx context.Context, name, passwordHash string) error {
	if passwordHash == "" {
		return natter.Errorf(natter.EINVALID, "password hash is empty")
	}
	n, err := setPassword.Run(ctx, s.rdb, []string{s.key("users")}, name, passwordHash).Int()
	if err != nil {
		return unavailable("set password", err)
	}
	if n == 0 {
		return natter.Errorf(natter.ENOTFOUND, "user %q does not exist", name)
	}
	return nil
}

// createSession stores a session unless its key exists; Redis deletes it when it expires. The
// per-user set lets DeleteUserSessions find them; it lives as long as the longest of them.
var createSession = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'guest', ARGV[2], 'created', ARGV[3], 'expires', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('SADD', KEYS[2], ARGV[6])
local t = redis.call('TIME')
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 0 or t[1] * 1000 + math.floor(t[2] / 1000) + ttl < tonumber(ARGV[5]) then
  redis.call('PEXPIREAT', KEYS[2], ARGV[5])
end
return 1`)

// CreateSession stores a session; a zero CreatedAt becomes now. EINVALID, ECONFLICT.
func (s *Store) CreateSession(ctx context.Context, sess natter.Session) error {
	if sess.TokenHash == "" || sess.UserName == "" {
		return natter.Errorf(natter.EINVALID, "a session needs a token hash and a user name")
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = s.now()
	}
	guest := "0"
	if sess.Guest {
		guest = "1"
	}
	n, err := createSession.Run(ctx, s.rdb, []string{s.key("sess", sess.TokenHash), s.key("usess", sess.UserName)},
		sess.UserName, guest, sess.CreatedAt.UnixNano(), sess.ExpiresAt.UnixNano(), sess.ExpiresAt.UnixMilli(), sess.TokenHash).Int()
	if err != nil {
		return unavailable("create session", err)
	}
	if n == 0 {
		return natter.Errorf(natter.ECONFLICT, "session already exists")
	}
	return nil
}

// SessionByTokenHash returns a live session: EUNAUTHORIZED if absent or expired.
func (s *Store) SessionByTokenHash(ctx context.Context, tokenHash string) (natter.Session, error) {
	v, err := s.rdb.HGetAll(ctx, s.key("sess", tokenHash)).Result()
	if err != nil {
		return natter.Session{}, unavailable("read session", err)
	}
	if len(v) == 0 {
		return natter.Session{}, natter.Errorf(natter.EUNAUTHORIZED, "no such session")
	}
	created, err1 := strconv.ParseInt(v["created"], 10, 64)
	expires, err2 := strconv.ParseInt(v["expires"], 10, 64)
	if err1 != nil || err2 != nil {
		return natter.Session{}, natter.Internal("redis: session record", fmt.Errorf("malformed: %v", v))
	}
	if expires <= s.now().UnixNano() {
		return natter.Session{}, natter.Errorf(natter.EUNAUTHORIZED, "the session has expired")
	}
	return natter.Session{
		TokenHash: tokenHash, UserName: v["user"], Guest: v["guest"] == "1",
		CreatedAt: time.Unix(0, created).UTC(), ExpiresAt: time.Unix(0, expires).UTC(),
	}, nil
}

// revoked is a revocation as published on the revoked channel.
type revoked struct {
	TokenHash string `json:"th,omitempty"`
	User      string `json:"user,omitempty"`
	Keep      string `json:"keep,omitempty"`
	At        int64  `json:"at,omitempty"`
	Room      string `json:"room,omitempty"`    // User was taken out of this private room's members
	Ban       bool   `json:"ban,omitempty"`     // User's ban in Room changed, not their membership
	Deleted   bool   `json:"deleted,omitempty"` // Room was deleted
}

var deleteSession = redis.NewScript(`
local user = redis.call('HGET', KEYS[1], 'user')
redis.call('DEL', KEYS[1])
if user then redis.call('SREM', ARGV[1] .. user, ARGV[2]) end
redis.call('PUBLISH', KEYS[2], ARGV[3])
return 1`)

// DeleteSession revokes a session, and tells every node; an absent one is not an error.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	note, _ := json.Marshal(revoked{TokenHash: tokenHash})
	if err := deleteSession.Run(ctx, s.rdb, []string{s.key("sess", tokenHash), s.key("revoked")}, s.key("usess", ""), tokenHash, note).Err(); err != nil {
		return unavailable("delete session", err)
	}
	return nil
}

var deleteUserSessions = redis.NewScript(`
local n = 0
for _, th in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if th ~= ARGV[2] then
    n = n + redis.call('DEL', ARGV[1] .. th)
    redis.call('SREM', KEYS[1], th)
  end
end
redis.call('PUBLISH', KEYS[2], ARGV[3])
return n`)

// DeleteUserSessions revokes every session of name but keep ("" keeps none), and tells every
// node.
func (s *Store) DeleteUserSessions(ctx context.Context, name, keep string) (int64, error) {
	note, _ := json.Marshal(revoked{User: name, Keep: keep, At: s.now().UnixNano()})
	n, err := deleteUserSessions.Run(ctx, s.rdb, []string{s.key("usess", name), s.key("revoked")}, s.key("sess", ""), keep, note).Int64()
	if err != nil {
		return 0, unavailable("delete sessions", err)
	}
	return n, nil
}

// Rooms.

// roomRecord is a room as stored in the rooms hash; its last seq is in the seq hash.
type roomRecord struct {
	Title     string   `json:"title"`
	Topic     string   `json:"topic,omitempty"`
	Epoch     string   `json:"epoch"`
	CreatedBy string   `json:"created_by,omitempty"`
	CreatedAt int64    `json:"created_at"`
	Private   bool     `json:"private,omitempty"`
	Direct    []string `json:"direct,omitempty"`
}

func (r roomRecord) room(name string, lastSeq int64) natter.Room {
	return natter.Room{Name: name, Title: r.Title, Topic: r.Topic, Epoch: r.Epoch, CreatedBy: r.CreatedBy, CreatedAt: time.Unix(0, r.CreatedAt).UTC(), LastSeq: lastSeq, Private: r.Private, Direct: r.Direct}
}

// createRoomScript stores a room's record if the name is free and, for a private room, its first
// members (natter.Room.FirstMembers), in one step. KEYS: the rooms hash, the room's members set,
// the deleted rooms hash. ARGV: name, record, then the first members, if any. It returns 1, 0 if
// the room exists, or 2 if a room of that name was deleted.
var createRoomScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 2 end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
for i = 3, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
return 1`)

// AddMember makes user a member of room (natter.RoomStore): a set per room, PREFIX:members:ROOM.
func (s *Store) AddMember(ctx context.Context, room, user, addedBy string) error {
	if err := s.roomExists(ctx, room); err != nil {
		return err
	}
	if err := s.rdb.SAdd(ctx, s.key("members", room), user).Err(); err != nil {
		return unavailable("add member", err)
	}
	return nil
}

// RemoveMember takes user out of room's members and tells every node, on the channel of
// revocations, in one transaction (natter.RoomStore).
func (s *Store) RemoveMember(ctx context.Context, room, user string) error {
	if err := s.roomExists(ctx, room); err != nil {
		return err
	}
	note, _ := json.Marshal(revoked{User: user, Room: room})
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SRem(ctx, s.key("members", room), user)
		p.Publish(ctx, s.key("revoked"), note)
		return nil
	})
	if err != nil {
		return unavailable("remove member", err)
	}
	return nil
}

// IsMember reports whether user is a member of room (natter.RoomStore).
func (s *Store) IsMember(ctx context.Context, room, user string) (bool, error) {
	ok, err := s.rdb.SIsMember(ctx, s.key("members", room), user).Result()
	if err != nil {
		return false, unavailable("is member", err)
	}
	return ok, nil
}

// Members lists room's members by name (natter.RoomStore).
func (s *Store) Members(ctx context.Context, room string) ([]string, error) {
	names, err := s.rdb.SMembers(ctx, s.key("members", room)).Result()
	if err != nil {
		return nil, unavailable("members", err)
	}
	slices.Sort(names)
	return names, nil
}

// CreateRoom stores a new room with a fresh epoch. EINVALID, ECONFLICT.
func (s *Store) CreateRoom(ctx context.Context, room natter.Room) (natter.Room, error) {
	room, err := natter.ValidateRoom(room)
	if err != nil {
		return natter.Room{}, err
	}
	var b [8]byte
	rand.Read(b[:])
	rec := roomRecord{Title: room.Title, Epoch: hex.EncodeToString(b[:]), CreatedBy: room.CreatedBy, CreatedAt: s.now().UnixNano(), Private: room.Private, Direct: room.Direct}
	data, _ := json.Marshal(rec)
	args := []any{room.Name, data}
	for _, m := range room.FirstMembers() {
		args = append(args, m)
	}
	ok, err := createRoomScript.Run(ctx, s.rdb, []string{s.key("rooms"), s.key("members", room.Name), s.key("deleted")}, args...).Int()
	if err != nil {
		return natter.Room{}, unavailable("create room", err)
	}
	if ok == 2 {
		return natter.Room{}, natter.DeletedRoomError(room.Name)
	}
	if ok == 0 {
		return natter.Room{}, natter.Errorf(natter.ECONFLICT, "room %q already exists", room.Name)
	}
	return rec.room(room.Name, 0), nil
}

// SetRoomTitle gives a room a new title (natter.RoomStore).
func (s *Store) SetRoomTitle(ctx context.Context, name, title string) (natter.Room, error) {
	title, err := natter.RoomTitle(name, title)
	if err != nil {
		return natter.Room{}, err
	}
	return s.updateRoom(ctx, name, func(rec *roomRecord) { rec.Title = title })
}

// SetRoomTopic gives a room a new topic (natter.RoomStore).
func (s *Store) SetRoomTopic(ctx context.Context, name, topic string) (natter.Room, error) {
	if err := natter.RoomTopic(topic); err != nil {
		return natter.Room{}, err
	}
	return s.updateRoom(ctx, name, func(rec *roomRecord) { rec.Topic = topic })
}

// updateRoom changes a room's record: it is read and written back in one transaction (WATCH),
// tried again if another node changed it meanwhile. It returns the room.
func (s *Store) updateRoom(ctx context.Context, name string, change func(*roomRecord)) (natter.Room, error) {
	key := s.key("rooms")
	var err error
	for range 10 {
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			data, err := tx.HGet(ctx, key, name).Result()
			if err != nil {
				return err
			}
			var rec roomRecord
			if err := json.Unmarshal([]byte(data), &rec); err != nil {
				return natter.Internal("redis: room record", err)
			}
			change(&rec)
			out, _ := json.Marshal(rec)
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, key, name, out)
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	switch {
	case errors.Is(err, redis.Nil):
		return natter.Room{}, natter.Errorf(natter.ENOTFOUND, "room %q does not exist", name)
	case natter.ErrorCode(err) == natter.EINTERNAL:
		return natter.Room{}, err
	case err != nil:
		return natter.Room{}, unavailable("change room", err)
	}
	return s.Room(ctx, name)
}

// Room returns one room with its current LastSeq. ENOTFOUND if absent.
func (s *Store) Room(ctx context.Context, name string) (natter.Room, error) {
	var recCmd, seqCmd *redis.StringCmd
	var changesCmd *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		recCmd = p.HGet(ctx, s.key("rooms"), name)
		seqCmd = p.HGet(ctx, s.key("seq"), name)
		changesCmd = p.ZCard(ctx, s.key("changes", name))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return natter.Room{}, unavailable("read room", err)
	}
	data, err := recCmd.Result()
	if errors.Is(err, redis.Nil) {
		return natter.Room{}, natter.Errorf(natter.ENOTFOUND, "room %q does not exist", name)
	}
	if err != nil {
		return natter.Room{}, unavailable("read room", err)
	}
	var rec roomRecord
	if err := json.Unmarshal([]byte(data), &rec); err != nil {
		return natter.Room{}, natter.Internal("redis: room record", err)
	}
	seq, _ := seqCmd.Int64() // absent: no message yet
	room := rec.room(name, seq)
	room.Changes = changesCmd.Val()
	return room, nil
}

// Rooms lists every room by name.
func (s *Store) Rooms(ctx context.Context) ([]natter.Room, error) {
	var recs, seqs *redis.MapStringStringCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		recs = p.HGetAll(ctx, s.key("rooms"))
		seqs = p.HGetAll(ctx, s.key("seq"))
		return nil
	}); err != nil {
		return nil, unavailable("list rooms", err)
	}
	rooms := make([]natter.Room, 0, len(recs.Val()))
	for name, data := range recs.Val() {
		var rec roomRecord
		if err := json.Unmarshal([]byte(data), &rec); err != nil {
			return nil, natter.Internal("redis: room record", err)
		}
		seq, _ := strconv.ParseInt(seqs.Val()[name], 10, 64)
		rooms = append(rooms, rec.room(name, seq))
	}
	sortRooms(rooms)
	// Each room's count of edits and deletions: its sorted set's size, all in one round trip.
	changes := make([]*redis.IntCmd, len(rooms))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range rooms {
			changes[i] = p.ZCard(ctx, s.key("changes", r.Name))
		}
		return nil
	}); err != nil {
		return nil, unavailable("list rooms", err)
	}
	for i := range rooms {
		rooms[i].Changes = changes[i].Val()
	}
	return rooms, nil
}

// deleteRoomScript deletes a room (natter.RoomStore.DeleteRoom) in one step: its record leaves
// the rooms hash for the hash of deleted rooms (name -> when, in nanoseconds, a colon, and by
// whom), which keeps the name from being used again; its counter and every key of its own go
// (UNLINK: Redis frees a long stream in the background); and every node hears of it on the
// channel of revocations. An append after it finds no room. KEYS: the rooms hash, the deleted
// rooms hash, the seq hash, the channel of revocations, the expiry marks hash (expire.go), then
// the room's own keys. ARGV: the
// room, the deleted rooms' value, the note to publish. It returns 1, or 0 if there is no such
// room.
var deleteRoomScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
for i = 6, #KEYS do redis.call('UNLINK', KEYS[i]) end
redis.call('PUBLISH', KEYS[4], ARGV[3])
return 1`)

// roomKeys are the kinds of key a room has of its own (PREFIX:KIND:ROOM).
var roomKeys = []string{"log", "cid", "changes", "gone", "edits", "pins", "bans", "members", "invites"}

// DeleteRoom deletes a room and everything of it (natter.RoomStore), and tells every node
// (OnRevoke: Revocation.Deleted). An account's read mark of it and its closing of it stay in
// the account's hashes, where nothing reads them: no list holds the room any more.
func (s *Store) DeleteRoom(ctx context.Context, name, by string) error {
	if !natter.ValidRoomName(name) {
		return natter.Errorf(natter.ENOTFOUND, "room %q does not exist", name)
	}
	keys := []string{s.key("rooms"), s.key("deleted"), s.key("seq"), s.key("revoked"), s.key("expired")}
	for _, k := range roomKeys {
		keys = append(keys, s.key(k, name))
	}
	note, _ := json.Marshal(revoked{Room: name, Deleted: true})
	ok, err := deleteRoomScript.Run(ctx, s.rdb, keys, name, strconv.FormatInt(s.now().UnixNano(), 10)+":"+by, note).Int()
	if err != nil {
		return unavailable("delete room", err)
	}
	if ok == 0 {
		return natter.Errorf(natter.ENOTFOUND, "room %q does not exist", name)
	}
	return nil
}
