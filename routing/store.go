package routing

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cq12345/hotline/sqldb"
)

// Store errors.
var (
	ErrNoAgent     = errors.New("routing: no such agent")
	ErrBadAgent    = errors.New("routing: invalid agent")
	ErrAgentExists = errors.New("routing: agent id or extension already exists")
	ErrAgentBusy   = errors.New("routing: agent is on a call")
	ErrNoCallback  = errors.New("routing: no such open callback")
)

// Reserver claims agents for calls. Its guarantee: an agent is never given
// to two calls at once, also when several hotlined processes share one
// store. A reservation expires at its until time, so that a crashed
// process's agents come back; the holder renews it while the call lasts.
type Reserver interface {
	// Reserve claims a free agent (presence available, no live
	// reservation, wrap-up over) for holder until until. It reports false
	// when the agent is not free.
	Reserve(ctx context.Context, agentID, holder string, activity AgentState, caseNumber string, now, until time.Time) (bool, error)
	// ReserveForCallback claims an agent who asked to take a callback:
	// logged in (available or paused), no live reservation.
	ReserveForCallback(ctx context.Context, agentID, holder, caseNumber string, now, until time.Time) (bool, error)
	// Hold changes the activity of a held reservation and extends it;
	// ErrNoAgent when holder no longer holds it.
	Hold(ctx context.Context, agentID, holder string, activity AgentState, until time.Time) error
	// Release ends holder's reservation and books how it went.
	Release(ctx context.Context, agentID, holder string, r Release) (*Agent, error)
}

// Release is how a reservation ended.
type Release struct {
	// Answered: the agent took the call (Calls+1, Missed reset).
	Answered bool
	// Missed: the phone rang unanswered (Missed+1); at PauseAfter misses
	// in a row the agent is paused PauseNoAnswer.
	Missed     bool
	PauseAfter int
	// WrapUntil is when after-call work ends (zero: none).
	WrapUntil time.Time
	Now       time.Time
}

// SQLStore keeps agents, their live state, reservations and callback tasks
// in the data store (component "routing").
type SQLStore struct {
	db  *sqldb.DB
	cfg StoreConfig
}

// Sealer encrypts personal data at rest; cases.KeyRing implements it
// (AES-256-GCM, the purpose bound as additional data).
type Sealer interface {
	Seal(plain []byte, purpose string) (string, error)
	Open(sealed, purpose string) ([]byte, error)
}

// StoreConfig configures a SQLStore.
type StoreConfig struct {
	// Realm is the SIP digest realm of new agents ("" = DefaultRealm).
	Realm string
	// Sealer encrypts the numbers of callback tasks. Nil stores them in
	// clear: tests only; hotlined passes the cases key ring.
	Sealer Sealer
	// Hash is the keyed look-up hash of a number (cases.Protector's
	// CallerHash), used to find a number's open task. Nil: SHA-256.
	Hash func(number string) string
}

var migrations = []sqldb.Migration{{Version: 1, SQL: `CREATE TABLE routing_agents (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	extension TEXT NOT NULL UNIQUE,
	realm TEXT NOT NULL,
	ha1_md5 TEXT NOT NULL,
	ha1_sha256 TEXT NOT NULL,
	skills TEXT NOT NULL,
	presence TEXT NOT NULL,
	pause_reason TEXT NOT NULL DEFAULT '',
	since_ms BIGINT NOT NULL,
	activity TEXT NOT NULL DEFAULT '',
	reserved_by TEXT,
	reserved_until_ms BIGINT NOT NULL DEFAULT 0,
	wrap_until_ms BIGINT NOT NULL DEFAULT 0,
	idle_since_ms BIGINT NOT NULL DEFAULT 0,
	missed INTEGER NOT NULL DEFAULT 0,
	calls INTEGER NOT NULL DEFAULT 0,
	case_number TEXT NOT NULL DEFAULT '',
	created_ms BIGINT NOT NULL
);
CREATE TABLE routing_callbacks (
	id TEXT PRIMARY KEY,
	case_number TEXT NOT NULL,
	call_id TEXT NOT NULL,
	queue TEXT NOT NULL,
	number_sealed TEXT NOT NULL,
	number_hash TEXT NOT NULL,
	lang TEXT NOT NULL,
	state TEXT NOT NULL,
	agent_id TEXT NOT NULL DEFAULT '',
	attempts INTEGER NOT NULL DEFAULT 0,
	reason TEXT NOT NULL DEFAULT '',
	created_ms BIGINT NOT NULL,
	updated_ms BIGINT NOT NULL
);
CREATE INDEX routing_callbacks_state ON routing_callbacks (state, created_ms);
CREATE INDEX routing_callbacks_number ON routing_callbacks (number_hash, state)`}}

