// Package flows stores IVR flows with versions in the data store (SQLite or
// PostgreSQL through sqldb) and serves the published version of each flow to
// the call path.
//
// A flow (id such as "chongqing-12345") has numbered, immutable versions.
// Saving a flow creates a new draft version, even an invalid one, so that an
// admin never loses an edit. Publishing moves the flow's active-version
// pointer to a version after validating it; an invalid version is refused
// with every problem and the pointer is not touched, so nothing is ever
// partly activated. Rolling back moves the pointer to an earlier version that
// was published before (validated again, because prompts, destinations or
// calendars may have changed since). Every change is in the history with who
// and when.
//
// Two processes on one PostgreSQL may write at the same time: every write
// first updates the flow's row, which takes its row lock until the
// transaction ends, so version numbers and history entries are assigned one
// writer at a time (SQLite serialises writers by itself).
package flows

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aymanbagabas/go-udiff"

	"github.com/cq12345/hotline/sqldb"
)

// State is a version's place in its flow's life.
type State string

const (
	// Draft: saved, never published.
	Draft State = "draft"
	// Published: the flow's active version, the one new calls start on.
	Published State = "published"
	// Superseded: was published once, another version is active now.
	Superseded State = "superseded"
)

// Actions recorded in the history.
const (
	ActionDraft    = "draft"
	ActionPublish  = "publish"
	ActionRollback = "rollback"
	ActionImport   = "import"
)

// Problem is one validation problem of a flow: where (node path and YAML
// line) and what.
type Problem struct {
	Path    string `json:"path"`
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	switch {
	case p.Path != "" && p.Line > 0:
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Path, p.Message)
	case p.Path != "":
		return p.Path + ": " + p.Message
	case p.Line > 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.Message)
	}
	return p.Message
}

// Checker validates flow source the way the call path will load it (the ivr
// loader with the process's prompts, destinations, queues and calendars). It
// returns every problem found; none means the source is valid.
type Checker func(src []byte) []Problem

// InvalidError is returned when a flow version cannot be published because it
// is invalid. Nothing was changed.
type InvalidError struct {
	FlowID   string
	Version  int
	Problems []Problem
}

func (e *InvalidError) Error() string {
	msgs := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		msgs = append(msgs, p.String())
	}
	return fmt.Sprintf("flows: %s v%d is invalid (%d problems): %s", e.FlowID, e.Version, len(e.Problems), strings.Join(msgs, "; "))
}

var (
	// ErrNotFound: no such flow or version.
	ErrNotFound = errors.New("flows: not found")
	// ErrBadRequest: the request cannot be carried out as asked (bad id,
	// rollback to a version that was never published, …).
	ErrBadRequest = errors.New("flows: bad request")
)

// Summary describes a flow in a list.
type Summary struct {
	ID            string    `json:"id"`
	ActiveVersion int       `json:"active_version"` // 0: nothing published
	LatestVersion int       `json:"latest_version"`
	UpdatedAt     time.Time `json:"updated_at"`
	UpdatedBy     string    `json:"updated_by"`
}

