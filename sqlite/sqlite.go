// Package sqlite is natter's embedded default store: one SQLite file in WAL mode, written by a single
// committer goroutine that group-commits appends, and read through a separate pool of connections so
// reads never wait for a commit.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"natter"

	// Registers the pure-Go "sqlite" driver.
	_ "modernc.org/sqlite"
)

// Defaults for the zero fields of Config.
const (
	DefaultSynchronous = "FULL"
	DefaultMaxBatch    = 256
	DefaultBusyTimeout = 10 * time.Second
	// DefaultCheckpointEvery is about 2,500 WAL frames (10 MB) when client_ids scatter the
	// idempotency index: large enough that rewrites of one page often coalesce into one copy.
	DefaultCheckpointEvery = 2048
)

// syncDepth bounds the batches committed and not yet synced and answered. Two let the committer
// store one batch while the WAL syncs the last; more would only split the waiting appends into
// more, smaller commits, each with its own overhead.
const syncDepth = 2

// writerCacheKiB sizes the writer's page cache. Appends with client_ids touch a different index
// page almost every time; a cache that holds the index's hot part saves a read per append.
const writerCacheKiB = 32 << 10

// walSizeLimit is the WAL size kept on disk after a rewind, in bytes.
const walSizeLimit = 64 << 20

// Config configures a Store. Zero fields take the documented defaults.
type Config struct {
	// Path is the database file, e.g. filepath.Join(dataDir, "natter.db"). Required.
	Path string
	// OnCommit receives committed (and, with Synchronous FULL, synced) messages, in seq order
	// per room, one batch at a time from one goroutine at a time (the committer, or the WAL
	// syncer when it runs the batch), before the AppendMessage calls that stored them return.
	// Nil means nobody listens.
	OnCommit natter.CommitFunc
	// Logger reports batch failures; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for message, account and session times; nil means time.Now. Times are
	// stored in UTC. The store's own goroutines (the committer, the session sweeper) call it, so
	// it must be safe for concurrent use.
	Now func() time.Time
	// Synchronous is "FULL" (the default: an acknowledged message survives power loss) or
	// "NORMAL" (it survives a crash of the process). With FULL, natter fsyncs the WAL itself,
	// after each commit and before anyone hears of it (walsync.go); SQLite's own setting is
	// NORMAL in both cases.
	Synchronous string
	// MaxBatch is the most appends committed in one transaction; 0 means DefaultMaxBatch.
	MaxBatch int
	// MaxBodyChars bounds a message body in characters; 0 means natter.DefaultMaxBodyChars.
	MaxBodyChars int
	// ReadConns is the size of the reader pool; 0 means max(4, 2*GOMAXPROCS).
	ReadConns int
	// CheckpointEvery is how many appends the WAL collects between background checkpoints; 0
	// means DefaultCheckpointEvery. Larger means fewer, bigger copies and a bigger WAL file.
	CheckpointEvery int
	// BusyTimeout is how long a connection waits for a lock held by another process; 0 means
	// DefaultBusyTimeout.
	BusyTimeout time.Duration

	// For tests: the idempotency key hash (nil: clientKey), the number of sweep buckets and the
	// messages per bucket merge (0: keyBuckets and keyBucketEvery).
	keyOf          func(room, author, clientID string) int64
	keyBuckets     int
	keyBucketEvery int
	filterKeys     int64             // capacity of the first client_id filter (0: from the store's size)
	onPurged       func(room string) // called when the purger has emptied a deleted room
}

