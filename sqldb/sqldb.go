// Package sqldb opens the data store — SQLite (modernc.org/sqlite, no cgo;
// the embedded default) or PostgreSQL (pgx) — and runs versioned
// migrations. Stores in other packages (cases, flows, abuse, …) take a *DB and
// write SQL that both dialects accept: positional parameters $1, $2, …
// (SQLite reads "$1" as a parameter too), no dialect-only types.
package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Dialect names the database behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open store with its dialect.
type DB struct {
	*sql.DB
	Dialect Dialect
}

// Open opens a data store. dsn is either a PostgreSQL URL
// ("postgres://user@host:port/db?sslmode=disable") or a SQLite file path
// (optionally "sqlite:" prefixed). SQLite runs in WAL mode with a busy
// timeout and synchronous=FULL, so that a commit is on disk when it returns
// (a case must survive kill -9).
func Open(ctx context.Context, dsn string) (*DB, error) {
	var db *DB
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		d, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("sqldb: open postgres: %w", err)
		}
		d.SetMaxOpenConns(32)
		d.SetMaxIdleConns(8)
		d.SetConnMaxIdleTime(5 * time.Minute)
		db = &DB{DB: d, Dialect: Postgres}
	default:
		path := strings.TrimPrefix(dsn, "sqlite:")
		q := "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)&_txlock=immediate"
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		d, err := sql.Open("sqlite", "file:"+path+sep+q)
		if err != nil {
			return nil, fmt.Errorf("sqldb: open sqlite %s: %w", path, err)
		}
		// One writer at a time is SQLite's rule; a small pool still lets
		// readers run beside it in WAL mode.
		d.SetMaxOpenConns(4)
		db = &DB{DB: d, Dialect: SQLite}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqldb: %s: %w", db.Dialect, err)
	}
	return db, nil
}

// Migration is one schema step of a component. Versions start at 1 and go up
// by one; a released migration is never edited, only followed by a new one.
type Migration struct {
	Version int
	// SQL runs in one transaction; statements are separated by ";\n".
	SQL string
	// PostgresSQL, when set, replaces SQL on PostgreSQL.
	PostgresSQL string
}

// Migrate brings component's schema up to date. Each component (cases,
// flows, abuse, …) keeps its own version line in schema_migrations, so
// packages migrate independently. Safe to run from several processes at
// once on PostgreSQL (an advisory lock serialises them).
func (db *DB) Migrate(ctx context.Context, component string, ms []Migration) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqldb: migrate %s: %w", component, err)
	}
	defer conn.Close()
	if db.Dialect == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7345012345)`); err != nil {
			return fmt.Errorf("sqldb: migrate %s: lock: %w", component, err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7345012345)`)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL, version INTEGER NOT NULL, applied_at TEXT NOT NULL,
		PRIMARY KEY (component, version))`); err != nil {
		return fmt.Errorf("sqldb: migrate %s: %w", component, err)
	}
	var have int
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = $1`, component).Scan(&have); err != nil {
		return fmt.Errorf("sqldb: migrate %s: %w", component, err)
	}
	for i, m := range ms {
		if m.Version != i+1 {
			return fmt.Errorf("sqldb: migrate %s: migration %d has version %d", component, i, m.Version)
		}
		if m.Version <= have {
			continue
		}
		text := m.SQL
		if db.Dialect == Postgres && m.PostgresSQL != "" {
			text = m.PostgresSQL
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqldb: migrate %s to %d: %w", component, m.Version, err)
		}
		for _, stmt := range strings.Split(text, ";\n") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("sqldb: migrate %s to %d: %w", component, m.Version, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (component, version, applied_at) VALUES ($1, $2, $3)`,
			component, m.Version, time.Now().UTC().Format(time.RFC3339)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqldb: migrate %s to %d: %w", component, m.Version, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqldb: migrate %s to %d: %w", component, m.Version, err)
		}
	}
	return nil
}