// Version is one stored version of a flow. Source is empty in lists.
type Version struct {
	FlowID      string     `json:"flow_id"`
	Version     int        `json:"version"`
	State       State      `json:"state"`
	Comment     string     `json:"comment,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	CreatedBy   string     `json:"created_by"`
	PublishedAt *time.Time `json:"published_at,omitempty"` // first publish
	PublishedBy string     `json:"published_by,omitempty"`
	Source      string     `json:"source,omitempty"`
}

// Event is one entry of a flow's history.
type Event struct {
	FlowID string `json:"flow_id"`
	Seq    int    `json:"seq"`
	Action string `json:"action"`
	// Version is the version created (draft, import) or activated
	// (publish, rollback).
	Version int `json:"version"`
	// Previous is the version that was active before a publish or rollback
	// (0: none).
	Previous int       `json:"previous,omitempty"`
	Actor    string    `json:"actor"`
	At       time.Time `json:"at"`
	Note     string    `json:"note,omitempty"`
}

var migrations = []sqldb.Migration{{
	Version: 1,
	SQL: `CREATE TABLE flows (
	id TEXT PRIMARY KEY,
	active_version INTEGER,
	latest_version INTEGER NOT NULL DEFAULT 0,
	history_seq INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	created_by TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	updated_by TEXT NOT NULL
);
CREATE TABLE flow_versions (
	flow_id TEXT NOT NULL REFERENCES flows(id),
	version INTEGER NOT NULL,
	source TEXT NOT NULL,
	comment TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	created_by TEXT NOT NULL,
	published_at TEXT,
	published_by TEXT,
	PRIMARY KEY (flow_id, version)
);
CREATE TABLE flow_history (
	flow_id TEXT NOT NULL REFERENCES flows(id),
	seq INTEGER NOT NULL,
	action TEXT NOT NULL,
	version INTEGER NOT NULL,
	previous INTEGER NOT NULL DEFAULT 0,
	actor TEXT NOT NULL,
	at TEXT NOT NULL,
	note TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (flow_id, seq)
)`,
}}

// Store is the versioned flow store. It is safe for concurrent use, also by
// several processes sharing one PostgreSQL.
type Store struct {
	db    *sqldb.DB
	check Checker
	now   func() time.Time
	// published is told (without blocking) after a publish or rollback by
	// this store, so that a Live in the same process refreshes at once.
	published chan struct{}
}

// NewStore migrates the "flows" component and returns the store. check
// validates before publish and rollback.
func NewStore(ctx context.Context, db *sqldb.DB, check Checker) (*Store, error) {
	if check == nil {
		return nil, errors.New("flows: NewStore: nil Checker")
	}
	if err := db.Migrate(ctx, "flows", migrations); err != nil {
		return nil, fmt.Errorf("flows: %w", err)
	}
	return &Store{db: db, check: check, now: time.Now, published: make(chan struct{}, 1)}, nil
}

// Check validates source with the store's Checker without storing anything.
func (s *Store) Check(src []byte) []Problem { return s.check(src) }

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidID reports whether id can name a flow: lower-case letters, digits,
// '.', '_', '-', at most 64 characters, starting with a letter or digit.
func ValidID(id string) bool { return idRE.MatchString(id) }

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTS(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// lockFlow takes the flow's row lock for the rest of tx (the UPDATE does it
// on PostgreSQL; SQLite transactions here are BEGIN IMMEDIATE and exclusive
// anyway) and returns its pointers. create inserts the flow first if absent.
func (s *Store) lockFlow(ctx context.Context, tx *sql.Tx, id, actor string, now time.Time, create bool) (active, latest, seq int, created bool, err error) {
	if create {
		res, err := tx.ExecContext(ctx, `INSERT INTO flows (id, created_at, created_by, updated_at, updated_by)
			VALUES ($1, $2, $3, $2, $3) ON CONFLICT (id) DO NOTHING`, id, ts(now), actor)
		if err != nil {
			return 0, 0, 0, false, err
		}
		n, _ := res.RowsAffected()
		created = n == 1
	}
	res, err := tx.ExecContext(ctx, `UPDATE flows SET updated_at = $2, updated_by = $3 WHERE id = $1`, id, ts(now), actor)
	if err != nil {
		return 0, 0, 0, false, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, 0, 0, false, ErrNotFound
	}
	var act sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT active_version, latest_version, history_seq FROM flows WHERE id = $1`, id).Scan(&act, &latest, &seq); err != nil {
		return 0, 0, 0, false, err
	}
	return int(act.Int64), latest, seq, created, nil
}