// Store is a natter.Store backed by one SQLite database file.
type Store struct {
	lock     *dbLock // held from Open to Close: one Store per database
	log      *slog.Logger
	now      func() time.Time
	onCommit natter.CommitFunc
	maxBody  int
	maxBatch int

	// writeDB has exactly one connection: SQLite allows one writer at a time, and queueing in
	// database/sql is cheaper than spinning on SQLITE_BUSY. readDB is a pool that WAL lets read
	// while the writer commits.
	writeDB *sql.DB
	readDB  *sql.DB
	stmts   statements

	// appends feeds the committer. mu guards closed and the closing of appends, so that no send
	// can race with close(appends).
	mu      sync.RWMutex
	closed  bool
	appends chan *appendCall
	calls   sync.Pool // of *appendCall, reused once their caller has read the result

	committerDone chan struct{}
	closeOnce     sync.Once
	closeErr      error

	// lastSeq caches rooms.last_seq. Only the committer goroutine touches it: it is the only
	// writer of messages, so the cache is exact until a batch fails, when it is cleared.
	lastSeq map[string]int64

	// Idempotency keys not yet in client_keys, and the progress of moving them there (keys.go).
	// Committer only, like scratch.
	keyOf   func(room, author, clientID string) int64
	keys    recentKeys
	sweep   keySweep
	scratch batchScratch
	// A Bloom filter over client_keys spares most lookups of new keys a query (keyfilter.go).
	filter        atomic.Pointer[keyFilter] // the complete filter lookups use; nil until there is one
	filling       atomic.Pointer[keyFilter] // the newest filter, complete or still being filled
	fillCtx       context.Context
	fillCancel    context.CancelFunc
	fillWG        sync.WaitGroup
	probesSkipped int // lookups the filter answered; committer only (for tests)

	ckpt checkpointer

	// Deleted rooms, and the purger of what they held (purge.go).
	purge purger
	// How far each room's log is expired (expire.go).
	expire expirer

	// The sweeper of expired sessions (sessions.go): stopped by Close through sessStop.
	sessStop context.CancelFunc
	sessDone chan struct{}

	// Read marks waiting to be stored, and their writer (readmark.go).
	marks     markWriter
	marksStop chan struct{}

	// With Synchronous FULL: the WAL syncer, the committed batches waiting for it (closed by the
	// committer when it stops), what readers may see meanwhile, and a failed fsync's error.
	wal       *walSyncer
	syncq     chan syncJob
	syncSlots chan struct{} // one per batch between the committer and the end of syncLoop
	syncDone  chan struct{}
	visible   visibleSeqs
	tracked   map[string]bool // rooms with an entry in visible; committer only
	failed    atomic.Pointer[natter.Error]
}

var _ natter.Store = (*Store)(nil)

