package cases

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cq12345/hotline/sqldb"
)

// Migrations are the cases component's schema steps (sqldb.Migrate). Times
// are Unix microseconds (BIGINT) and ciphertexts text, so one schema serves
// SQLite and PostgreSQL; only the auto-numbered columns and the triggers
// that make the audit trail append-only differ.
var migrations = []sqldb.Migration{{
	Version: 1,
	SQL: `CREATE TABLE case_counters (day TEXT PRIMARY KEY, last BIGINT NOT NULL);
` + casesTable + `;
CREATE TABLE case_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, ` + eventCols + `);
CREATE TABLE audit_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, ` + auditCols + `);
` + indexes + `;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`,
	PostgresSQL: `CREATE TABLE case_counters (day TEXT PRIMARY KEY, last BIGINT NOT NULL);
` + casesTable + `;
CREATE TABLE case_events (seq BIGSERIAL PRIMARY KEY, ` + eventCols + `);
CREATE TABLE audit_log (seq BIGSERIAL PRIMARY KEY, ` + auditCols + `);
` + indexes + `;
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()`,
}}

const casesTable = `CREATE TABLE cases (
	id TEXT PRIMARY KEY,
	number TEXT NOT NULL UNIQUE,
	call_id TEXT NOT NULL UNIQUE,
	caller_sealed TEXT NOT NULL DEFAULT '',
	caller_hash TEXT NOT NULL DEFAULT '',
	caller_masked TEXT NOT NULL DEFAULT '',
	dialled TEXT NOT NULL DEFAULT '',
	plane TEXT NOT NULL DEFAULT '',
	started_at BIGINT NOT NULL,
	answered_at BIGINT,
	ended_at BIGINT,
	appeal_type TEXT NOT NULL DEFAULT '',
	domain TEXT NOT NULL DEFAULT '',
	language TEXT NOT NULL DEFAULT '',
	destination TEXT NOT NULL DEFAULT '',
	queue TEXT NOT NULL DEFAULT '',
	agent TEXT NOT NULL DEFAULT '',
	wait_us BIGINT NOT NULL DEFAULT 0,
	talk_us BIGINT NOT NULL DEFAULT 0,
	outcome TEXT NOT NULL DEFAULT '',
	survey INTEGER NOT NULL DEFAULT 0,
	unit TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	partner_ref TEXT NOT NULL DEFAULT '',
	follow_up_of TEXT NOT NULL DEFAULT '',
	due TEXT NOT NULL DEFAULT '',
	closed_at BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL)`

const eventCols = `id TEXT NOT NULL UNIQUE,
	case_id TEXT NOT NULL REFERENCES cases (id),
	kind TEXT NOT NULL,
	at BIGINT NOT NULL,
	data TEXT NOT NULL,
	note_sealed TEXT NOT NULL DEFAULT ''`

const auditCols = `id TEXT NOT NULL UNIQUE,
	at BIGINT NOT NULL,
	account TEXT NOT NULL,
	role TEXT NOT NULL,
	case_id TEXT NOT NULL DEFAULT '',
	field TEXT NOT NULL,
	reason TEXT NOT NULL`

const indexes = `CREATE INDEX cases_started ON cases (started_at);
CREATE INDEX cases_caller ON cases (caller_hash);
CREATE INDEX cases_status ON cases (status);
CREATE INDEX cases_unit ON cases (unit);
CREATE INDEX cases_follow_up ON cases (follow_up_of);
CREATE INDEX case_events_case ON case_events (case_id, seq);
CREATE INDEX audit_log_case ON audit_log (case_id);
CREATE INDEX audit_log_at ON audit_log (at)`

