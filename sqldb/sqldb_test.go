package sqldb

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestDSNs returns the stores a test should run against: always a fresh
// SQLite file, and PostgreSQL when HOTLINE_TEST_PG_DSN is set (make test sets
// it). Under CI=true a missing PostgreSQL fails the test instead of skipping.
func testDSNs(t *testing.T) map[string]string {
	m := map[string]string{"sqlite": filepath.Join(t.TempDir(), "t.db")}
	if dsn := os.Getenv("HOTLINE_TEST_PG_DSN"); dsn != "" {
		m["postgres"] = dsn
	} else if os.Getenv("CI") == "true" {
		t.Fatal("HOTLINE_TEST_PG_DSN is not set under CI=true (make test starts PostgreSQL)")
	}
	return m
}

func TestOpenAndMigrate(t *testing.T) {
	for name, dsn := range testDSNs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, err := Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			comp := "sqldbtest_" + name
			db.ExecContext(ctx, `DROP TABLE IF EXISTS sqldbtest_t`)
			db.ExecContext(ctx, `DELETE FROM schema_migrations WHERE component = $1`, comp)
			ms := []Migration{{Version: 1, SQL: "CREATE TABLE sqldbtest_t (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO sqldbtest_t (id, v) VALUES (1, 'a')"}}
			for i := 0; i < 2; i++ { // twice: the second run must do nothing
				if err := db.Migrate(ctx, comp, ms); err != nil {
					t.Fatal(err)
				}
			}
			var v string
			if err := db.QueryRowContext(ctx, `SELECT v FROM sqldbtest_t WHERE id = $1`, 1).Scan(&v); err != nil || v != "a" {
				t.Fatalf("got %q, %v", v, err)
			}
			if err := db.Migrate(ctx, comp, []Migration{{Version: 2}}); err == nil {
				t.Fatal("a migration list that skips version 1 was accepted")
			}
		})
	}
}
