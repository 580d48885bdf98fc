package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"natter"
)

// CreateUser stores an account with an already-hashed password. Errors: EINVALID (bad name or empty
// hash), ECONFLICT (the name is taken).
func (s *Store) CreateUser(ctx context.Context, name, passwordHash string) (natter.User, error) {
	if !natter.ValidUserName(name) {
		return natter.User{}, natter.Errorf(natter.EINVALID, "user name %q is not valid", name)
	}
	if passwordHash == "" {
		// An empty hash would let anything through a careless comparison.
		return natter.User{}, natter.Errorf(natter.EINVALID, "password hash is empty")
	}
	created := toNanos(s.now())
	res, err := s.stmts.insertUser.ExecContext(ctx, name, passwordHash, created)
	if err != nil {
		return natter.User{}, natter.Internal("sqlite: create user", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return natter.User{}, natter.Internal("sqlite: create user", err)
	} else if n == 0 {
		return natter.User{}, natter.Errorf(natter.ECONFLICT, "user name %q is taken", name)
	}
	if err := s.syncWrite(); err != nil {
		return natter.User{}, err
	}
	return natter.User{Name: name, CreatedAt: fromNanos(created)}, nil
}

// UserPasswordHash returns the account (with whether it is suspended) and its password hash.
// ENOTFOUND if absent.
func (s *Store) UserPasswordHash(ctx context.Context, name string) (natter.User, string, error) {
	var u natter.User
	var hash string
	var created int64
	err := s.stmts.readUser.QueryRowContext(ctx, name).Scan(&u.Name, &hash, &created, &u.Suspended)
	if errors.Is(err, sql.ErrNoRows) {
		return natter.User{}, "", natter.Errorf(natter.ENOTFOUND, "user %q does not exist", name)
	}
	if err != nil {
		return natter.User{}, "", natter.Internal("sqlite: user", err)
	}
	u.CreatedAt = fromNanos(created)
	u.Deleted = hash == ""
	return u, hash, nil
}

// DeleteUser deletes an account (natter.UserStore): in one transaction its password hash goes
// (the row stays: its name is never used again), with its sessions and its memberships of private
// rooms but direct conversations.
func (s *Store) DeleteUser(ctx context.Context, name string) ([]string, error) {
	tx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return nil, natter.Internal("sqlite: delete user", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = '' WHERE name = ? AND password_hash != ''`, name)
	if err != nil {
		return nil, natter.Internal("sqlite: delete user", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, natter.Internal("sqlite: delete user", err)
	} else if n == 0 {
		return nil, natter.Errorf(natter.ENOTFOUND, "user %q does not exist", name)
	}
	rows, err := tx.QueryContext(ctx, `SELECT m.room FROM room_members m JOIN rooms r ON r.name = m.room
		WHERE m.user_name = ? AND r.direct = '' ORDER BY m.room`, name)
	if err != nil {
		return nil, natter.Internal("sqlite: delete user", err)
	}
	var rooms []string
	for rows.Next() {
		var room string
		if err := rows.Scan(&room); err != nil {
			rows.Close()
			return nil, natter.Internal("sqlite: delete user", err)
		}
		rooms = append(rooms, room)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, natter.Internal("sqlite: delete user", err)
	}
	for _, q := range []string{
		`DELETE FROM room_members WHERE user_name = ? AND room IN (SELECT name FROM rooms WHERE direct = '')`,
		`DELETE FROM sessions WHERE user_name = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, name); err != nil {
			return nil, natter.Internal("sqlite: delete user", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, natter.Internal("sqlite: delete user", err)
	}
	return rooms, s.syncWrite()
}

// CreateSession stores a session; a zero CreatedAt becomes now. Errors: EINVALID (no token hash or
// user name), ECONFLICT (the token hash is taken).
func (s *Store) CreateSession(ctx context.Context, sess natter.Session) error {
	if sess.TokenHash == "" || sess.UserName == "" {
		return natter.Errorf(natter.EINVALID, "a session needs a token hash and a user name")
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = s.now()
	}
	res, err := s.stmts.insertSession.ExecContext(ctx, sess.TokenHash, sess.UserName, sess.Guest,
		toNanos(sess.CreatedAt), toNanos(sess.ExpiresAt))
	if err != nil {
		return natter.Internal("sqlite: create session", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return natter.Internal("sqlite: create session", err)
	} else if n == 0 {
		return natter.Errorf(natter.ECONFLICT, "session already exists")
	}
	return s.syncWrite()
}

// SessionByTokenHash returns a live session: EUNAUTHORIZED if it is absent or its ExpiresAt is not
// after Config.Now.
func (s *Store) SessionByTokenHash(ctx context.Context, tokenHash string) (natter.Session, error) {
	var sess natter.Session
	var created, expires int64
	err := s.stmts.readSession.QueryRowContext(ctx, tokenHash).Scan(&sess.TokenHash, &sess.UserName, &sess.Guest, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return natter.Session{}, natter.Errorf(natter.EUNAUTHORIZED, "no such session")
	}
	if err != nil {
		return natter.Session{}, natter.Internal("sqlite: session", err)
	}
	if expires <= toNanos(s.now()) {
		return natter.Session{}, natter.Errorf(natter.EUNAUTHORIZED, "the session has expired")
	}
	sess.CreatedAt, sess.ExpiresAt = fromNanos(created), fromNanos(expires)
	return sess, nil
}

// DeleteSession revokes a session at once; deleting an absent session is not an error.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	res, err := s.stmts.deleteSession.ExecContext(ctx, tokenHash)
	if err != nil {
		return natter.Internal("sqlite: delete session", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return nil // nothing was written
	}
	return s.syncWrite()
}
