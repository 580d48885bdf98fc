-- Rooms an account closed (natter.ReadMarkStore.HideRoom): the room's log (epoch, seq) when it
-- did, so that lists leave the room out until something is posted after it (natter.Hidden).
-- user_name is not a foreign key, as in read_marks; hidden_at is in nanoseconds.
CREATE TABLE hidden_rooms (
	user_name TEXT NOT NULL,
	room      TEXT NOT NULL,
	epoch     TEXT NOT NULL,
	seq       INTEGER NOT NULL,
	hidden_at INTEGER NOT NULL,
	PRIMARY KEY (user_name, room)
) STRICT, WITHOUT ROWID;
