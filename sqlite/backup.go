package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Backup writes a consistent copy of the database at dbPath to out, while natter runs on it:
// SQLite's VACUUM INTO reads one snapshot, and commits go on meanwhile. out must not exist.
//
// Every room of the copy gets a new epoch. A copy is for restoring, and a log restored from it
// lacks whatever came after the copy: the seqs of those messages will be given again to new ones.
// A client still holding a cursor from before the restore would skip those (it has "seen" their
// seqs); a new epoch tells it to drop its cursor and reload instead (the contract's epoch rule).
func Backup(ctx context.Context, dbPath, out string) (rooms int, messages int64, err error) {
	if _, err := os.Stat(dbPath); err != nil {
		return 0, 0, fmt.Errorf("sqlite: backup: no database at %s: %w", dbPath, err)
	}
	if _, err := os.Stat(out); err == nil {
		return 0, 0, fmt.Errorf("sqlite: backup: %s exists; choose a new file", out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	if strings.ContainsRune(dbPath, '?') || strings.ContainsRune(out, '?') {
		return 0, 0, errors.New("sqlite: backup: paths must not contain '?'")
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".partial-*")
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	os.Remove(tmpPath) // VACUUM INTO wants to create it
	defer func() {
		if err != nil {
			os.Remove(tmpPath)
		}
	}()

	src, err := sql.Open("sqlite", dbPath+fmt.Sprintf("?_pragma=busy_timeout(%d)", DefaultBusyTimeout.Milliseconds()))
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	_, err = src.ExecContext(ctx, `VACUUM INTO ?`, tmpPath)
	if cerr := src.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: backup: copy: %w", err)
	}

	rooms, messages, err = renewEpochs(ctx, tmpPath)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := syncPath(tmpPath); err != nil {
		return 0, 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := os.Rename(tmpPath, out); err != nil {
		return 0, 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := syncPath(filepath.Dir(out)); err != nil {
		return 0, 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	return rooms, messages, nil
}

// renewEpochs gives every room of the database at path a new epoch, and counts rooms and messages.
func renewEpochs(ctx context.Context, path string) (rooms int, messages int64, err error) {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	rows, err := db.QueryContext(ctx, `SELECT name FROM rooms`)
	if err != nil {
		return 0, 0, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return 0, 0, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	for _, n := range names {
		epoch, err := newEpoch()
		if err != nil {
			return 0, 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE rooms SET epoch = ? WHERE name = ?`, epoch, n); err != nil {
			return 0, 0, err
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM messages`).Scan(&messages); err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, err
	}
	return len(names), messages, nil
}

// Restore replaces the database at dbPath with the backup at from (made by Backup), for a natter
// that is not running: it takes the database's lock, so it fails while a Store has it open. The
// old database and its WAL move aside to dbPath + ".before-restore" (a WAL left beside another
// database would be read as part of it).
func Restore(ctx context.Context, from, dbPath string) (err error) {
	if _, err := os.Stat(from); err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	if strings.ContainsRune(from, '?') {
		return errors.New("sqlite: restore: the backup's path must not contain '?'")
	}
	check, err := sql.Open("sqlite", from+"?_pragma=query_only(1)")
	if err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	var ok string
	var n int
	err = check.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&ok)
	if err == nil {
		err = check.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n)
	}
	check.Close()
	if err != nil || ok != "ok" || n == 0 {
		return fmt.Errorf("sqlite: restore: %s is not a natter database (%v)", from, errors.Join(err, errors.New(ok)))
	}

	lock, err := lockDB(dbPath)
	if err != nil {
		return err
	}
	defer lock.release()
	// The database replaced is kept, with its WAL (a crash leaves commits there), under a name
	// SQLite pairs the same way: X and X-wal.
	kept := dbPath + ".before-restore"
	if _, err := os.Stat(kept); err == nil {
		return fmt.Errorf("sqlite: restore: %s exists from an earlier restore; move it away first", kept)
	}
	for _, suffix := range []string{"", "-wal"} {
		if err := os.Rename(dbPath+suffix, kept+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlite: restore: %w", err)
		}
	}
	if err := os.Remove(dbPath + "-shm"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	if err := copyFile(from, dbPath); err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	return syncPath(filepath.Dir(dbPath))
}

// copyFile copies from to a new file to, and syncs it.
func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
