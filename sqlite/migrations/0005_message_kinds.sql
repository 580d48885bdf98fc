-- Edits and deletions are entries of the log too (natter.Message.Kind, .Target): the message they
-- change stays as it was stored. Plain messages keep the defaults, so their insert is unchanged.
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN target INTEGER NOT NULL DEFAULT 0;