// OpenStore migrates the "routing" component and returns the store.
func OpenStore(ctx context.Context, db *sqldb.DB, cfg StoreConfig) (*SQLStore, error) {
	if err := db.Migrate(ctx, "routing", migrations); err != nil {
		return nil, err
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if cfg.Hash == nil {
		cfg.Hash = func(n string) string { h := sha256.Sum256([]byte(n)); return hex.EncodeToString(h[:]) }
	}
	return &SQLStore{db: db, cfg: cfg}, nil
}

func (s *SQLStore) seal(number, id string) (string, error) {
	if s.cfg.Sealer == nil {
		return number, nil
	}
	return s.cfg.Sealer.Seal([]byte(number), "callback/"+id)
}

func (s *SQLStore) open(sealed, id string) (string, error) {
	if s.cfg.Sealer == nil {
		return sealed, nil
	}
	b, err := s.cfg.Sealer.Open(sealed, "callback/"+id)
	return string(b), err
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

const agentCols = `id, name, extension, skills, presence, pause_reason, since_ms, activity, reserved_by,
	reserved_until_ms, wrap_until_ms, idle_since_ms, missed, calls, case_number, created_ms`

func scanAgent(sc interface{ Scan(...any) error }) (*Agent, error) {
	var a Agent
	var skills, presence, activity string
	var reservedBy sql.NullString
	var since, until, wrap, idle, created int64
	if err := sc.Scan(&a.ID, &a.Name, &a.Extension, &skills, &presence, &a.PauseReason, &since, &activity, &reservedBy,
		&until, &wrap, &idle, &a.Missed, &a.Calls, &a.Case, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(skills), &a.Skills); err != nil {
		return nil, fmt.Errorf("routing: agent %s skills: %w", a.ID, err)
	}
	a.Presence, a.Activity, a.ReservedBy = AgentState(presence), AgentState(activity), reservedBy.String
	a.Since, a.ReservedUntil, a.WrapUntil, a.IdleSince, a.CreatedAt = fromMS(since), fromMS(until), fromMS(wrap), fromMS(idle), fromMS(created)
	return &a, nil
}

// AddAgent creates an agent. The password is turned into HA1 values and
// dropped.
func (s *SQLStore) AddAgent(ctx context.Context, n NewAgent, now time.Time) (*Agent, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	if n.Presence == "" {
		n.Presence = LoggedOut
	}
	skills, _ := json.Marshal(n.Skills)
	_, err := s.db.ExecContext(ctx, `INSERT INTO routing_agents (id, name, extension, realm, ha1_md5, ha1_sha256, skills,
		presence, pause_reason, since_ms, idle_since_ms, created_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		n.ID, strings.TrimSpace(n.Name), n.Extension, s.cfg.Realm, HA1("MD5", n.Extension, s.cfg.Realm, n.Password),
		HA1("SHA-256", n.Extension, s.cfg.Realm, n.Password), string(skills), string(n.Presence), n.PauseReason,
		ms(now), ms(now), ms(now))
	if err != nil {
		if s.exists(ctx, n) {
			return nil, ErrAgentExists
		}
		return nil, fmt.Errorf("routing: add agent %s: %w", n.ID, err)
	}
	return s.Agent(ctx, n.ID)
}

func (s *SQLStore) exists(ctx context.Context, n NewAgent) bool {
	var c int
	s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM routing_agents WHERE id = $1 OR extension = $2`, n.ID, n.Extension).Scan(&c)
	return c > 0
}

// RemoveAgent deletes an agent who is not on a call.
func (s *SQLStore) RemoveAgent(ctx context.Context, id string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM routing_agents WHERE id = $1 AND (reserved_by IS NULL OR reserved_until_ms <= $2)`, id, ms(now))
	if err != nil {
		return fmt.Errorf("routing: remove agent %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.Agent(ctx, id); err != nil {
			return err
		}
		return ErrAgentBusy
	}
	return nil
}

// Agents lists every agent by id.
func (s *SQLStore) Agents(ctx context.Context) ([]*Agent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+agentCols+` FROM routing_agents ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("routing: agents: %w", err)
	}
	defer rows.Close()
	var out []*Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Agent returns one agent.
func (s *SQLStore) Agent(ctx context.Context, id string) (*Agent, error) {
	a, err := scanAgent(s.db.QueryRowContext(ctx, `SELECT `+agentCols+` FROM routing_agents WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoAgent
	}
	if err != nil {
		return nil, fmt.Errorf("routing: agent %s: %w", id, err)
	}
	return a, nil
}

// SetPresence logs an agent in or out or pauses them (reason required for
// a pause). It also works during a call: it applies to the next one. A
// manual change resets the missed-calls count.
func (s *SQLStore) SetPresence(ctx context.Context, id string, p AgentState, reason string, now time.Time) (*Agent, error) {
	switch p {
	case LoggedOut, Available:
		reason = ""
	case Paused:
		if strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%w: a pause needs a reason", ErrBadAgent)
		}
	default:
		return nil, fmt.Errorf("%w: state %q: want logged-out, available or paused", ErrBadAgent, p)
	}
	// A fresh login starts idle now (longest-idle would otherwise favour
	// whoever logged out longest ago).
	res, err := s.db.ExecContext(ctx, `UPDATE routing_agents SET presence = $1, pause_reason = $2, since_ms = $3, missed = 0,
		idle_since_ms = CASE WHEN presence = 'logged-out' AND $1 <> 'logged-out' THEN $3 ELSE idle_since_ms END
		WHERE id = $4`, string(p), reason, ms(now), id)
	if err != nil {
		return nil, fmt.Errorf("routing: agent %s presence: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrNoAgent
	}
	return s.Agent(ctx, id)
}

// Credentials returns the digest credentials of the agent whose phone
// registers as username (the extension).
func (s *SQLStore) Credentials(ctx context.Context, username string) (Credentials, error) {
	c := Credentials{Username: username}
	err := s.db.QueryRowContext(ctx, `SELECT id, realm, ha1_md5, ha1_sha256 FROM routing_agents WHERE extension = $1`, username).
		Scan(&c.AgentID, &c.Realm, &c.HA1MD5, &c.HA1SHA256)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNoAgent
	}
	if err != nil {
		return c, fmt.Errorf("routing: credentials: %w", err)
	}
	return c, nil
}

// Reserve implements Reserver with one conditional UPDATE: the database
// row lock makes it atomic across processes (PostgreSQL re-checks the WHERE
// clause on the row version a concurrent UPDATE committed, so the loser
// matches no row).
func (s *SQLStore) Reserve(ctx context.Context, agentID, holder string, activity AgentState, caseNumber string, now, until time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE routing_agents SET reserved_by = $1, reserved_until_ms = $2, activity = $3, case_number = $4
		WHERE id = $5 AND presence = 'available' AND (reserved_by IS NULL OR reserved_until_ms <= $6) AND wrap_until_ms <= $6`,
		holder, ms(until), string(activity), caseNumber, agentID, ms(now))
	if err != nil {
		return false, fmt.Errorf("routing: reserve %s: %w", agentID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReserveForCallback implements Reserver.
func (s *SQLStore) ReserveForCallback(ctx context.Context, agentID, holder, caseNumber string, now, until time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE routing_agents SET reserved_by = $1, reserved_until_ms = $2, activity = 'ringing', case_number = $3
		WHERE id = $4 AND presence <> 'logged-out' AND (reserved_by IS NULL OR reserved_until_ms <= $5)`,
		holder, ms(until), caseNumber, agentID, ms(now))
	if err != nil {
		return false, fmt.Errorf("routing: reserve %s: %w", agentID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Hold implements Reserver.
func (s *SQLStore) Hold(ctx context.Context, agentID, holder string, activity AgentState, until time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE routing_agents SET activity = $1, reserved_until_ms = $2 WHERE id = $3 AND reserved_by = $4`,
		string(activity), ms(until), agentID, holder)
	if err != nil {
		return fmt.Errorf("routing: hold %s: %w", agentID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNoAgent
	}
	return nil
}

// Release implements Reserver.
func (s *SQLStore) Release(ctx context.Context, agentID, holder string, r Release) (*Agent, error) {
	answered, missed := 0, 0
	if r.Answered {
		answered = 1
	}
	if r.Missed {
		missed = 1
	}
	pauseAfter := r.PauseAfter
	if pauseAfter <= 0 {
		pauseAfter = 1 << 30
	}
	idle := r.WrapUntil
	if idle.IsZero() || idle.Before(r.Now) {
		idle = r.Now
	}
	_, err := s.db.ExecContext(ctx, `UPDATE routing_agents SET
		reserved_by = NULL, reserved_until_ms = 0, activity = '', case_number = '',
		wrap_until_ms = $1,
		calls = calls + $2,
		missed = CASE WHEN $2 = 1 THEN 0 ELSE missed + $3 END,
		idle_since_ms = CASE WHEN $3 = 1 THEN idle_since_ms ELSE $4 END,
		presence = CASE WHEN $3 = 1 AND presence = 'available' AND missed + 1 >= $5 THEN 'paused' ELSE presence END,
		pause_reason = CASE WHEN $3 = 1 AND presence = 'available' AND missed + 1 >= $5 THEN 'no-answer' ELSE pause_reason END,
		since_ms = CASE WHEN $3 = 1 AND presence = 'available' AND missed + 1 >= $5 THEN $6 ELSE since_ms END
		WHERE id = $7 AND reserved_by = $8`,
		ms(r.WrapUntil), answered, missed, ms(idle), pauseAfter, ms(r.Now), agentID, holder)
	if err != nil {
		return nil, fmt.Errorf("routing: release %s: %w", agentID, err)
	}
	return s.Agent(ctx, agentID)
}

// Callback is a task to call a citizen back (回拨): a caller who hung up
// while waiting, or one who asked for it. It is linked to the call's case.
type Callback struct {
	ID     string `json:"id"`
	Case   string `json:"case"`
	CallID string `json:"call_id"`
	Queue  string `json:"queue"`
	// Number is personal data: never in JSON, logs or errors.
	Number   string    `json:"-"`
	Lang     string    `json:"lang"`
	State    string    `json:"state"` // open, taken, done, failed
	Agent    string    `json:"agent,omitempty"`
	Attempts int       `json:"attempts"`
	Reason   string    `json:"reason,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// Callback states.
const (
	CallbackOpen   = "open"
	CallbackTaken  = "taken"
	CallbackDone   = "done"
	CallbackFailed = "failed"
)

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// AddCallback books a callback task. A number that already has an open
// task gets no second one (the existing task is returned, created false).
func (s *SQLStore) AddCallback(ctx context.Context, c Callback, now time.Time) (Callback, bool, error) {
	var existing string
	hash := s.cfg.Hash(c.Number)
	err := s.db.QueryRowContext(ctx, `SELECT id FROM routing_callbacks WHERE number_hash = $1 AND state IN ('open','taken')`, hash).Scan(&existing)
	if err == nil {
		got, err := s.callback(ctx, existing)
		return got, false, err
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return c, false, fmt.Errorf("routing: callback: %w", err)
	}
	c.ID, c.State, c.Created, c.Updated = newID(), CallbackOpen, now, now
	sealed, err := s.seal(c.Number, c.ID)
	if err != nil {
		return c, false, fmt.Errorf("routing: seal callback number: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO routing_callbacks (id, case_number, call_id, queue, number_sealed, number_hash, lang, state, created_ms, updated_ms)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`, c.ID, c.Case, c.CallID, c.Queue, sealed, hash, c.Lang, c.State, ms(now), ms(now)); err != nil {
		return c, false, fmt.Errorf("routing: add callback: %w", err)
	}
	return c, true, nil
}

const callbackCols = `id, case_number, call_id, queue, number_sealed, lang, state, agent_id, attempts, reason, created_ms, updated_ms`

func (s *SQLStore) scanCallback(sc interface{ Scan(...any) error }) (Callback, error) {
	var c Callback
	var created, updated int64
	var sealed string
	if err := sc.Scan(&c.ID, &c.Case, &c.CallID, &c.Queue, &sealed, &c.Lang, &c.State, &c.Agent, &c.Attempts, &c.Reason, &created, &updated); err != nil {
		return c, err
	}
	c.Created, c.Updated = fromMS(created), fromMS(updated)
	n, err := s.open(sealed, c.ID)
	if err != nil {
		return c, fmt.Errorf("routing: callback %s number: %w", c.ID, err)
	}
	c.Number = n
	return c, nil
}

func (s *SQLStore) callback(ctx context.Context, id string) (Callback, error) {
	c, err := s.scanCallback(s.db.QueryRowContext(ctx, `SELECT `+callbackCols+` FROM routing_callbacks WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNoCallback
	}
	return c, err
}

// Callbacks lists callback tasks, oldest first; states filters (none: all).
func (s *SQLStore) Callbacks(ctx context.Context, states ...string) ([]Callback, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+callbackCols+` FROM routing_callbacks ORDER BY created_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("routing: callbacks: %w", err)
	}
	defer rows.Close()
	var out []Callback
	for rows.Next() {
		c, err := s.scanCallback(rows)
		if err != nil {
			return nil, err
		}
		if len(states) == 0 || contains(states, c.State) {
			out = append(out, c)
		}
	}
	return out, rows.Err()
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// TakeCallback marks an open task taken by agentID (atomically: two agents
// taking the same task, one wins).
func (s *SQLStore) TakeCallback(ctx context.Context, id, agentID string, now time.Time) (Callback, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE routing_callbacks SET state = 'taken', agent_id = $1, attempts = attempts + 1, updated_ms = $2
		WHERE id = $3 AND state = 'open'`, agentID, ms(now), id)
	if err != nil {
		return Callback{}, fmt.Errorf("routing: take callback: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Callback{}, ErrNoCallback
	}
	return s.callback(ctx, id)
}

// FinishCallback ends a taken task: done, failed, or back to open for
// another attempt.
func (s *SQLStore) FinishCallback(ctx context.Context, id, state, reason string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE routing_callbacks SET state = $1, reason = $2, updated_ms = $3 WHERE id = $4`, state, reason, ms(now), id)
	if err != nil {
		return fmt.Errorf("routing: finish callback: %w", err)
	}
	return nil
}
