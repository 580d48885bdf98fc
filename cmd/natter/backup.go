package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"natter/app"
	"natter/sqlite"
)

const dbFile = app.DBFile

// runBackup implements `natter backup --data-dir D FILE`: a consistent copy of a running (or
// stopped) natter's database, with new epochs for its rooms (see sqlite.Backup).
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./natter-data", "data directory of the natter to back up (it may be running)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: natter backup [--data-dir DIR] FILE\n\nWrites a consistent copy of natter's database to FILE (which must not exist), while natter runs.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("backup takes one FILE to write, got %q", pos)
	}
	rooms, msgs, err := sqlite.Backup(ctx, filepath.Join(*dataDir, dbFile), pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %d rooms and %d messages to %s\n", rooms, msgs, pos[0])
	return nil
}

// runRestore implements `natter restore --data-dir D FILE`: natter must be stopped.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./natter-data", "data directory to restore into (natter must be stopped)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: natter restore [--data-dir DIR] FILE\n\nReplaces natter's database with the backup FILE; natter must be stopped. The database replaced\nis kept as natter.db.before-restore. Clients reload the restored rooms (their epochs are new).")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("restore takes one backup FILE, got %q", pos)
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	db := filepath.Join(*dataDir, dbFile)
	if err := sqlite.Restore(ctx, pos[0], db); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s from %s (the database it replaced, if any, is %s.before-restore)\n", db, pos[0], db)
	return nil
}