// Open opens (creating if needed) the database at cfg.Path, applies pending migrations, makes sure
// the default room exists and starts the committer.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: Config.Path is required")
	}
	if strings.ContainsRune(cfg.Path, '?') {
		// The driver splits its DSN at the first '?'.
		return nil, fmt.Errorf("sqlite: database path %q must not contain '?'", cfg.Path)
	}
	syncMode := strings.ToUpper(cfg.Synchronous)
	switch syncMode {
	case "":
		syncMode = DefaultSynchronous
	case "FULL", "NORMAL":
	default:
		return nil, fmt.Errorf("sqlite: Synchronous must be FULL or NORMAL, not %q", cfg.Synchronous)
	}
	lock, err := lockDB(cfg.Path)
	if err != nil {
		return nil, err
	}
	opened := false
	defer func() {
		if !opened {
			lock.release()
		}
	}()
	s := &Store{
		lock:          lock,
		log:           cfg.Logger,
		now:           cfg.Now,
		onCommit:      cfg.OnCommit,
		maxBody:       cfg.MaxBodyChars,
		maxBatch:      cfg.MaxBatch,
		committerDone: make(chan struct{}),
		lastSeq:       make(map[string]int64),
		keyOf:         cfg.keyOf,
		sweep:         keySweep{every: cfg.keyBucketEvery, dirty: map[string]int64{}},
		scratch:       batchScratch{newKeys: map[int64]int{}, rooms: map[string]int64{}},
	}
	if s.keyOf == nil {
		s.keyOf = clientKey
	}
	if s.sweep.every <= 0 {
		s.sweep.every = keyBucketEvery
	}
	buckets := cfg.keyBuckets
	if buckets <= 0 {
		buckets = keyBuckets
	}
	s.keys = newRecentKeys(buckets)
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBody <= 0 {
		s.maxBody = natter.DefaultMaxBodyChars
	}
	if s.maxBatch <= 0 {
		s.maxBatch = DefaultMaxBatch
	}
	readConns := cfg.ReadConns
	if readConns <= 0 {
		readConns = max(4, 2*runtime.GOMAXPROCS(0))
	}
	busy := cfg.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	s.ckpt.every = cfg.CheckpointEvery
	if s.ckpt.every <= 0 {
		s.ckpt.every = DefaultCheckpointEvery
	}
	s.calls.New = func() any { return &appendCall{done: make(chan struct{}, 1)} }
	// Room for several batches, so callers rarely block on the send while a batch commits.
	s.appends = make(chan *appendCall, 4*s.maxBatch)

	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")

	w := url.Values{}
	for k, v := range common {
		w[k] = append(w[k], v...)
	}
	w.Add("_pragma", "journal_mode(WAL)")
	// With FULL the syncer fsyncs the WAL after each commit; SQLite itself syncs only around
	// checkpoints.
	w.Add("_pragma", "synchronous(NORMAL)")
	if syncMode == "FULL" {
		s.wal = newWALSyncer(cfg.Path)
		s.syncq = make(chan syncJob, syncDepth)
		s.syncSlots = make(chan struct{}, syncDepth)
		s.syncDone = make(chan struct{})
		s.visible.seq = make(map[string]int64)
		s.tracked = make(map[string]bool)
	}
	// The checkpointer goroutine does this work on its own connection, off the commit path.
	w.Add("_pragma", "wal_autocheckpoint(0)")
	// After a burst, give back all but this much of the WAL's disk space when it rewinds.
	w.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
	w.Add("_pragma", fmt.Sprintf("cache_size(%d)", -writerCacheKiB))
	// A deletion's erased text is zeroed in the page it leaves, where that costs no extra
	// write (the WAL's older copies of the page go as it is checkpointed and rewound).
	w.Add("_pragma", "secure_delete(FAST)")
	// BEGIN IMMEDIATE takes the write lock up front, so a transaction never fails halfway
	// through when it tries to upgrade a read lock.
	w.Set("_txlock", "immediate")
	s.writeDB, err = sql.Open("sqlite", cfg.Path+"?"+w.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	s.writeDB.SetMaxOpenConns(1)
	s.writeDB.SetMaxIdleConns(1)
	s.writeDB.SetConnMaxLifetime(0)
	s.writeDB.SetConnMaxIdleTime(0)

	// Migrate before opening readers, so that they find WAL mode and the schema in place.
	if err := s.migrate(ctx); err != nil {
		s.writeDB.Close()
		return nil, err
	}
	if err := s.syncWrite(); err != nil {
		s.writeDB.Close()
		return nil, fmt.Errorf("sqlite: sync the WAL after migrating: %w", err)
	}
	if err := s.loadRecentKeys(ctx); err != nil {
		s.writeDB.Close()
		return nil, fmt.Errorf("sqlite: load recent client_ids: %w", err)
	}

	s.ckpt.db, err = sql.Open("sqlite", cfg.Path+"?"+common.Encode())
	if err != nil {
		s.writeDB.Close()
		return nil, fmt.Errorf("sqlite: open %s for checkpoints: %w", cfg.Path, err)
	}
	s.ckpt.db.SetMaxOpenConns(1)
	s.ckpt.db.SetMaxIdleConns(1)

	r := common
	r.Add("_pragma", "query_only(1)")
	s.readDB, err = sql.Open("sqlite", cfg.Path+"?"+r.Encode())
	if err != nil {
		s.ckpt.db.Close()
		s.writeDB.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", cfg.Path, err)
	}
	s.readDB.SetMaxOpenConns(readConns)
	s.readDB.SetMaxIdleConns(readConns)
	s.readDB.SetConnMaxLifetime(0)
	s.readDB.SetConnMaxIdleTime(0)

	if err := s.stmts.prepare(ctx, s.writeDB, s.readDB); err != nil {
		s.stmts.close()
		s.readDB.Close()
		s.ckpt.db.Close()
		s.writeDB.Close()
		return nil, err
	}
	if err := s.loadDeletedRooms(ctx); err != nil {
		s.stmts.close()
		s.readDB.Close()
		s.ckpt.db.Close()
		s.writeDB.Close()
		return nil, err
	}
	// The client_id filter, sized for the keys client_keys may hold (keys_seq bounds them; a
	// bigger one replaces it at twice that), fills in the background: until it is complete,
	// lookups read client_keys.
	capacity := cfg.filterKeys
	if capacity <= 0 {
		var indexed int64
		if err := s.writeDB.QueryRowContext(ctx, `SELECT coalesce(sum(keys_seq), 0) FROM rooms`).Scan(&indexed); err != nil {
			s.stmts.close()
			s.readDB.Close()
			s.ckpt.db.Close()
			s.writeDB.Close()
			return nil, fmt.Errorf("sqlite: size the client_id filter: %w", err)
		}
		capacity = max(indexed, minFilterKeys) // keys_seq counts every message, keyed or not
	}
	s.fillCtx, s.fillCancel = context.WithCancel(context.Background())
	s.startFill(newKeyFilter(capacity))

	s.ckpt.wake = make(chan struct{}, 1)
	s.ckpt.done = make(chan struct{})
	s.purge.purged = cfg.onPurged
	s.startPurger()
	go s.checkpointLoop()
	go s.commitLoop()
	s.startSessionSweeper()
	s.startMarkWriter()
	if s.syncq != nil {
		go s.syncLoop()
	}
	opened = true
	return s, nil
}

