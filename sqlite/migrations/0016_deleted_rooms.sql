-- Deleted rooms (natter.RoomStore.DeleteRoom). A deleted room's row stays, with when and by whom
-- it was deleted, so that its name is never used again; every read of rooms leaves it out. Its
-- messages, pins, bans, members, read marks and the rest go after the deletion commits, in small
-- transactions (purge.go), so that deleting a long log never holds the writer for long; purged
-- says they are gone.
ALTER TABLE rooms ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN deleted_by TEXT NOT NULL DEFAULT '';
ALTER TABLE rooms ADD COLUMN purged INTEGER NOT NULL DEFAULT 0;
