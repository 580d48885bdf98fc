-- Moderation (natter.ModerationStore): who may not post in a room, and suspended accounts.
-- user_name is not a foreign key: guests, who have no account, may be banned too.
CREATE TABLE room_bans (
	room      TEXT NOT NULL,
	user_name TEXT NOT NULL,
	banned_by TEXT NOT NULL,
	banned_at INTEGER NOT NULL,
	PRIMARY KEY (room, user_name)
) STRICT, WITHOUT ROWID;

-- A suspended account (natter.User.Suspended) may not sign in.
ALTER TABLE users ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
