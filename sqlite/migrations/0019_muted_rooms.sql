-- Rooms an account muted (natter.ReadMarkStore.MuteRoom): their new messages stay out of its
-- counts and notifications but for those that name it. muted_at is in nanoseconds.
CREATE TABLE muted_rooms (
	user_name TEXT NOT NULL,
	room      TEXT NOT NULL,
	muted_at  INTEGER NOT NULL,
	PRIMARY KEY (user_name, room)
) STRICT, WITHOUT ROWID;
