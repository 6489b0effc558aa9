// Package flowstest opens throw-away data stores for the tests of flows and
// api: a fresh SQLite file always, and PostgreSQL when HOTLINE_TEST_PG_DSN is
// set (each test in a schema of its own, dropped afterwards, so that tests of
// several packages can share one server). Under CI=true a missing PostgreSQL
// fails the test instead of skipping it.
package flowstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/cq12345/hotline/sqldb"
)

// DSNs returns the data stores a test should run on, by name ("sqlite",
// "postgres"). Every call gives new, empty stores; open a DSN twice to get
// two connections pools on one store (two processes, as far as the store can
// tell).
func DSNs(t testing.TB) map[string]string {
	t.Helper()
	m := map[string]string{"sqlite": filepath.Join(t.TempDir(), "t.db")}
	if dsn := os.Getenv("HOTLINE_TEST_PG_DSN"); dsn != "" {
		m["postgres"] = pgSchema(t, dsn)
	} else if os.Getenv("CI") == "true" {
		t.Fatal("HOTLINE_TEST_PG_DSN is not set under CI=true (make test starts PostgreSQL)")
	}
	return m
}

// Open opens dsn and closes it when the test ends.
func Open(t testing.TB, dsn string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// pgSchema creates an empty schema and returns dsn with search_path set to
// it; the schema is dropped when the test ends.
func pgSchema(t testing.TB, dsn string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	admin, err := sqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := sqldb.Open(context.Background(), dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer a.Close()
		if _, err := a.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
