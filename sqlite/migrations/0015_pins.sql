-- A room's pinned messages (natter.MessageStore.Pins), kept by the committer from the log's pin and
-- unpin entries (and deletions, which unpin) in the transaction that stores them.
CREATE TABLE room_pins (
	room      TEXT NOT NULL,
	seq       INTEGER NOT NULL,
	pinned_by TEXT NOT NULL,
	pinned_at INTEGER NOT NULL,
	PRIMARY KEY (room, seq)
) STRICT, WITHOUT ROWID;
