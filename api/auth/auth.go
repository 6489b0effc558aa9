// Package auth keeps the API's bearer tokens in the data store (component
// "auth"). Only a SHA-256 hash of each token is stored: tokens are 256-bit
// random strings, so a fast hash is enough and a stolen database yields no
// usable token.
//
// Every token belongs to a named account (its Name; article 22: 谁管理、
// 谁使用、谁负责 — every access attributable to a named account). The account
// carries the role (admin, supervisor, agent, auditor), an optional
// password (bcrypt) for Login, and can be disabled, which stops its tokens.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cq12345/hotline/sqldb"
)

// Role is what a token may do.
type Role string

// Roles of the design (DESIGN.md, personal data). Only Admin grants writes
// to flows today.
const (
	Admin      Role = "admin"
	Supervisor Role = "supervisor"
	Agent      Role = "agent"
	Auditor    Role = "auditor"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case Admin, Supervisor, Agent, Auditor:
		return true
	}
	return false
}

// Token is a stored token (never its secret).
type Token struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"` // who holds it; the actor in histories
	Role      Role       `json:"role"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

var (
	// ErrInvalid: the presented token is unknown or revoked.
	ErrInvalid = errors.New("auth: invalid token")
	// ErrNotFound: no such (unrevoked) token.
	ErrNotFound = errors.New("auth: no such token")
	// ErrBadRequest: a token cannot be made as asked (unknown role, no name).
	ErrBadRequest = errors.New("auth: bad request")
)

var migrations = []sqldb.Migration{{
	Version: 1,
	SQL: `CREATE TABLE auth_tokens (
	id TEXT PRIMARY KEY,
	hash TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	role TEXT NOT NULL,
	created_at TEXT NOT NULL,
	created_by TEXT NOT NULL,
	revoked_at TEXT
)`,
}, accountsMigration}

// Store keeps tokens.
type Store struct {
	db         *sqldb.DB
	bcryptCost int // 0: bcryptCost
}

// NewStore migrates the "auth" component and returns the store.
func NewStore(ctx context.Context, db *sqldb.DB) (*Store, error) {
	if err := db.Migrate(ctx, "auth", migrations); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &Store{db: db}, nil
}

const prefix = "hl_"

func hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Create makes a token and returns its secret, which is shown once and never
// stored.
// The token belongs to the account name (created without a password when
// it does not exist yet); role may be "" for the account's role, else it
// must be the account's.
func (s *Store) Create(ctx context.Context, name string, role Role, createdBy string) (string, *Token, error) {
	role, err := s.ensureAccount(ctx, s.db, name, role, createdBy)
	if err != nil {
		return "", nil, err
	}
	return s.create(ctx, s.db, name, role, createdBy)
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func (s *Store) create(ctx context.Context, ex execer, name string, role Role, createdBy string) (string, *Token, error) {
	if !role.Valid() {
		return "", nil, fmt.Errorf("auth: create token: %w: unknown role %q (admin, supervisor, agent, auditor)", ErrBadRequest, role)
	}
	if strings.TrimSpace(name) == "" {
		return "", nil, fmt.Errorf("auth: create token: %w: no name", ErrBadRequest)
	}
	secret, err := newSecret()
	if err != nil {
		return "", nil, fmt.Errorf("auth: create token: %w", err)
	}
	t := &Token{ID: uuid.NewString(), Name: name, Role: role, CreatedAt: time.Now().UTC(), CreatedBy: createdBy}
	if _, err := ex.ExecContext(ctx, `INSERT INTO auth_tokens (id, hash, name, role, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.ID, hash(secret), t.Name, string(t.Role), t.CreatedAt.Format(time.RFC3339Nano), createdBy); err != nil {
		return "", nil, fmt.Errorf("auth: create token: %w", err)
	}
	return secret, t, nil
}

