package abuse

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cq12345/hotline/sqldb"
)

// The store (component "abuse") has two tables: an append-only event log
// that the in-memory state is rebuilt from at start and that a second
// process follows, and the decisions with their reviews (the supervisor
// queue).
var migrations = []sqldb.Migration{{
	Version: 1,
	SQL: `CREATE TABLE abuse_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, ` + eventCols + `);
` + tablesRest,
	PostgresSQL: `CREATE TABLE abuse_events (seq BIGSERIAL PRIMARY KEY, ` + eventCols + `);
` + tablesRest,
}}

const eventCols = `id TEXT NOT NULL UNIQUE,
	at BIGINT NOT NULL,
	kind TEXT NOT NULL,
	caller_hash TEXT NOT NULL,
	call_id TEXT NOT NULL DEFAULT '',
	proc TEXT NOT NULL DEFAULT '',
	data TEXT NOT NULL DEFAULT '{}'`

const tablesRest = `CREATE INDEX abuse_events_caller ON abuse_events (caller_hash, at);
CREATE INDEX abuse_events_call ON abuse_events (call_id);
CREATE INDEX abuse_events_at ON abuse_events (at);
CREATE TABLE abuse_decisions (
	id TEXT PRIMARY KEY,
	caller_hash TEXT NOT NULL,
	measure TEXT NOT NULL,
	status TEXT NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	updated BIGINT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX abuse_decisions_caller ON abuse_decisions (caller_hash, created);
CREATE INDEX abuse_decisions_updated ON abuse_decisions (updated)`

// Event kinds of the log.
const (
	evArrive   = "arrive"
	evEnd      = "end"
	evFlag     = "flag"
	evDecision = "decision" // a new decision or a review of one (the whole decision)
)

// event is one entry of the log. Only the fields of its kind are set.
type event struct {
	Seq        int64     `json:"-"`
	ID         string    `json:"-"`
	At         time.Time `json:"-"`
	Kind       string    `json:"-"`
	CallerHash string    `json:"-"`
	CallID     string    `json:"-"`
	Proc       string    `json:"-"`

	// arrive
	Exempt  string  `json:"exempt,omitempty"`
	Measure Measure `json:"measure,omitempty"` // applied to the call
	Dec     string  `json:"decision,omitempty"`
	// end
	Ended     time.Time `json:"ended,omitzero"`
	Outcome   string    `json:"outcome,omitempty"`
	IVRMS     int64     `json:"ivr_ms,omitempty"`
	TalkMS    int64     `json:"talk_ms,omitempty"`
	FollowUp  bool      `json:"follow_up,omitempty"`
	CutOff    bool      `json:"cut_off,omitempty"`
	Long      bool      `json:"long,omitempty"`
	Recording string    `json:"recording,omitempty"`
	Arrived   time.Time `json:"arrived,omitzero"` // end: the arrival, to take a follow-up back
	// flag
	Agent      string `json:"agent,omitempty"`
	Flag       string `json:"flag,omitempty"`
	NoteSealed string `json:"note_sealed,omitempty"`
	// decision
	Decision *Decision `json:"decision_body,omitempty"`
	Review   string    `json:"review,omitempty"` // the review action, for a reviewed decision
}

type dbStore struct {
	db *sqldb.DB
}

