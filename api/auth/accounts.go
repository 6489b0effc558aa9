package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cq12345/hotline/sqldb"
)

// accountsMigration adds named accounts; every token already issued gets
// the account of its name (with the token's role), so that no access is
// left without an account.
var accountsMigration = sqldb.Migration{
	Version: 2,
	SQL: `CREATE TABLE auth_accounts (
	name TEXT PRIMARY KEY,
	role TEXT NOT NULL,
	password_hash TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	created_by TEXT NOT NULL,
	disabled_at TEXT,
	disabled_by TEXT
);
INSERT INTO auth_accounts (name, role, created_at, created_by)
	SELECT name, MIN(role), MIN(created_at), 'migration' FROM auth_tokens GROUP BY name`,
}

// Account is a named user of the API (never its password hash).
type Account struct {
	Name        string     `json:"name"`
	Role        Role       `json:"role"`
	HasPassword bool       `json:"has_password"`
	CreatedAt   time.Time  `json:"created_at"`
	CreatedBy   string     `json:"created_by"`
	DisabledAt  *time.Time `json:"disabled_at,omitempty"`
	DisabledBy  string     `json:"disabled_by,omitempty"`
}

var (
	// ErrExists: an account of that name exists already.
	ErrExists = errors.New("auth: account exists")
	// ErrLogin: unknown account, wrong password, no password or disabled
	// (deliberately not told apart).
	ErrLogin = errors.New("auth: wrong name or password")
)

var nameRE = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N}._@-]{0,63}$`)

// MinPassword is the shortest password accepted.
const MinPassword = 10

// bcryptCost is bcrypt's work factor (login is rare; a token is used after).
const bcryptCost = 12

// cost is the store's bcrypt cost (package tests lower it).
func (s *Store) cost() int {
	if s.bcryptCost != 0 {
		return s.bcryptCost
	}
	return bcryptCost
}

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: account name %q: letters, digits, '.', '_', '@', '-' (at most 64)", ErrBadRequest, name)
	}
	return nil
}

func (s *Store) hashPassword(pw string) (string, error) {
	if pw == "" {
		return "", nil
	}
	if len([]rune(pw)) < MinPassword {
		return "", fmt.Errorf("%w: a password needs at least %d characters", ErrBadRequest, MinPassword)
	}
	if len(pw) > 72 {
		return "", fmt.Errorf("%w: a password has at most 72 bytes (bcrypt)", ErrBadRequest)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.cost())
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return string(h), nil
}

type queryExecer interface {
	execer
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// ensureAccount makes sure the account of a new token exists and is usable,
// creating it (without a password) when it does not. It returns the role
// the token gets.
func (s *Store) ensureAccount(ctx context.Context, ex queryExecer, name string, role Role, by string) (Role, error) {
	var have string
	var disabled sql.NullString
	err := ex.QueryRowContext(ctx, `SELECT role, disabled_at FROM auth_accounts WHERE name = $1`, name).Scan(&have, &disabled)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if role == "" {
			return "", fmt.Errorf("auth: create token: %w: no account %q; give a role to create it", ErrBadRequest, name)
		}
		if !role.Valid() {
			return "", fmt.Errorf("auth: create token: %w: unknown role %q (admin, supervisor, agent, auditor)", ErrBadRequest, role)
		}
		if err := checkName(name); err != nil {
			return "", err
		}
		if _, err := ex.ExecContext(ctx, `INSERT INTO auth_accounts (name, role, created_at, created_by) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`,
			name, string(role), time.Now().UTC().Format(time.RFC3339Nano), by); err != nil {
			return "", fmt.Errorf("auth: create account %s: %w", name, err)
		}
		return role, nil
	case err != nil:
		return "", fmt.Errorf("auth: account %s: %w", name, err)
	}
	if disabled.Valid && disabled.String != "" {
		return "", fmt.Errorf("auth: create token: %w: account %q is disabled", ErrBadRequest, name)
	}
	if role != "" && Role(have) != role {
		return "", fmt.Errorf("auth: create token: %w: account %q is %s, not %s", ErrBadRequest, name, have, role)
	}
	return Role(have), nil
}

// AddAccount creates an account. password may be "" (the account then
// gets tokens from an admin only, no Login).
func (s *Store) AddAccount(ctx context.Context, name string, role Role, password, createdBy string) (*Account, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if !role.Valid() {
		return nil, fmt.Errorf("auth: add account: %w: unknown role %q (admin, supervisor, agent, auditor)", ErrBadRequest, role)
	}
	h, err := s.hashPassword(password)
	if err != nil {
		return nil, err
	}
	a := &Account{Name: name, Role: role, HasPassword: h != "", CreatedAt: time.Now().UTC(), CreatedBy: createdBy}
	res, err := s.db.ExecContext(ctx, `INSERT INTO auth_accounts (name, role, password_hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING`,
		name, string(role), h, a.CreatedAt.Format(time.RFC3339Nano), createdBy)
	if err != nil {
		return nil, fmt.Errorf("auth: add account %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("auth: add account %s: %w", name, ErrExists)
	}
	return a, nil
}

// SetPassword replaces an account's password ("" removes it).
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	h, err := s.hashPassword(password)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE auth_accounts SET password_hash = $2 WHERE name = $1`, name, h)
	if err != nil {
		return fmt.Errorf("auth: set password of %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("auth: set password of %s: %w", name, ErrNotFound)
	}
	return nil
}