func (s *Store) addEvent(ctx context.Context, tx *sql.Tx, seq int, e Event) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO flow_history (flow_id, seq, action, version, previous, actor, at, note)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, e.FlowID, seq, e.Action, e.Version, e.Previous, e.Actor, ts(e.At), e.Note); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE flows SET history_seq = $2 WHERE id = $1`, e.FlowID, seq)
	return err
}

// inTx runs f in a transaction and commits it when f returns nil.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// SaveDraft stores src as a new draft version of flow id (creating the flow
// if needed) and returns it with the validation problems it has now. An
// invalid draft is saved too (it just cannot be published).
func (s *Store) SaveDraft(ctx context.Context, id string, src []byte, comment, actor string) (*Version, []Problem, error) {
	if !ValidID(id) {
		return nil, nil, fmt.Errorf("%w: flow id %q (want [a-z0-9][a-z0-9._-]*, at most 64)", ErrBadRequest, id)
	}
	if actor == "" {
		return nil, nil, fmt.Errorf("%w: no actor", ErrBadRequest)
	}
	problems := s.check(src)
	now := s.now()
	var v *Version
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, latest, seq, _, err := s.lockFlow(ctx, tx, id, actor, now, true)
		if err != nil {
			return err
		}
		n := latest + 1
		if _, err := tx.ExecContext(ctx, `INSERT INTO flow_versions (flow_id, version, source, comment, created_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, n, string(src), comment, ts(now), actor); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE flows SET latest_version = $2 WHERE id = $1`, id, n); err != nil {
			return err
		}
		if err := s.addEvent(ctx, tx, seq+1, Event{FlowID: id, Action: ActionDraft, Version: n, Actor: actor, At: now, Note: comment}); err != nil {
			return err
		}
		v = &Version{FlowID: id, Version: n, State: Draft, Comment: comment, CreatedAt: now.UTC(), CreatedBy: actor, Source: string(src)}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("flows: save draft of %s: %w", id, err)
	}
	return v, problems, nil
}

// Publish makes version the active version of flow id (0: the latest). It
// validates the version first; an invalid one is refused with an
// *InvalidError listing every problem, and nothing changes. Publishing the
// version that is already active changes nothing and is not an error.
func (s *Store) Publish(ctx context.Context, id string, version int, actor string) (*Version, error) {
	return s.activate(ctx, id, version, actor, ActionPublish)
}

// Rollback makes an earlier version active again: to (0: the most recent
// version below the active one that was published before). The target must
// have been published before and is validated again.
func (s *Store) Rollback(ctx context.Context, id string, to int, actor string) (*Version, error) {
	return s.activate(ctx, id, to, actor, ActionRollback)
}

func (s *Store) activate(ctx context.Context, id string, version int, actor, action string) (*Version, error) {
	if actor == "" {
		return nil, fmt.Errorf("flows: %s %s: %w: no actor", action, id, ErrBadRequest)
	}
	// Pick the target and validate it outside the transaction: a version's
	// source never changes, so the verdict holds at commit time.
	sum, err := s.Flow(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("flows: %s %s: %w", action, id, err)
	}
	target := version
	switch {
	case action == ActionPublish && target == 0:
		target = sum.LatestVersion
	case action == ActionRollback && target == 0:
		if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM flow_versions
			WHERE flow_id = $1 AND version < $2 AND published_at IS NOT NULL`, id, sum.ActiveVersion).Scan(&target); err != nil {
			return nil, fmt.Errorf("flows: %s %s: %w", action, id, err)
		}
		if target == 0 {
			return nil, fmt.Errorf("flows: rollback %s: %w: no earlier published version", id, ErrBadRequest)
		}
	}
	v, err := s.Get(ctx, id, target)
	if err != nil {
		return nil, fmt.Errorf("flows: %s %s v%d: %w", action, id, target, err)
	}
	if action == ActionRollback && v.PublishedAt == nil {
		return nil, fmt.Errorf("flows: rollback %s to v%d: %w: that version was never published (publish it instead)", id, target, ErrBadRequest)
	}
	if ps := s.check([]byte(v.Source)); len(ps) > 0 {
		return nil, &InvalidError{FlowID: id, Version: target, Problems: ps}
	}
	now := s.now()
	changed := false
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		active, _, seq, _, err := s.lockFlow(ctx, tx, id, actor, now, false)
		if err != nil {
			return err
		}
		if active == target {
			return nil
		}
		if action == ActionRollback && target > active && active != 0 {
			return fmt.Errorf("%w: v%d is not earlier than the active v%d (publish it instead)", ErrBadRequest, target, active)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE flows SET active_version = $2 WHERE id = $1`, id, target); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE flow_versions SET published_at = $3, published_by = $4
			WHERE flow_id = $1 AND version = $2 AND published_at IS NULL`, id, target, ts(now), actor); err != nil {
			return err
		}
		changed = true
		return s.addEvent(ctx, tx, seq+1, Event{FlowID: id, Action: action, Version: target, Previous: active, Actor: actor, At: now})
	})
	if err != nil {
		return nil, fmt.Errorf("flows: %s %s v%d: %w", action, id, target, err)
	}
	if changed {
		select {
		case s.published <- struct{}{}:
		default:
		}
	}
	return s.Get(ctx, id, target)
}

// Seed imports src as version 1, published, of flow id when the store has no
// flow of that id yet (first start). It reports whether it imported. Several
// processes may seed at once: one imports, the others see the flow. An
// invalid src is refused with an *InvalidError.
func (s *Store) Seed(ctx context.Context, id string, src []byte, actor string) (bool, error) {
	if !ValidID(id) {
		return false, fmt.Errorf("flows: seed: %w: flow id %q", ErrBadRequest, id)
	}
	if _, err := s.Flow(ctx, id); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return false, fmt.Errorf("flows: seed %s: %w", id, err)
	}
	if ps := s.check(src); len(ps) > 0 {
		return false, &InvalidError{FlowID: id, Version: 1, Problems: ps}
	}
	now := s.now()
	imported := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, latest, _, created, err := s.lockFlow(ctx, tx, id, actor, now, true)
		if err != nil {
			return err
		}
		if !created || latest != 0 {
			return nil // another process got there first
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO flow_versions (flow_id, version, source, comment, created_at, created_by, published_at, published_by)
			VALUES ($1, 1, $2, 'imported default flow', $3, $4, $3, $4)`, id, string(src), ts(now), actor); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE flows SET latest_version = 1, active_version = 1 WHERE id = $1`, id); err != nil {
			return err
		}
		imported = true
		return s.addEvent(ctx, tx, 1, Event{FlowID: id, Action: ActionImport, Version: 1, Actor: actor, At: now, Note: "imported default flow"})
	})
	if err != nil {
		return false, fmt.Errorf("flows: seed %s: %w", id, err)
	}
	return imported, nil
}