// Close stops accepting appends (they fail with EUNAVAILABLE), commits what was already queued and
// closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.appends)
		s.mu.Unlock()
		<-s.committerDone
		if s.syncDone != nil {
			<-s.syncDone // the committer closed syncq
		}
		s.fillCancel()
		s.fillWG.Wait()
		close(s.ckpt.wake)
		<-s.ckpt.done
		s.sessStop()
		<-s.sessDone
		s.stopPurger()
		s.stopMarkWriter()

		s.stmts.close()
		// Best effort: leaves the planner statistics fresh for the next Open.
		if _, err := s.writeDB.Exec("PRAGMA optimize"); err != nil {
			s.log.Warn("sqlite: optimize on close", "err", err)
		}
		// The writer goes last: the last connection to close checkpoints and removes the WAL.
		s.closeErr = errors.Join(s.readDB.Close(), s.ckpt.db.Close(), s.writeDB.Close())
		s.lock.release() // after the last connection: the database is at rest
	})
	return s.closeErr
}

// fromNanos turns a stored time back into a UTC time.Time. Writes build their results through it
// too, so that a value returned by a write equals (==) the value read back later.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// toNanos is the inverse of fromNanos; the zero time is 0 rather than an overflowed UnixNano.
func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// newEpoch returns a fresh, random name for a room's log.
func newEpoch() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// statements are prepared once per Store; database/sql re-prepares them on each pooled connection
// as needed, and Tx.Stmt reuses the writer connection's copy inside the committer's transaction.
type statements struct {
	insertMessages rowStmts
	insertKeys     rowStmts
	probeKeys      rowStmts
	messageAt      *sql.Stmt
	insertRef      *sql.Stmt // one edit, deletion or reply
	updateKeysSeq  *sql.Stmt
	roomLastSeq    *sql.Stmt
	updateRoomSeq  *sql.Stmt
	countChange    *sql.Stmt // one more edit or deletion in a room
	eraseMessage   *sql.Stmt // a deletion erases its target's text
	eraseEdits     *sql.Stmt // and its target's edits
	eraseLateEdit  *sql.Stmt // an edit stored after its target's deletion
	upsertPin      *sql.Stmt
	deletePin      *sql.Stmt
	readPins       *sql.Stmt
	insertRoom     *sql.Stmt
	updateTitle    *sql.Stmt
	insertMember   *sql.Stmt
	deleteMember   *sql.Stmt
	readMember     *sql.Stmt
	readMembers    *sql.Stmt
	insertBan      *sql.Stmt
	deleteBan      *sql.Stmt
	readBans       *sql.Stmt
	updateSuspend  *sql.Stmt
	readSuspended  *sql.Stmt
	insertUser     *sql.Stmt
	insertSession  *sql.Stmt
	deleteSession  *sql.Stmt
	deleteSessOf   *sql.Stmt
	sweepSessions  *sql.Stmt
	sweepBans      *sql.Stmt
	updatePassword *sql.Stmt
	readMsgsAfter  *sql.Stmt
	readMsgsBefore *sql.Stmt
	readRoom       *sql.Stmt
	dropRoom       *sql.Stmt
	updateTopic    *sql.Stmt
	readEdits      *sql.Stmt
	readRooms      *sql.Stmt
	readUser       *sql.Stmt
	readSession    *sql.Stmt
	readRoomExists *sql.Stmt
	upsertMark     *sql.Stmt
	readMarks      *sql.Stmt
	upsertHidden   *sql.Stmt
	deleteHidden   *sql.Stmt
	readHidden     *sql.Stmt
	countChanges   *sql.Stmt
	readChanges    *sql.Stmt
	prepared       []*sql.Stmt
}

