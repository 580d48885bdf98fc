-- A room's topic (natter.Room.Topic): a line its moderators set, shown under its title.
ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';
