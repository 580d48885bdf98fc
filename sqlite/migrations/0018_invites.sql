-- Invites to private rooms (natter.InviteStore): each kept under its code's hash, never the code.
-- id is the hash's first 12 hex digits, by which members list and revoke it.
CREATE TABLE room_invites (
	room       TEXT NOT NULL,
	id         TEXT NOT NULL,
	hash       TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	max_uses   INTEGER NOT NULL,
	uses       INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (room, id)
) STRICT, WITHOUT ROWID;