// CreateFirst creates an admin token only when the store has no usable
// (unrevoked) token (bootstrap; also the way back in after revoking every
// token), atomically also across processes sharing PostgreSQL. It returns ""
// and nil when usable tokens exist already.
func (s *Store) CreateFirst(ctx context.Context, name string) (string, *Token, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", nil, fmt.Errorf("auth: bootstrap: %w", err)
	}
	defer tx.Rollback()
	if s.db.Dialect == sqldb.Postgres {
		// Serialise bootstraps; SQLite transactions are exclusive already.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7345012346)`); err != nil {
			return "", nil, fmt.Errorf("auth: bootstrap: %w", err)
		}
	}
	var n int
	// Usable: not revoked, and not of a disabled account.
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_tokens t LEFT JOIN auth_accounts a ON a.name = t.name
		WHERE t.revoked_at IS NULL AND a.disabled_at IS NULL`).Scan(&n); err != nil {
		return "", nil, fmt.Errorf("auth: bootstrap: %w", err)
	}
	if n > 0 {
		return "", nil, nil
	}
	if _, err := s.ensureAccount(ctx, tx, name, Admin, "bootstrap"); errors.Is(err, ErrBadRequest) {
		// The account of that name was disabled or is no admin: a
		// disabled account is never enabled behind anyone's back, so
		// the way back in is a new admin account.
		name = fmt.Sprintf("%s-%s", name, time.Now().UTC().Format("20060102150405"))
		if _, err := s.ensureAccount(ctx, tx, name, Admin, "bootstrap"); err != nil {
			return "", nil, err
		}
	} else if err != nil {
		return "", nil, err
	}
	secret, t, err := s.create(ctx, tx, name, Admin, "bootstrap")
	if err != nil {
		return "", nil, err
	}
	if err := tx.Commit(); err != nil {
		return "", nil, fmt.Errorf("auth: bootstrap: %w", err)
	}
	return secret, t, nil
}

// Verify returns the token whose secret this is, or ErrInvalid.
func (s *Store) Verify(ctx context.Context, secret string) (*Token, error) {
	if !strings.HasPrefix(secret, prefix) {
		return nil, ErrInvalid
	}
	var t Token
	var role, created string
	var accRole, accDisabled sql.NullString
	// The account decides: a disabled account's tokens stop working, and
	// the account's role is the token's.
	err := s.db.QueryRowContext(ctx, `SELECT t.id, t.name, t.role, t.created_at, t.created_by, a.role, a.disabled_at
FROM auth_tokens t LEFT JOIN auth_accounts a ON a.name = t.name WHERE t.hash = $1 AND t.revoked_at IS NULL`,
		hash(secret)).Scan(&t.ID, &t.Name, &role, &created, &t.CreatedBy, &accRole, &accDisabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("auth: verify: %w", err)
	}
	if accDisabled.Valid && accDisabled.String != "" {
		return nil, ErrInvalid
	}
	if accRole.Valid {
		role = accRole.String
	}
	t.Role = Role(role)
	t.CreatedAt, _ = time.Parse(time.RFC3339Nano, created)
	return &t, nil
}

// Revoke makes a token unusable.
func (s *Store) Revoke(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE auth_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("auth: revoke %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("auth: revoke %s: %w", id, ErrNotFound)
	}
	return nil
}

// List returns every token (without secrets), oldest first.
func (s *Store) List(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, role, created_at, created_by, COALESCE(revoked_at, '') FROM auth_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("auth: list: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		var t Token
		var role, created, revoked string
		if err := rows.Scan(&t.ID, &t.Name, &role, &created, &t.CreatedBy, &revoked); err != nil {
			return nil, fmt.Errorf("auth: list: %w", err)
		}
		t.Role = Role(role)
		t.CreatedAt, _ = time.Parse(time.RFC3339Nano, created)
		if revoked != "" {
			r, _ := time.Parse(time.RFC3339Nano, revoked)
			t.RevokedAt = &r
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
