-- Direct conversations (natter.Room.Direct): a private room of two accounts, kept here as their
-- names joined by a space ('' for every other room).
ALTER TABLE rooms ADD COLUMN direct TEXT NOT NULL DEFAULT '';
