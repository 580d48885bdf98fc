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
	dataDir, file, err := parseFileCommand("backup", "data directory of the natter to back up (it may be running)",
		"Writes a consistent copy of natter's database to FILE (which must not exist), while natter runs.", args, stderr)
	if err != nil {
		return err
	}
	rooms, msgs, err := sqlite.Backup(ctx, filepath.Join(dataDir, dbFile), file)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %d rooms and %d messages to %s\n", rooms, msgs, file)
	return nil
}

// runRestore implements `natter restore --data-dir D FILE`: natter must be stopped.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	dataDir, file, err := parseFileCommand("restore", "data directory to restore into (natter must be stopped)",
		"Replaces natter's database with the backup FILE; natter must be stopped. The database replaced\nis kept as natter.db.before-restore. Clients reload the restored rooms (their epochs are new).", args, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	db := filepath.Join(dataDir, dbFile)
	if err := sqlite.Restore(ctx, file, db); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s from %s (the database it replaced, if any, is %s.before-restore)\n", db, file, db)
	return nil
}

// parseFileCommand parses the flags of a command that takes --data-dir and one FILE.
func parseFileCommand(name, dirHelp, about string, args []string, stderr io.Writer) (dataDir, file string, err error) {
	fs := flag.NewFlagSet("natter "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", "./natter-data", dirHelp)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: natter %s [--data-dir DIR] FILE\n\n%s\n", name, about)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return "", "", err
	}
	if len(pos) != 1 {
		fs.Usage()
		return "", "", fmt.Errorf("%s takes one FILE, got %q", name, pos)
	}
	return *dir, pos[0], nil
}
