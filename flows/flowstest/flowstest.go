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
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/routing"
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

// SmallFlow is a valid flow in the ivr flow language (against Env): a
// greeting, a menu with 4 for 12315 and 0 for an agent.
const SmallFlow = `name: small
description: A small flow for tests.
languages: [zh-CN, en]
start: greet
nodes:
  greet:
    kind: play
    prompts: [greeting]
    next: main
  main:
    kind: menu
    prompts: [main-menu]
    no_input_prompts: [no-input]
    invalid_prompts: [invalid-key]
    options:
      "4": to-12315
      "0": agent
    on_exhausted: agent
  to-12315:
    kind: transfer
    destination: "12315"
    prompts: [transferring-12315]
    on_fail: agent
  agent:
    kind: queue
    queue: general
    prompts: [transferring-agent]
`

// SmallFlowV2 is SmallFlow without the 12315 option (4 now reaches an
// agent too).
var SmallFlowV2 = strings.Replace(strings.Replace(SmallFlow, `"4": to-12315`, `"4": agent`, 1),
	"  to-12315:\n    kind: transfer\n    destination: \"12315\"\n    prompts: [transferring-12315]\n    on_fail: agent\n", "", 1)

// BrokenFlow has four problems: an unknown target (line 6), an unreachable
// node, a missing prompt and an unconfigured queue (line 10).
const BrokenFlow = `name: small
languages: [zh-CN, en]
start: greet
nodes:
  greet:
    kind: play
    prompts: [greeting]
    next: nowhere
  agent:
    kind: queue
    queue: no-such-queue
    prompts: [no-such-prompt]
`

// Env is an ivr environment for tests: the embedded prompt catalogue, the
// destination "12315", the queue "general" and the default calendars.
func Env(t testing.TB) ivr.Env {
	t.Helper()
	b, err := fs.ReadFile(prompts.Embedded(), "catalogue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := prompts.ParseCatalogue(b)
	if err != nil {
		t.Fatal(err)
	}
	cals, err := routing.DefaultCalendars()
	if err != nil {
		t.Fatal(err)
	}
	return ivr.Env{Catalogue: cat, Destinations: map[string]bool{"12315": true}, Queues: map[string]bool{"general": true}, Calendars: cals}
}