// SQLConfig configures a SQLStore.
type SQLConfig struct {
	// Protector seals caller numbers and notes. Required.
	Protector *Protector
	// Due computes due dates when an appeal type is set.
	Due DuePolicy
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// SQLStore is the Store on sqldb: SQLite (the embedded default) or
// PostgreSQL (several hotlined processes share one).
type SQLStore struct {
	db  *sqldb.DB
	cfg SQLConfig
}

var _ Store = (*SQLStore)(nil)
var _ NumberReserver = (*SQLStore)(nil)

// OpenSQL migrates the cases schema on db and returns the store.
func OpenSQL(ctx context.Context, db *sqldb.DB, cfg SQLConfig) (*SQLStore, error) {
	if cfg.Protector == nil {
		return nil, errors.New("cases: SQL store needs a Protector")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := db.Migrate(ctx, "cases", migrations); err != nil {
		return nil, err
	}
	return &SQLStore{db: db, cfg: cfg}, nil
}

func us(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromUS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64)
}

// allocate advances a day's counter by n inside tx and returns the last
// number taken. The upsert locks the counter row until tx ends, so two
// processes on one PostgreSQL never get the same number (and SQLite has a
// single writer anyway).
func allocate(ctx context.Context, tx *sql.Tx, day string, n int) (int64, error) {
	var last int64
	err := tx.QueryRowContext(ctx, `INSERT INTO case_counters (day, last) VALUES ($1, $2)
		ON CONFLICT (day) DO UPDATE SET last = case_counters.last + excluded.last RETURNING last`, day, n).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("cases: number for %s: %w", day, err)
	}
	return last, nil
}

// ReserveNumbers implements NumberReserver.
func (s *SQLStore) ReserveNumbers(ctx context.Context, day string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("cases: reserve numbers: %w", err)
	}
	defer tx.Rollback()
	last, err := allocate(ctx, tx, day, n)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("cases: reserve numbers: %w", err)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = FormatNumber(day, last-int64(n)+1+int64(i))
	}
	return out, nil
}