// DisableAccount stops an account: its tokens stop working at once, and it
// can neither log in nor get new tokens. Accounts are never deleted: the
// audit trail names them.
func (s *Store) DisableAccount(ctx context.Context, name, by string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE auth_accounts SET disabled_at = $2, disabled_by = $3 WHERE name = $1 AND disabled_at IS NULL`,
		name, time.Now().UTC().Format(time.RFC3339Nano), by)
	if err != nil {
		return fmt.Errorf("auth: disable %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("auth: disable %s: %w", name, ErrNotFound)
	}
	return nil
}

const accountCols = `name, role, password_hash, created_at, created_by, COALESCE(disabled_at, ''), COALESCE(disabled_by, '')`

func scanAccount(sc interface{ Scan(...any) error }) (*Account, string, error) {
	var a Account
	var role, h, created, disabled string
	if err := sc.Scan(&a.Name, &role, &h, &created, &a.CreatedBy, &disabled, &a.DisabledBy); err != nil {
		return nil, "", err
	}
	a.Role, a.HasPassword = Role(role), h != ""
	a.CreatedAt, _ = time.Parse(time.RFC3339Nano, created)
	if disabled != "" {
		d, _ := time.Parse(time.RFC3339Nano, disabled)
		a.DisabledAt = &d
	}
	return &a, h, nil
}

// Account returns one account.
func (s *Store) Account(ctx context.Context, name string) (*Account, error) {
	a, _, err := scanAccount(s.db.QueryRowContext(ctx, `SELECT `+accountCols+` FROM auth_accounts WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("auth: account %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: account %s: %w", name, err)
	}
	return a, nil
}

// Accounts lists every account, by name.
func (s *Store) Accounts(ctx context.Context) ([]Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+accountCols+` FROM auth_accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("auth: accounts: %w", err)
	}
	defer rows.Close()
	out := []Account{}
	for rows.Next() {
		a, _, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("auth: accounts: %w", err)
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

// Login checks an account's password and issues a new token for it (shown
// once). Any failure is ErrLogin, so that a caller cannot tell which
// accounts exist.
func (s *Store) Login(ctx context.Context, name, password string) (string, *Token, error) {
	a, h, err := scanAccount(s.db.QueryRowContext(ctx, `SELECT `+accountCols+` FROM auth_accounts WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the same time as a real check.
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return "", nil, ErrLogin
	}
	if err != nil {
		return "", nil, fmt.Errorf("auth: login: %w", err)
	}
	if h == "" || a.DisabledAt != nil || bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) != nil {
		return "", nil, ErrLogin
	}
	return s.create(ctx, s.db, a.Name, a.Role, "login")
}

// dummyHash is compared against when the account does not exist.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte(strings.Repeat("x", MinPassword)), bcryptCost)
	return h
})
