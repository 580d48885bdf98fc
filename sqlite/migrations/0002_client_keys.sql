-- Idempotency keys leave the messages table. The UNIQUE index on (room, author, client_id) put
-- every keyed message on a scattered index page, so each commit wrote about one more page per
-- message. client_keys holds a 64-bit hash of the full key instead (clientKey in keys.go), and the
-- committer fills it in sorted runs, one hash range at a time. A room's keyed messages after its
-- keys_seq are indexed in memory only, rebuilt from the messages table on open. Every match is
-- checked against the stored message, so a hash collision costs a read, never a wrong answer.
--
-- The committer, the only writer of messages, looks a key up before it inserts, so uniqueness no
-- longer needs an index. Migration 2 also fills client_keys from the existing messages (in Go,
-- right after this file: backfillClientKeys) and sets keys_seq to last_seq.

CREATE TABLE client_keys (
	key  INTEGER NOT NULL,
	room TEXT NOT NULL,
	seq  INTEGER NOT NULL,
	PRIMARY KEY (key, room, seq)
) STRICT, WITHOUT ROWID;

-- Every keyed message of the room up to keys_seq has its entry in client_keys.
ALTER TABLE rooms ADD COLUMN keys_seq INTEGER NOT NULL DEFAULT 0;

DROP INDEX messages_client_id;
