-- A deletion erases the text of the message it deletes and of that message's edits
-- (natter.Message.Deleted): this finds a message's changes by their target. Partial, like
-- messages_changes: plain messages are not in it, so their inserts do not touch it.
CREATE INDEX messages_targets ON messages (room, target) WHERE kind != '';
