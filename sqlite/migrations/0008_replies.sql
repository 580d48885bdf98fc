-- A message may answer an earlier message of its room (natter.Message.ReplyTo, its seq; 0: none).
-- Plain messages keep the default, so their multi-row insert is unchanged.
ALTER TABLE messages ADD COLUMN reply_to INTEGER NOT NULL DEFAULT 0;