// insertColumns are what a plain message sets; an edit or a deletion sets kind and target too,
// and a reply reply_to.
const (
	insertColumns  = `room, seq, id, client_id, author, body, ts`
	messageColumns = insertColumns + `, kind, target, reply_to`
)

func (st *statements) prepare(ctx context.Context, w, r *sql.DB) error {
	st.insertMessages = rowStmts{head: `INSERT INTO messages (` + insertColumns + `) VALUES `, row: `(?, ?, ?, ?, ?, ?, ?)`}
	st.insertKeys = rowStmts{head: `INSERT OR IGNORE INTO client_keys (key, room, seq) VALUES `, row: `(?, ?, ?)`}
	st.probeKeys = rowStmts{head: `SELECT k.key, m.room, m.seq, m.id, m.client_id, m.author, m.body, m.ts, m.kind, m.target, m.reply_to
		FROM client_keys k JOIN messages m ON m.room = k.room AND m.seq = k.seq
		WHERE k.key IN (`, row: `?`, tail: `)`}
	for _, rs := range []*rowStmts{&st.insertMessages, &st.insertKeys, &st.probeKeys} {
		if err := rs.prepare(ctx, w); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		db    *sql.DB
		dst   **sql.Stmt
		query string
	}{
		{w, &st.messageAt, `SELECT ` + messageColumns + ` FROM messages WHERE room = ? AND seq = ?`},
		{w, &st.insertRef, `INSERT INTO messages (` + messageColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{w, &st.updateKeysSeq, `UPDATE rooms SET keys_seq = max(keys_seq, ?) WHERE name = ?`},
		{w, &st.roomLastSeq, `SELECT last_seq FROM rooms WHERE name = ? AND deleted_at = 0`},
		{w, &st.updateRoomSeq, `UPDATE rooms SET last_seq = ? WHERE name = ?`},
		{w, &st.countChange, `UPDATE rooms SET changes = changes + 1 WHERE name = ?`},
		{w, &st.eraseMessage, `UPDATE messages SET body = '' WHERE room = ? AND seq = ? AND kind = ''`},
		{w, &st.eraseEdits, `UPDATE messages INDEXED BY messages_targets SET body = ''
			WHERE room = ? AND target = ? AND kind != '' AND kind = 'edit'`},
		{w, &st.upsertPin, `INSERT INTO room_pins (room, seq, pinned_by, pinned_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (room, seq) DO UPDATE SET pinned_by = excluded.pinned_by, pinned_at = excluded.pinned_at`},
		{w, &st.deletePin, `DELETE FROM room_pins WHERE room = ? AND seq = ?`},
		{r, &st.readEdits, `SELECT ` + messageColumns + ` FROM messages INDEXED BY messages_targets
			WHERE room = ? AND target = ? AND kind != '' AND kind = 'edit' AND seq <= ? ORDER BY seq`},
		{r, &st.readPins, `SELECT seq, pinned_by, pinned_at FROM room_pins WHERE room = ? ORDER BY pinned_at DESC, seq DESC`},
		{w, &st.eraseLateEdit, `UPDATE messages SET body = '' WHERE room = ?1 AND seq = ?2 AND EXISTS (
			SELECT 1 FROM messages INDEXED BY messages_targets WHERE room = ?1 AND target = ?3 AND kind != '' AND kind = 'delete')`},
		{w, &st.insertRoom, `INSERT INTO rooms (name, title, epoch, last_seq, created_by, created_at, private, direct)
			VALUES (?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT DO NOTHING`},
		{w, &st.insertMember, `INSERT INTO room_members (room, user_name, added_by, added_at) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`},
		{w, &st.deleteMember, `DELETE FROM room_members WHERE room = ? AND user_name = ?`},
		{r, &st.readMember, `SELECT 1 FROM room_members WHERE room = ? AND user_name = ?`},
		{r, &st.readMembers, `SELECT user_name FROM room_members WHERE room = ? ORDER BY user_name`},
		{w, &st.insertBan, `INSERT INTO room_bans (room, user_name, banned_by, banned_at, until, reason) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (room, user_name) DO UPDATE SET banned_by = excluded.banned_by, banned_at = excluded.banned_at,
			until = excluded.until, reason = excluded.reason`},
		{w, &st.sweepBans, `DELETE FROM room_bans WHERE until != 0 AND until <= ?`},
		{w, &st.deleteBan, `DELETE FROM room_bans WHERE room = ? AND user_name = ?`},
		{r, &st.readBans, `SELECT user_name, banned_by, banned_at, until, reason FROM room_bans
			WHERE room = ? AND (until = 0 OR until > ?) ORDER BY user_name`},
		{w, &st.updateSuspend, `UPDATE users SET suspended = ? WHERE name = ?`},
		{r, &st.readSuspended, `SELECT name FROM users WHERE suspended = 1 ORDER BY name`},
		{w, &st.dropRoom, `UPDATE rooms SET deleted_at = ?, deleted_by = ? WHERE name = ? AND deleted_at = 0`},
		{w, &st.updateTitle, `UPDATE rooms SET title = ? WHERE name = ? AND deleted_at = 0`},
		{w, &st.updateTopic, `UPDATE rooms SET topic = ? WHERE name = ? AND deleted_at = 0`},
		{w, &st.insertUser, `INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`},
		{w, &st.insertSession, `INSERT INTO sessions (token_hash, user_name, guest, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`},
		{w, &st.deleteSession, `DELETE FROM sessions WHERE token_hash = ?`},
		{w, &st.deleteSessOf, `DELETE FROM sessions WHERE user_name = ? AND token_hash <> ?`},
		{w, &st.sweepSessions, `DELETE FROM sessions WHERE token_hash IN
			(SELECT token_hash FROM sessions WHERE expires_at <= ? LIMIT ?)`},
		{w, &st.updatePassword, `UPDATE users SET password_hash = ? WHERE name = ? AND password_hash != ''`},
		{w, &st.upsertMark, upsertMarkSQL},
		{r, &st.readMarks, `SELECT room, epoch, seq FROM read_marks WHERE user_name = ?`},
		{w, &st.upsertHidden, `INSERT INTO hidden_rooms (user_name, room, epoch, seq, hidden_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (user_name, room) DO UPDATE SET
				epoch = excluded.epoch, seq = excluded.seq, hidden_at = excluded.hidden_at`},
		{w, &st.deleteHidden, `DELETE FROM hidden_rooms WHERE user_name = ? AND room = ?`},
		{r, &st.readHidden, `SELECT room, epoch, seq FROM hidden_rooms WHERE user_name = ? ORDER BY room`},
		{r, &st.countChanges, countChangesSQL},
		{r, &st.readChanges, readChangesSQL},
		{r, &st.readMsgsAfter, `SELECT ` + messageColumns + ` FROM messages
			WHERE room = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`},
		{r, &st.readMsgsBefore, `SELECT ` + messageColumns + ` FROM messages
			WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?`},
		{r, &st.readRoom, `SELECT name, title, epoch, last_seq, created_by, created_at, changes, private, direct, topic FROM rooms WHERE name = ? AND deleted_at = 0`},
		{r, &st.readRooms, `SELECT name, title, epoch, last_seq, created_by, created_at, changes, private, direct, topic FROM rooms WHERE deleted_at = 0 ORDER BY name`},
		{r, &st.readRoomExists, `SELECT 1 FROM rooms WHERE name = ? AND deleted_at = 0`},
		{r, &st.readUser, `SELECT name, password_hash, created_at, suspended FROM users WHERE name = ?`},
		{r, &st.readSession, `SELECT token_hash, user_name, guest, created_at, expires_at FROM sessions
			WHERE token_hash = ?`},
	} {
		stmt, err := p.db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("sqlite: prepare %q: %w", p.query, err)
		}
		*p.dst = stmt
		st.prepared = append(st.prepared, stmt)
	}
	return nil
}

