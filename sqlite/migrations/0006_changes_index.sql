-- Counts the edits and deletions after a read mark (ChangesAfter) without reading the messages in
-- between. Partial: plain messages are not in it, so their inserts do not touch it.
CREATE INDEX messages_changes ON messages (room, seq) WHERE kind != '';
