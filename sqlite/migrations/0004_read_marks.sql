-- How far each account has read each room (natter.ReadMark). user_name is not a foreign key, as
-- in sessions. A mark whose epoch is not its room's is stale: it is kept until the account reads
-- the room again, and ignored meanwhile.
CREATE TABLE read_marks (
	user_name  TEXT NOT NULL,
	room       TEXT NOT NULL,
	epoch      TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (user_name, room)
) STRICT, WITHOUT ROWID;