func (st *statements) close() {
	for _, stmt := range st.prepared {
		stmt.Close()
	}
	st.prepared = nil
	for _, rs := range []*rowStmts{&st.insertMessages, &st.insertKeys, &st.probeKeys} {
		for i, stmt := range rs.stmts {
			if stmt != nil {
				stmt.Close()
				rs.stmts[i] = nil
			}
		}
	}
}

// maxRowsLog2 caps a multi-row statement at 1<<maxRowsLog2 rows (64). One multi-row INSERT costs
// far less than as many single-row ones (one bind and step through database/sql instead of one
// per row), while the statement text and its parameters stay small.
const maxRowsLog2 = 6

// rowStmts is a statement that repeats row (joined by commas) between head and tail, prepared
// for 1, 2, 4, ... 64 rows: any number of rows takes at most one statement per set bit.
type rowStmts struct {
	head, row, tail string
	stmts           [maxRowsLog2 + 1]*sql.Stmt
}

func (rs *rowStmts) prepare(ctx context.Context, db *sql.DB) error {
	for i := range rs.stmts {
		q := rs.head + rs.row + strings.Repeat(", "+rs.row, 1<<i-1) + rs.tail
		stmt, err := db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("sqlite: prepare %q for %d rows: %w", rs.head, 1<<i, err)
		}
		rs.stmts[i] = stmt
	}
	return nil
}

// chunkRows is how many of n rows the next statement takes: the largest power of two up to 64.
func chunkRows(n int) int {
	return 1 << min(bits.Len(uint(n))-1, maxRowsLog2)
}

// forRows returns rs for n rows, n a power of two up to 64.
func (rs *rowStmts) forRows(n int) *sql.Stmt {
	return rs.stmts[bits.Len(uint(n))-1]
}

// execRows runs rs in tx for rows rows of cols arguments each, in as few statements as chunkRows
// allows.
func execRows(ctx context.Context, tx *sql.Tx, rs *rowStmts, rows, cols int, args []any) error {
	for rows > 0 {
		n := chunkRows(rows)
		if _, err := tx.StmtContext(ctx, rs.forRows(n)).ExecContext(ctx, args[:n*cols]...); err != nil {
			return err
		}
		args, rows = args[n*cols:], rows-n
	}
	return nil
}
