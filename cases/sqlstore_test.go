package cases_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/cases/casetest"
	"github.com/cq12345/hotline/sqldb"
)

func testProtector(t testing.TB) *cases.Protector {
	t.Helper()
	k := make([]byte, 32)
	h := make([]byte, 32)
	rand.Read(k)
	rand.Read(h)
	kr, err := cases.NewKeyRing("k1", map[string][]byte{"k1": k})
	if err != nil {
		t.Fatal(err)
	}
	p, err := cases.NewProtector(kr, h)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dsns returns the databases a test runs on: SQLite always, PostgreSQL when
// HOTLINE_TEST_PG_DSN is set; under CI=true a missing PostgreSQL fails.
func dsns(t testing.TB) map[string]func(t testing.TB) string {
	m := map[string]func(t testing.TB) string{
		"sqlite": func(t testing.TB) string { return filepath.Join(t.TempDir(), "cases.db") },
	}
	if dsn := os.Getenv("HOTLINE_TEST_PG_DSN"); dsn != "" {
		m["postgres"] = func(t testing.TB) string { return pgSchema(t, dsn) }
	} else if os.Getenv("CI") == "true" {
		t.Fatal("HOTLINE_TEST_PG_DSN is not set under CI=true (make test starts PostgreSQL)")
	}
	return m
}

// pgSchema makes a fresh schema on the shared test server and returns a
// DSN whose connections use it, so that tests (and other packages' tests)
// never see each other's tables. The schema is dropped at cleanup.
func pgSchema(t testing.TB, dsn string) string {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := fmt.Sprintf("casetest_%x", b)
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

func openSQL(t testing.TB, dsn string, p *cases.Protector, due cases.DuePolicy) (*cases.SQLStore, *sqldb.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := cases.OpenSQL(ctx, db, cases.SQLConfig{Protector: p, Due: due})
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func TestSQLStoreConformance(t *testing.T) {
	for name, mk := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			casetest.Run(t, func(t *testing.T, due cases.DuePolicy) casetest.Env {
				dsn := mk(t)
				p := testProtector(t)
				s, _ := openSQL(t, dsn, p, due)
				return casetest.Env{Store: s, Protector: p, Second: func(t *testing.T) cases.Store {
					s2, _ := openSQL(t, dsn, p, due)
					return s2
				}}
			})
		})
	}
}

// Durable is a Store too: behind it, with the store up, the suite must pass
// unchanged (no reserved numbers here: the suite checks numbers are dense).
func TestDurableConformance(t *testing.T) {
	for name, mk := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			casetest.Run(t, func(t *testing.T, due cases.DuePolicy) casetest.Env {
				dsn := mk(t)
				p := testProtector(t)
				wrap := func(t *testing.T) cases.Store {
					s, _ := openSQL(t, dsn, p, due)
					j, err := cases.OpenJournal(filepath.Join(t.TempDir(), "journal"))
					if err != nil {
						t.Fatal(err)
					}
					d, err := cases.NewDurable(s, cases.DurableConfig{Journal: j, Keys: p.Keys, Timeout: 10 * time.Second, ReserveBlock: -1})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() {
						if d.Journaling() {
							t.Error("a write was journaled while the store was up")
						}
						d.Close()
					})
					return d
				}
				return casetest.Env{Store: wrap(t), Protector: p, Second: wrap}
			})
		})
	}
}

// The audit trail is append-only in the database too: not even SQL run
// beside the store can edit or delete an entry.
func TestAuditTrailAppendOnlyInDatabase(t *testing.T) {
	ctx := context.Background()
	for name, mk := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			s, db := openSQL(t, mk(t), testProtector(t), cases.DuePolicy{})
			if err := s.AppendAudit(ctx, cases.AuditEntry{ID: cases.NewID(), Account: "a", Role: "admin", Field: "caller", Reason: "r"}); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{`UPDATE audit_log SET reason = 'x'`, `DELETE FROM audit_log`} {
				if _, err := db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
					t.Errorf("%s: %v, want an append-only refusal", q, err)
				}
			}
			got, err := s.ListAudit(ctx, cases.AuditFilter{})
			if err != nil || len(got) != 1 || got[0].Reason != "r" {
				t.Errorf("after refused edits: %+v, %v", got, err)
			}
		})
	}
}

