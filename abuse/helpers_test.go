package abuse

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/sqldb"
)

// dsns: SQLite always, PostgreSQL when HOTLINE_TEST_PG_DSN is set; under
// CI=true a missing PostgreSQL fails.
func dsns(t testing.TB) map[string]func(t testing.TB) string {
	m := map[string]func(t testing.TB) string{
		"sqlite": func(t testing.TB) string { return filepath.Join(t.TempDir(), "abuse.db") },
	}
	if dsn := os.Getenv("HOTLINE_TEST_PG_DSN"); dsn != "" {
		m["postgres"] = func(t testing.TB) string { return pgSchema(t, dsn) }
	} else if os.Getenv("CI") == "true" {
		t.Fatal("HOTLINE_TEST_PG_DSN is not set under CI=true (make test starts PostgreSQL)")
	}
	return m
}

// pgSchema makes a fresh schema on the test server, dropped at cleanup.
func pgSchema(t testing.TB, dsn string) string {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := fmt.Sprintf("abusetest_%x", b)
	admin, err := sqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		admin.Close()
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

func openDB(t testing.TB, dsn string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testHash stands in for the keyed caller hash.
func testHash(n string) string {
	if n == "" {
		return ""
	}
	h := sha256.Sum256([]byte("test-key/" + n))
	return hex.EncodeToString(h[:])
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// openCases is a fake case store answering "has an open case".
type openCases struct {
	mu    sync.Mutex
	open  map[string]bool
	asked int
}

func (o *openCases) HasOpenCase(_ context.Context, h string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked++
	return o.open[h], nil
}

// audits records the audit trail.
type audits struct {
	mu sync.Mutex
	l  []cases.AuditEntry
}

func (a *audits) AppendAudit(_ context.Context, e cases.AuditEntry) error {
	a.mu.Lock()
	a.l = append(a.l, e)
	a.mu.Unlock()
	return nil
}

type env struct {
	svc   *Service
	clock *clock
	open  *openCases
	audit *audits
	db    *sqldb.DB
}

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, cases.Shanghai())

func newEnv(t testing.TB, dsn string, db *sqldb.DB) *env {
	t.Helper()
	if db == nil {
		db = openDB(t, dsn)
	}
	e := &env{clock: &clock{t: t0}, open: &openCases{open: map[string]bool{}}, audit: &audits{}, db: db}
	// The tests drive the clock, flushes and sweeps themselves: no
	// background sync or sweep (a wall-clock sweep would act on the manual
	// clock at a moment the test does not choose).
	svc, err := Open(context.Background(), Config{DB: db, Hash: testHash, OpenCases: e.open, Audit: e.audit,
		Now: e.clock.Now, SyncEvery: -1, SweepEvery: -1, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	e.svc = svc
	return e
}

// call places one call at at: Check, then End after dur.
func (e *env) call(id, caller string, at time.Time, dur time.Duration, end CallEnd) Verdict {
	e.clock.Set(at)
	v := e.svc.Check(context.Background(), CallStart{CallID: id, Caller: caller, At: at})
	end.CallID = id
	end.Ended = at.Add(dur)
	if end.Outcome == "" {
		end.Outcome = string(cases.OutcomeSelfService)
		end.Progress = true
	}
	if v.Measure == Blocked {
		end.Outcome = string(cases.OutcomeRefusedAbusive)
	}
	e.svc.End(context.Background(), end)
	return v
}
