-- A ban may end by itself (until, in nanoseconds; 0: until lifted) and say why (reason).
ALTER TABLE room_bans ADD COLUMN until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE room_bans ADD COLUMN reason TEXT NOT NULL DEFAULT '';
