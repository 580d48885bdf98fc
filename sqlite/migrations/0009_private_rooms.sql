-- Private rooms (natter.Room.Private): only their members (accounts) see them. Members are only
-- ever added, never removed, so a node may remember who is one.
ALTER TABLE rooms ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
CREATE TABLE room_members (
	room      TEXT NOT NULL,
	user_name TEXT NOT NULL,
	added_by  TEXT NOT NULL,
	added_at  INTEGER NOT NULL,
	PRIMARY KEY (room, user_name)
) STRICT, WITHOUT ROWID;
