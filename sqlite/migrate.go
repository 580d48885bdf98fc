package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"natter"
)

// migrations holds the schema as numbered files (0001_init.sql, 0002_...). A file, once released,
// never changes: later changes go in a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migrationSteps are the parts of migrations that SQL can't say, run right after the version's
// file, in the same transaction.
var migrationSteps = map[int]func(context.Context, *sql.Tx) error{
	2: backfillClientKeys,
}

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, v)
		}
		seen[v] = name
		body, err := fs.ReadFile(migrations, path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies the pending migrations and makes sure the default room exists, all in one
// transaction: a failed Open leaves the file as it found it, and two processes opening the same new
// file can't both apply a migration.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	tx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if latest := ms[len(ms)-1].version; current > latest {
		// An older binary must not write to a schema it doesn't know.
		return fmt.Errorf("sqlite: database schema is at version %d, newer than this build's %d", current, latest)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", m.name, err)
		}
		if step := migrationSteps[m.version]; step != nil {
			if err := step(ctx, tx); err != nil {
				return fmt.Errorf("sqlite: migration %s: %w", m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, toNanos(s.now())); err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", m.name, err)
		}
		s.log.Info("sqlite: applied migration", "name", m.name)
	}

	epoch, err := newEpoch()
	if err != nil {
		return fmt.Errorf("sqlite: new epoch: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO rooms (name, title, epoch, last_seq, created_by, created_at)
		VALUES (?, ?, ?, 0, '', ?) ON CONFLICT DO NOTHING`,
		natter.DefaultRoom, "Lobby", epoch, toNanos(s.now().UTC())); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", natter.DefaultRoom, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}