// CreateForCall implements Store.
func (s *SQLStore) CreateForCall(ctx context.Context, n NewCall) (*Case, error) {
	if n.CallID == "" {
		return nil, fmt.Errorf("%w: case without a call id", ErrInvalid)
	}
	if c, err := s.GetByCall(ctx, n.CallID); err == nil {
		return c, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	now := s.cfg.Now()
	if n.Started.IsZero() {
		n.Started = now
	}
	if n.CaseID == "" {
		n.CaseID = NewID()
	}
	if n.Number != "" {
		num, err := NormaliseNumber(n.Number)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		n.Number = num
	}
	sealed, err := s.cfg.Protector.Keys.Seal([]byte(n.Caller), callerPurpose(n.CaseID))
	if err != nil {
		return nil, err
	}
	c := &Case{
		ID: n.CaseID, CallID: n.CallID, Number: n.Number,
		CallerMasked: MaskCaller(n.Caller), CallerHash: s.cfg.Protector.CallerHash(n.Caller), CallerSealed: sealed,
		Dialled: n.Dialled, Plane: n.Plane, Started: n.Started, Answered: n.Answered, Language: n.Language,
		Status: StatusOpened, Created: now, Updated: now,
	}
	if !n.Created.IsZero() {
		c.Created = n.Created
	}
	// Two tries: a number reserved by a Durable that another process also
	// used (it cannot, but a restored backup could) falls back to a fresh one.
	for try := 0; try < 2; try++ {
		inserted, err := s.insertCase(ctx, c)
		if err != nil {
			return nil, err
		}
		if inserted {
			return c, nil
		}
		if got, err := s.GetByCall(ctx, n.CallID); err == nil {
			return got, nil // created meanwhile by another process: idempotent
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		c.Number = ""
	}
	return nil, fmt.Errorf("cases: create %s: id or number taken", c.ID)
}

func (s *SQLStore) insertCase(ctx context.Context, c *Case) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("cases: create: %w", err)
	}
	defer tx.Rollback()
	if c.Number == "" {
		day := DayOf(c.Started)
		last, err := allocate(ctx, tx, day, 1)
		if err != nil {
			return false, err
		}
		c.Number = FormatNumber(day, last)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO cases (id, number, call_id, caller_sealed, caller_hash, caller_masked,
		dialled, plane, started_at, answered_at, language, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING`,
		c.ID, c.Number, c.CallID, c.CallerSealed, c.CallerHash, c.CallerMasked, c.Dialled, c.Plane,
		c.Started.UnixMicro(), us(c.Answered), c.Language, string(c.Status), c.Created.UnixMicro(), c.Updated.UnixMicro())
	if err != nil {
		return false, fmt.Errorf("cases: create %s: %w", c.ID, err)
	}
	if k, err := res.RowsAffected(); err != nil || k == 0 {
		return false, err
	}
	// The created event's id derives from the case id so that it, too, is
	// written once whoever writes it.
	ev := Event{ID: c.ID + "/created", CaseID: c.ID, Kind: EventCreated, At: c.Created, Language: c.Language}
	if _, err := insertEvent(ctx, tx, ev, ""); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("cases: create %s: %w", c.ID, err)
	}
	return true, nil
}

// insertEvent inserts e unless an event with its id exists, and reports
// whether it did.
func insertEvent(ctx context.Context, tx *sql.Tx, e Event, noteSealed string) (bool, error) {
	e.Note, e.Seq = "", 0
	data, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("cases: event %s: %w", e.ID, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO case_events (id, case_id, kind, at, data, note_sealed) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO NOTHING`, e.ID, e.CaseID, string(e.Kind), e.At.UnixMicro(), string(data), noteSealed)
	if err != nil {
		return false, fmt.Errorf("cases: event %s: %w", e.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("cases: event %s: %w", e.ID, err)
	}
	return n > 0, nil
}

func validateEvent(e Event) error {
	switch {
	case e.ID == "" || e.CaseID == "":
		return fmt.Errorf("%w: event without id or case", ErrInvalid)
	case e.Survey < 0 || e.Survey > 5:
		return fmt.Errorf("%w: survey score %d not in 1..5", ErrInvalid, e.Survey)
	case e.AppealType != "" && !e.AppealType.Valid():
		return fmt.Errorf("%w: appeal type %q", ErrInvalid, e.AppealType)
	case e.Kind == EventStatus && !e.Status.Valid():
		return fmt.Errorf("%w: status %q", ErrInvalid, e.Status)
	case e.Kind == EventLink && e.LinkedCase == "":
		return fmt.Errorf("%w: link without a case", ErrInvalid)
	case e.Kind == EventLink && e.LinkKind != "" && e.LinkKind != LinkFollowUp && e.LinkKind != LinkMerged:
		return fmt.Errorf("%w: link kind %q", ErrInvalid, e.LinkKind)
	}
	switch e.Kind {
	case EventPath, EventClassify, EventRouted, EventEnded, EventNote, EventStatus, EventLink, EventSurvey:
		return nil
	}
	return fmt.Errorf("%w: event kind %q", ErrInvalid, e.Kind)
}

// AppendEvent implements Store.
func (s *SQLStore) AppendEvent(ctx context.Context, e Event) error {
	if e.At.IsZero() {
		e.At = s.cfg.Now()
	}
	if err := validateEvent(e); err != nil {
		return err
	}
	noteSealed, err := s.cfg.Protector.Keys.Seal([]byte(e.Note), notePurpose(e.ID))
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cases: %v: %w", e, err)
	}
	defer tx.Rollback()
	var status string
	var started int64
	q := `SELECT status, started_at FROM cases WHERE id = $1`
	if s.db.Dialect == sqldb.Postgres {
		// Lock the case row: two writers of one case (the call path and an
		// agent) must not both move its status from the same state.
		// SQLite's immediate transactions already serialise writers.
		q += ` FOR UPDATE`
	}
	err = tx.QueryRowContext(ctx, q, e.CaseID).Scan(&status, &started)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: case %s", ErrNotFound, e.CaseID)
	} else if err != nil {
		return fmt.Errorf("cases: %v: %w", e, err)
	}
	var dup int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM case_events WHERE id = $1`, e.ID).Scan(&dup); err != nil {
		return fmt.Errorf("cases: %v: %w", e, err)
	}
	if dup > 0 {
		return nil // replayed: written before
	}
	set, args, err := s.apply(e, Status(status), time.UnixMicro(started))
	if err != nil {
		return err
	}
	if inserted, err := insertEvent(ctx, tx, e, noteSealed); err != nil || !inserted {
		return err // !inserted: the same event committed meanwhile (PostgreSQL)
	}
	set = append(set, "updated_at")
	args = append(args, s.cfg.Now().UnixMicro())
	var b strings.Builder
	b.WriteString("UPDATE cases SET ")
	for i, col := range set {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(col + " = $" + strconv.Itoa(i+1))
	}
	b.WriteString(" WHERE id = $" + strconv.Itoa(len(set)+1))
	if _, err := tx.ExecContext(ctx, b.String(), append(args, e.CaseID)...); err != nil {
		return fmt.Errorf("cases: %v: %w", e, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cases: %v: %w", e, err)
	}
	return nil
}

// apply returns the case columns an event changes.
func (s *SQLStore) apply(e Event, status Status, started time.Time) ([]string, []any, error) {
	var set []string
	var args []any
	put := func(col string, v any) { set = append(set, col); args = append(args, v) }
	putStr := func(col, v string) {
		if v != "" {
			put(col, v)
		}
	}
	switch e.Kind {
	case EventClassify:
		putStr("appeal_type", string(e.AppealType))
		putStr("domain", e.Domain)
		putStr("language", e.Language)
		putStr("unit", e.Unit)
		if e.AppealType != "" {
			putStr("due", s.cfg.Due.DueDate(started, e.AppealType))
		}
	case EventRouted:
		putStr("destination", e.Destination)
		putStr("queue", e.Queue)
		putStr("agent", e.Agent)
		putStr("unit", e.Unit)
		if status == StatusOpened {
			put("status", string(StatusRouted))
		}
	case EventEnded:
		put("ended_at", e.At.UnixMicro())
		putStr("outcome", string(e.Outcome))
		putStr("destination", e.Destination)
		putStr("queue", e.Queue)
		putStr("agent", e.Agent)
		if e.Wait > 0 {
			put("wait_us", e.Wait.Microseconds())
		}
		if e.Talk > 0 {
			put("talk_us", e.Talk.Microseconds())
		}
		if e.Survey > 0 {
			put("survey", e.Survey)
		}
	case EventSurvey:
		if e.Survey > 0 {
			put("survey", e.Survey)
		}
	case EventStatus:
		if !status.CanMove(e.Status) {
			return nil, nil, fmt.Errorf("%w: case %s cannot go from %s to %s", ErrInvalid, e.CaseID, status, e.Status)
		}
		if e.Status == StatusTransferredOut && e.PartnerRef == "" {
			return nil, nil, fmt.Errorf("%w: transfer out of case %s without the partner's reference", ErrInvalid, e.CaseID)
		}
		put("status", string(e.Status))
		putStr("partner_ref", e.PartnerRef)
		putStr("unit", e.Unit)
		if e.Status == StatusClosed {
			put("closed_at", e.At.UnixMicro())
		}
	case EventLink:
		put("follow_up_of", e.LinkedCase)
	}
	return set, args, nil
}

const caseCols = `id, number, call_id, caller_sealed, caller_hash, caller_masked, dialled, plane,
	started_at, answered_at, ended_at, appeal_type, domain, language, destination, queue, agent,
	wait_us, talk_us, outcome, survey, unit, status, partner_ref, follow_up_of, due, closed_at, created_at, updated_at`

type scanner interface{ Scan(...any) error }

func scanCase(r scanner) (*Case, error) {
	var c Case
	var answered, ended, closed sql.NullInt64
	var started, created, updated, wait, talk int64
	var appeal, outcome, status string
	err := r.Scan(&c.ID, &c.Number, &c.CallID, &c.CallerSealed, &c.CallerHash, &c.CallerMasked, &c.Dialled, &c.Plane,
		&started, &answered, &ended, &appeal, &c.Domain, &c.Language, &c.Destination, &c.Queue, &c.Agent,
		&wait, &talk, &outcome, &c.Survey, &c.Unit, &status, &c.PartnerRef, &c.FollowUpOf, &c.Due, &closed, &created, &updated)
	if err != nil {
		return nil, err
	}
	c.Started, c.Answered, c.Ended, c.Closed = time.UnixMicro(started), fromUS(answered), fromUS(ended), fromUS(closed)
	c.Created, c.Updated = time.UnixMicro(created), time.UnixMicro(updated)
	c.Wait, c.Talk = time.Duration(wait)*time.Microsecond, time.Duration(talk)*time.Microsecond
	c.AppealType, c.Outcome, c.Status = AppealType(appeal), Outcome(outcome), Status(status)
	return &c, nil
}

func (s *SQLStore) getOne(ctx context.Context, where string, arg any) (*Case, error) {
	c, err := scanCase(s.db.QueryRowContext(ctx, `SELECT `+caseCols+` FROM cases WHERE `+where+` = $1`, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cases: get: %w", err)
	}
	return c, nil
}

// Get implements Store.
func (s *SQLStore) Get(ctx context.Context, idOrNumber string) (*Case, error) {
	var c *Case
	var err error
	if num, perr := NormaliseNumber(idOrNumber); perr == nil {
		c, err = s.getOne(ctx, "number", num)
	} else {
		c, err = s.getOne(ctx, "id", idOrNumber)
	}
	if err != nil {
		return nil, err
	}
	evs, err := s.Events(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		if e.Kind == EventPath {
			c.Path = append(c.Path, PathStep{At: e.At, Node: e.Node, Digits: e.Digits})
		}
	}
	return c, nil
}

// GetByCall implements Store.
func (s *SQLStore) GetByCall(ctx context.Context, callID string) (*Case, error) {
	return s.getOne(ctx, "call_id", callID)
}

// Events implements Store.
func (s *SQLStore) Events(ctx context.Context, caseID string) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, data, note_sealed FROM case_events WHERE case_id = $1 ORDER BY seq`, caseID)
	if err != nil {
		return nil, fmt.Errorf("cases: events of %s: %w", caseID, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var data string
		var seq int64
		if err := rows.Scan(&seq, &data, &e.NoteSealed); err != nil {
			return nil, fmt.Errorf("cases: events of %s: %w", caseID, err)
		}
		sealed := e.NoteSealed
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return nil, fmt.Errorf("cases: events of %s: %w", caseID, err)
		}
		e.Seq, e.NoteSealed = seq, sealed
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cases: events of %s: %w", caseID, err)
	}
	return out, nil
}