// Numbers reserved ahead are taken from the same counter: never given twice.
func TestReserveNumbers(t *testing.T) {
	ctx := context.Background()
	for name, mk := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			s, _ := openSQL(t, mk(t), testProtector(t), cases.DuePolicy{})
			nums, err := s.ReserveNumbers(ctx, "20261128", 3)
			if err != nil || strings.Join(nums, ",") != "20261128-000001,20261128-000002,20261128-000003" {
				t.Fatalf("reserve: %v, %v", nums, err)
			}
			c, err := s.CreateForCall(ctx, cases.NewCall{CallID: "x", Caller: "13800138000", Started: casetestTime("2026-11-28T08:00:00+08:00")})
			if err != nil || c.Number != "20261128-000004" {
				t.Fatalf("create after reserve: %v, %v", c, err)
			}
			c2, err := s.CreateForCall(ctx, cases.NewCall{CallID: "y", Caller: "13800138000", Number: nums[1], Started: casetestTime("2026-11-28T08:00:00+08:00")})
			if err != nil || c2.Number != nums[1] {
				t.Fatalf("create with a reserved number: %v, %v", c2, err)
			}
			// The same number again (a restored backup): the store gives a fresh one.
			c3, err := s.CreateForCall(ctx, cases.NewCall{CallID: "z", Caller: "13800138000", Number: nums[1], Started: casetestTime("2026-11-28T08:00:00+08:00")})
			if err != nil || c3.Number != "20261128-000005" {
				t.Fatalf("create with a taken number: %v, %v", c3, err)
			}
		})
	}
}

// After a key rotation, Reseal moves every ciphertext to the new key; the
// old key can then leave the ring and everything still opens.
func TestResealAfterRotation(t *testing.T) {
	ctx := context.Background()
	for name, mk := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			dsn := mk(t)
			k1, k2, hk := make([]byte, 32), make([]byte, 32), make([]byte, 32)
			rand.Read(k1)
			rand.Read(k2)
			rand.Read(hk)
			ring := func(current string, keys map[string][]byte) *cases.Protector {
				kr, err := cases.NewKeyRing(current, keys)
				if err != nil {
					t.Fatal(err)
				}
				p, _ := cases.NewProtector(kr, hk)
				return p
			}
			old := ring("k1", map[string][]byte{"k1": k1})
			s1, _ := openSQL(t, dsn, old, cases.DuePolicy{})
			var ids []string
			for i := 0; i < 3; i++ {
				c, err := s1.CreateForCall(ctx, cases.NewCall{CallID: fmt.Sprint(i), Caller: fmt.Sprintf("1380013800%d", i)})
				if err != nil {
					t.Fatal(err)
				}
				n := cases.NewEvent(c.ID, cases.EventNote)
				n.Note, n.Account = fmt.Sprintf("note %d", i), "agent-1"
				if err := s1.AppendEvent(ctx, n); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, c.ID)
			}
			rotated := ring("k2", map[string][]byte{"k1": k1, "k2": k2})
			s2, _ := openSQL(t, dsn, rotated, cases.DuePolicy{})
			total := 0
			for {
				n, err := s2.Reseal(ctx, 4)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				total += n
			}
			if total != 6 {
				t.Errorf("resealed %d values, want 6 (3 callers, 3 notes)", total)
			}
			only := ring("k2", map[string][]byte{"k2": k2})
			s3, _ := openSQL(t, dsn, only, cases.DuePolicy{})
			rv := &cases.Revealer{Store: s3, Protector: only}
			who := cases.Access{Account: "adm", Role: "admin", Reason: "key rotation check"}
			for i, id := range ids {
				full, err := rv.Caller(ctx, id, who)
				if err != nil || full != fmt.Sprintf("1380013800%d", i) {
					t.Errorf("caller of %s with the new key only: %q, %v", id, full, err)
				}
				notes, err := rv.Notes(ctx, id, who)
				if err != nil || len(notes) != 1 || notes[0].Text != fmt.Sprintf("note %d", i) {
					t.Errorf("notes of %s with the new key only: %v, %v", id, notes, err)
				}
			}
		})
	}
}