func (s *dbStore) writeBatch(ctx context.Context, evs []*event) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("abuse: store: %w", err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO abuse_events (id, at, kind, caller_hash, call_id, proc, data)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("abuse: store: %w", err)
	}
	defer ins.Close()
	for _, e := range evs {
		data, _ := json.Marshal(e)
		if _, err := ins.ExecContext(ctx, e.ID, e.At.UnixMicro(), e.Kind, e.CallerHash, e.CallID, e.Proc, string(data)); err != nil {
			return fmt.Errorf("abuse: store event: %w", err)
		}
		if e.Decision != nil {
			if err := upsertDecision(ctx, tx, e.Decision); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("abuse: store commit: %w", err)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func upsertDecision(ctx context.Context, x execer, d *Decision) error {
	body, _ := json.Marshal(d)
	_, err := x.ExecContext(ctx, `INSERT INTO abuse_decisions (id, caller_hash, measure, status, created, expires, updated, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, expires = excluded.expires, updated = excluded.updated, body = excluded.body
WHERE abuse_decisions.updated <= excluded.updated`,
		d.ID, d.CallerHash, d.Measure.String(), d.Status, d.Created.UnixMicro(), d.Expires.UnixMicro(), d.Updated.UnixMicro(), string(body))
	if err != nil {
		return fmt.Errorf("abuse: store decision %s: %w", d.ID, err)
	}
	return nil
}

// prune deletes events before t.
func (s *dbStore) prune(ctx context.Context, t time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM abuse_events WHERE at < $1`, t.UnixMicro())
	return err
}

const eventSelect = `SELECT seq, id, at, kind, caller_hash, call_id, proc, data FROM abuse_events`

func scanEvents(rows *sql.Rows) ([]*event, error) {
	defer rows.Close()
	var out []*event
	for rows.Next() {
		var e event
		var at int64
		var data string
		if err := rows.Scan(&e.Seq, &e.ID, &at, &e.Kind, &e.CallerHash, &e.CallID, &e.Proc, &data); err != nil {
			return nil, fmt.Errorf("abuse: read events: %w", err)
		}
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return nil, fmt.Errorf("abuse: event %s: %w", e.ID, err)
		}
		e.At = time.UnixMicro(at)
		out = append(out, &e)
	}
	return out, rows.Err()
}

// eventsAfter reads events with seq > after, at or after from, in seq
// order, at most limit.
func (s *dbStore) eventsAfter(ctx context.Context, after int64, from time.Time, limit int) ([]*event, error) {
	rows, err := s.db.QueryContext(ctx, eventSelect+` WHERE seq > $1 AND at >= $2 ORDER BY seq LIMIT `+fmt.Sprint(limit), after, from.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("abuse: read events: %w", err)
	}
	return scanEvents(rows)
}

// eventsOf reads a caller's events in [from, to), oldest first.
func (s *dbStore) eventsOf(ctx context.Context, callerHash string, from, to time.Time) ([]*event, error) {
	rows, err := s.db.QueryContext(ctx, eventSelect+` WHERE caller_hash = $1 AND at >= $2 AND at < $3 ORDER BY at, seq`,
		callerHash, from.UnixMicro(), to.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("abuse: read events: %w", err)
	}
	return scanEvents(rows)
}

// callerOfCall finds the caller hash of a call from its arrival event.
func (s *dbStore) callerOfCall(ctx context.Context, callID string) (string, time.Time, error) {
	var h string
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT caller_hash, at FROM abuse_events WHERE call_id = $1 AND kind = $2 ORDER BY seq LIMIT 1`, callID, evArrive).Scan(&h, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("abuse: find call: %w", err)
	}
	return h, time.UnixMicro(at), nil
}

func (s *dbStore) decision(ctx context.Context, id string) (*Decision, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT body FROM abuse_decisions WHERE id = $1`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("abuse: read decision: %w", err)
	}
	var d Decision
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		return nil, fmt.Errorf("abuse: decision %s: %w", id, err)
	}
	return &d, nil
}

// ListFilter selects decisions.
type ListFilter struct {
	// Queue: only decisions waiting for a person: pending, or in force and
	// never reviewed.
	Queue bool
	// Status: pending, active, lifted, superseded, expired.
	Status     string
	CallerHash string
	Limit      int // default 100, at most 1000
}

func (s *dbStore) decisions(ctx context.Context, f ListFilter, now time.Time) ([]*Decision, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.CallerHash != "" {
		add("caller_hash = ?", f.CallerHash)
	}
	switch f.Status {
	case "":
	case StatusExpired:
		add("status IN ('active', 'pending') AND expires <= ?", now.UnixMicro())
	case StatusActive, StatusPending:
		add("status = ?", f.Status)
		add("expires > ?", now.UnixMicro())
	default:
		add("status = ?", f.Status)
	}
	if f.Queue {
		add("status IN ('active', 'pending') AND expires > ?", now.UnixMicro())
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT body FROM abuse_decisions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY created DESC LIMIT %d", min(limit, 1000))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("abuse: list decisions: %w", err)
	}
	defer rows.Close()
	var out []*Decision
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var d Decision
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			return nil, err
		}
		if f.Queue && len(d.Reviews) > 0 && d.Status != StatusPending {
			continue
		}
		out = append(out, &d)
	}
	return out, rows.Err()
}