// List implements Store.
func (s *SQLStore) List(ctx context.Context, f Filter) ([]*Case, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if !f.From.IsZero() {
		add("started_at >= ?", f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		add("started_at < ?", f.To.UnixMicro())
	}
	for _, c := range []struct{ col, v string }{{"status", string(f.Status)}, {"unit", f.Unit}, {"queue", f.Queue},
		{"agent", f.Agent}, {"caller_hash", f.CallerHash}, {"follow_up_of", f.FollowUpOf}} {
		if c.v != "" {
			add(c.col+" = ?", c.v)
		}
	}
	if f.OpenOnly {
		where = append(where, "status NOT IN ('closed', 'transferred_out')")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 10000)
	q := `SELECT ` + caseCols + ` FROM cases`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(` ORDER BY started_at DESC, id DESC LIMIT %d OFFSET %d`, limit, max(f.Offset, 0))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cases: list: %w", err)
	}
	defer rows.Close()
	var out []*Case
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, fmt.Errorf("cases: list: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cases: list: %w", err)
	}
	return out, nil
}

// AppendAudit implements Store.
func (s *SQLStore) AppendAudit(ctx context.Context, a AuditEntry) error {
	if a.ID == "" || a.Account == "" || a.Field == "" {
		return fmt.Errorf("%w: audit entry needs an id, an account and a field", ErrInvalid)
	}
	if a.At.IsZero() {
		a.At = s.cfg.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_log (id, at, account, role, case_id, field, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
		a.ID, a.At.UnixMicro(), a.Account, a.Role, a.CaseID, a.Field, a.Reason)
	if err != nil {
		return fmt.Errorf("cases: audit: %w", err)
	}
	return nil
}

// ListAudit implements Store.
func (s *SQLStore) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var where []string
	var args []any
	add := func(col string, v any) {
		args = append(args, v)
		where = append(where, col+" $"+strconv.Itoa(len(args)))
	}
	if f.CaseID != "" {
		add("case_id =", f.CaseID)
	}
	if f.Account != "" {
		add("account =", f.Account)
	}
	if !f.From.IsZero() {
		add("at >=", f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		add("at <", f.To.UnixMicro())
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q := `SELECT id, at, account, role, case_id, field, reason FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(` ORDER BY seq LIMIT %d`, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cases: audit list: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var a AuditEntry
		var at int64
		if err := rows.Scan(&a.ID, &at, &a.Account, &a.Role, &a.CaseID, &a.Field, &a.Reason); err != nil {
			return nil, fmt.Errorf("cases: audit list: %w", err)
		}
		a.At = time.UnixMicro(at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cases: audit list: %w", err)
	}
	return out, nil
}

// Reseal re-encrypts up to batch caller numbers and notes that were sealed
// with an older key, with the current one, and returns how many it
// rewrote; call it until it returns 0 after adding a key, then the old key
// can leave the ring. Only ciphertexts change: nothing is decrypted to a
// log or to the audit trail (no person reads anything).
func (s *SQLStore) Reseal(ctx context.Context, batch int) (int, error) {
	if batch <= 0 {
		batch = 500
	}
	kr := s.cfg.Protector.Keys
	prefix := "v1." + kr.Current() + "."
	done := 0
	for _, t := range []struct{ table, key, col, purpose string }{
		{"cases", "id", "caller_sealed", "caller/"},
		{"case_events", "id", "note_sealed", "note/"},
	} {
		rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT %s, %s FROM %s WHERE %s <> '' AND SUBSTR(%s, 1, %d) <> $1 LIMIT %d`,
			t.key, t.col, t.table, t.col, t.col, len(prefix), batch-done), prefix)
		if err != nil {
			return done, fmt.Errorf("cases: reseal %s: %w", t.table, err)
		}
		type item struct{ id, sealed string }
		var items []item
		for rows.Next() {
			var it item
			if err := rows.Scan(&it.id, &it.sealed); err != nil {
				rows.Close()
				return done, fmt.Errorf("cases: reseal %s: %w", t.table, err)
			}
			items = append(items, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return done, fmt.Errorf("cases: reseal %s: %w", t.table, err)
		}
		for _, it := range items {
			plain, err := kr.Open(it.sealed, t.purpose+it.id)
			if err != nil {
				return done, fmt.Errorf("cases: reseal %s %s: %w", t.table, it.id, err)
			}
			again, err := kr.Seal(plain, t.purpose+it.id)
			if err != nil {
				return done, err
			}
			// Only if unchanged meanwhile (another process may reseal too).
			if _, err := s.db.ExecContext(ctx, fmt.Sprintf(`UPDATE %s SET %s = $1 WHERE %s = $2 AND %s = $3`, t.table, t.col, t.key, t.col),
				again, it.id, it.sealed); err != nil {
				return done, fmt.Errorf("cases: reseal %s %s: %w", t.table, it.id, err)
			}
			done++
		}
		if done >= batch {
			break
		}
	}
	return done, nil
}
