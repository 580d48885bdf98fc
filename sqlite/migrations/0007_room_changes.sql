-- How many of each room's entries are edits or deletions (natter.Room.Changes), kept by the
-- committer as it stores them, so that a room's count of messages costs no count of its log.
ALTER TABLE rooms ADD COLUMN changes INTEGER NOT NULL DEFAULT 0;
UPDATE rooms SET changes = (SELECT count(*) FROM messages INDEXED BY messages_changes
	WHERE messages.room = rooms.name AND messages.kind != '');
