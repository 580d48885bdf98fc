-- Times are INTEGER nanoseconds since the Unix epoch, UTC: cheap to compare and exact to round-trip.

CREATE TABLE users (
	name          TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- user_name is not a foreign key: guests sign in without an account.
CREATE TABLE sessions (
	token_hash TEXT PRIMARY KEY,
	user_name  TEXT NOT NULL,
	guest      INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Lets a sweeper delete expired sessions without a full scan.
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE rooms (
	name       TEXT PRIMARY KEY,
	title      TEXT NOT NULL,
	epoch      TEXT NOT NULL,
	last_seq   INTEGER NOT NULL DEFAULT 0,
	created_by TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- WITHOUT ROWID clusters each room's log by seq, so an append is one b-tree insert and a page read
-- is one range scan. Chat bodies are small; the rare 4,096-character body only costs overflow pages.
CREATE TABLE messages (
	room      TEXT NOT NULL REFERENCES rooms (name),
	seq       INTEGER NOT NULL,
	id        TEXT NOT NULL,
	client_id TEXT NOT NULL DEFAULT '',
	author    TEXT NOT NULL,
	body      TEXT NOT NULL,
	ts        INTEGER NOT NULL,
	PRIMARY KEY (room, seq)
) STRICT, WITHOUT ROWID;

-- Makes sends idempotent: the committer inserts with ON CONFLICT DO NOTHING against this index and
-- returns the stored original when it fires. Sends without a client_id stay out of it.
CREATE UNIQUE INDEX messages_client_id ON messages (room, author, client_id) WHERE client_id != '';