// List returns every flow, by id.
func (s *Store) List(ctx context.Context) ([]Summary, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, COALESCE(active_version, 0), latest_version, updated_at, updated_by FROM flows ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("flows: list: %w", err)
	}
	defer rows.Close()
	var out []Summary
	for rows.Next() {
		var f Summary
		var at string
		if err := rows.Scan(&f.ID, &f.ActiveVersion, &f.LatestVersion, &at, &f.UpdatedBy); err != nil {
			return nil, fmt.Errorf("flows: list: %w", err)
		}
		f.UpdatedAt = parseTS(at)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("flows: list: %w", err)
	}
	return out, nil
}

// Flow returns one flow's summary.
func (s *Store) Flow(ctx context.Context, id string) (*Summary, error) {
	f := Summary{ID: id}
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(active_version, 0), latest_version, updated_at, updated_by FROM flows WHERE id = $1`, id).
		Scan(&f.ActiveVersion, &f.LatestVersion, &at, &f.UpdatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("flow %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("flows: flow %s: %w", id, err)
	}
	f.UpdatedAt = parseTS(at)
	return &f, nil
}

const versionCols = `v.flow_id, v.version, v.comment, v.created_at, v.created_by, COALESCE(v.published_at, ''), COALESCE(v.published_by, ''), COALESCE(f.active_version, 0)`

func scanVersion(sc interface{ Scan(...any) error }, withSource bool) (*Version, error) {
	var v Version
	var created, published string
	var active int
	dest := []any{&v.FlowID, &v.Version, &v.Comment, &created, &v.CreatedBy, &published, &v.PublishedBy, &active}
	if withSource {
		dest = append(dest, &v.Source)
	}
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	v.CreatedAt = parseTS(created)
	switch {
	case v.Version == active:
		v.State = Published
	case published != "":
		v.State = Superseded
	default:
		v.State = Draft
	}
	if published != "" {
		t := parseTS(published)
		v.PublishedAt = &t
	}
	return &v, nil
}

// Get returns a version with its source; version 0 means the active one.
func (s *Store) Get(ctx context.Context, id string, version int) (*Version, error) {
	if version == 0 {
		f, err := s.Flow(ctx, id)
		if err != nil {
			return nil, err
		}
		if f.ActiveVersion == 0 {
			return nil, fmt.Errorf("flow %s has no published version: %w", id, ErrNotFound)
		}
		version = f.ActiveVersion
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+versionCols+`, v.source FROM flow_versions v JOIN flows f ON f.id = v.flow_id
		WHERE v.flow_id = $1 AND v.version = $2`, id, version)
	v, err := scanVersion(row, true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("flow %s v%d: %w", id, version, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("flows: get %s v%d: %w", id, version, err)
	}
	return v, nil
}

// Versions lists a flow's versions, newest first, without their source.
func (s *Store) Versions(ctx context.Context, id string) ([]Version, error) {
	if _, err := s.Flow(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+versionCols+` FROM flow_versions v JOIN flows f ON f.id = v.flow_id
		WHERE v.flow_id = $1 ORDER BY v.version DESC`, id)
	if err != nil {
		return nil, fmt.Errorf("flows: versions of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v, err := scanVersion(rows, false)
		if err != nil {
			return nil, fmt.Errorf("flows: versions of %s: %w", id, err)
		}
		out = append(out, *v)
	}
	return out, rows.Err()
}

// History returns a flow's changes, oldest first.
func (s *Store) History(ctx context.Context, id string) ([]Event, error) {
	if _, err := s.Flow(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT flow_id, seq, action, version, previous, actor, at, note
		FROM flow_history WHERE flow_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("flows: history of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at string
		if err := rows.Scan(&e.FlowID, &e.Seq, &e.Action, &e.Version, &e.Previous, &e.Actor, &at, &e.Note); err != nil {
			return nil, fmt.Errorf("flows: history of %s: %w", id, err)
		}
		e.At = parseTS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Diff returns the unified diff (YAML text, line by line) from version a to
// version b of flow id; 0 means the active version. Equal texts give "".
func (s *Store) Diff(ctx context.Context, id string, a, b int) (string, error) {
	va, err := s.Get(ctx, id, a)
	if err != nil {
		return "", err
	}
	vb, err := s.Get(ctx, id, b)
	if err != nil {
		return "", err
	}
	return udiff.Unified(fmt.Sprintf("%s v%d", id, va.Version), fmt.Sprintf("%s v%d", id, vb.Version), va.Source, vb.Source), nil
}

// active returns the active version number of every flow that has one.
func (s *Store) active(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, active_version FROM flows WHERE active_version IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var id string
		var v int
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		m[id] = v
	}
	return m, rows.Err()
}
