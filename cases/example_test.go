package cases_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/routing"
	"github.com/cq12345/hotline/sqldb"
)

// Example shows how hotlined wires the case store: SQLite in the data
// directory (or a PostgreSQL DSN), the routing calendar for due dates, the
// journal beside it, and the writes of one call.
func Example() {
	ctx := context.Background()
	log := slog.Default()
	dataDir, dsn := "./var", "" // dsn: "postgres://…" for a city deployment
	if dsn == "" {
		dsn = filepath.Join(dataDir, "hotline.db")
	}
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		log.Error("store", "err", err)
		return
	}
	defer db.Close()
	// Keys: HOTLINE_CASE_KEYS / HOTLINE_CASE_HASH_KEY, else <data-dir>/keys.
	// Generate them only for the embedded SQLite default: processes sharing
	// one PostgreSQL must share one set of keys.
	prot, err := cases.LoadProtector(filepath.Join(dataDir, "keys"), db.Dialect == sqldb.SQLite, log)
	if err != nil {
		log.Error("keys", "err", err)
		return
	}
	cals, err := routing.DefaultCalendars()
	if err != nil {
		log.Error("calendars", "err", err)
		return
	}
	due := cases.DuePolicy{Calendar: cases.WorkingDayFunc(func(d time.Time) bool {
		k, _, _ := cals.DayKind("cn", d.In(cases.Shanghai()))
		return k == routing.Workday || k == routing.AdjustedWorkday
	})}
	sqlStore, err := cases.OpenSQL(ctx, db, cases.SQLConfig{Protector: prot, Due: due})
	if err != nil {
		log.Error("cases", "err", err)
		return
	}
	j, err := cases.OpenJournal(filepath.Join(dataDir, "journal", "cases.journal"))
	if err != nil {
		log.Error("journal", "err", err)
		return
	}
	store, err := cases.NewDurable(sqlStore, cases.DurableConfig{Journal: j, Keys: prot.Keys, Log: log})
	if err != nil {
		log.Error("cases", "err", err)
		return
	}
	defer store.Close()

	// When the call is answered (start the greeting, but do not let it end
	// before this returns):
	c, err := store.CreateForCall(ctx, cases.NewCall{CallID: "a84b4c76e66710", Caller: "13800138000",
		Dialled: "12345", Plane: "sip", Started: time.Now(), Answered: time.Now(), Language: "zh-CN"})
	if err != nil {
		log.Error("case", "err", err)
		return
	}
	log.Info("case opened", "case", c.String()) // masked
	// Per IVR node:
	e := cases.NewEvent(c.ID, cases.EventPath)
	e.Node, e.Digits = "main-menu", "2"
	store.AppendEvent(ctx, e)
	// At the end of the call:
	end := cases.NewEvent(c.ID, cases.EventEnded)
	end.Outcome, end.Queue, end.Wait = cases.OutcomeAbandoned, "general", 9*time.Second
	store.AppendEvent(ctx, end)
}
