-- Lets an account's sessions be ended together (a password change, signing out everywhere)
-- without a full scan.
CREATE INDEX sessions_user_name ON sessions (user_name);
