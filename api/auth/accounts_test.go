package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/cq12345/hotline/flows/flowstest"
)

func TestAccounts(t *testing.T) {
	ctx := context.Background()
	for name, dsn := range flowstest.DSNs(t) {
		t.Run(name, func(t *testing.T) {
			s, err := NewStore(ctx, flowstest.Open(t, dsn))
			if err != nil {
				t.Fatal(err)
			}
			s.bcryptCost = bcrypt.MinCost // fast tests; the default is bcryptCost
			a, err := s.AddAccount(ctx, "zhang.wei", Agent, "correct horse battery", "admin")
			if err != nil || a.Role != Agent || !a.HasPassword {
				t.Fatalf("add: %+v %v", a, err)
			}
			if _, err := s.AddAccount(ctx, "zhang.wei", Supervisor, "", "admin"); !errors.Is(err, ErrExists) {
				t.Errorf("second add: %v, want ErrExists", err)
			}
			for _, bad := range []struct{ name, pw string }{{"", ""}, {"a b", ""}, {"short", "12345"}} {
				if _, err := s.AddAccount(ctx, bad.name, Agent, bad.pw, "admin"); !errors.Is(err, ErrBadRequest) {
					t.Errorf("add %q/%q: %v, want ErrBadRequest", bad.name, bad.pw, err)
				}
			}
			// The password is stored hashed (bcrypt), never in clear.
			var h string
			if err := s.db.QueryRowContext(ctx, `SELECT password_hash FROM auth_accounts WHERE name = $1`, "zhang.wei").Scan(&h); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(h, "$2") || strings.Contains(h, "horse") {
				t.Errorf("password hash %q", h)
			}

			// Login issues a token of the account, with its role.
			if _, _, err := s.Login(ctx, "zhang.wei", "wrong password!"); !errors.Is(err, ErrLogin) {
				t.Errorf("wrong password: %v", err)
			}
			if _, _, err := s.Login(ctx, "nobody", "correct horse battery"); !errors.Is(err, ErrLogin) {
				t.Errorf("unknown account: %v", err)
			}
			secret, tok, err := s.Login(ctx, "zhang.wei", "correct horse battery")
			if err != nil || tok.Name != "zhang.wei" || tok.Role != Agent {
				t.Fatalf("login: %+v %v", tok, err)
			}
			if got, err := s.Verify(ctx, secret); err != nil || got.Name != "zhang.wei" || got.Role != Agent {
				t.Fatalf("verify: %+v %v", got, err)
			}

			// A token for an account takes its role; another role is refused.
			if _, _, err := s.Create(ctx, "zhang.wei", Admin, "admin"); !errors.Is(err, ErrBadRequest) {
				t.Errorf("token with another role: %v", err)
			}
			sec2, t2, err := s.Create(ctx, "zhang.wei", "", "admin")
			if err != nil || t2.Role != Agent {
				t.Fatalf("token with the account's role: %+v %v", t2, err)
			}
			// A token for a new name creates its account (no password).
			if _, _, err := s.Create(ctx, "li.na", Auditor, "admin"); err != nil {
				t.Fatal(err)
			}
			if a, err := s.Account(ctx, "li.na"); err != nil || a.Role != Auditor || a.HasPassword {
				t.Errorf("implicit account: %+v %v", a, err)
			}

			// Disabling stops every token of the account and its logins.
			if err := s.DisableAccount(ctx, "zhang.wei", "admin"); err != nil {
				t.Fatal(err)
			}
			for _, sec := range []string{secret, sec2} {
				if _, err := s.Verify(ctx, sec); !errors.Is(err, ErrInvalid) {
					t.Errorf("token of a disabled account: %v", err)
				}
			}
			if _, _, err := s.Login(ctx, "zhang.wei", "correct horse battery"); !errors.Is(err, ErrLogin) {
				t.Errorf("login of a disabled account: %v", err)
			}
			if _, _, err := s.Create(ctx, "zhang.wei", "", "admin"); !errors.Is(err, ErrBadRequest) {
				t.Errorf("token for a disabled account: %v", err)
			}
			if err := s.DisableAccount(ctx, "zhang.wei", "admin"); !errors.Is(err, ErrNotFound) {
				t.Errorf("disable twice: %v", err)
			}
			l, err := s.Accounts(ctx)
			if err != nil || len(l) != 2 || l[1].Name != "zhang.wei" || l[1].DisabledAt == nil || l[1].DisabledBy != "admin" {
				t.Errorf("accounts: %+v %v", l, err)
			}
		})
	}
}

// The bootstrap admin token belongs to the account "admin".
func TestBootstrapAccount(t *testing.T) {
	ctx := context.Background()
	s, err := NewStore(ctx, flowstest.Open(t, flowstest.DSNs(t)["sqlite"]))
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := s.CreateFirst(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Account(ctx, "admin")
	if err != nil || a.Role != Admin || a.CreatedBy != "bootstrap" {
		t.Fatalf("admin account: %+v %v", a, err)
	}
	if tok, err := s.Verify(ctx, secret); err != nil || tok.Name != "admin" || tok.Role != Admin {
		t.Fatalf("bootstrap token: %+v %v", tok, err)
	}

	// All tokens revoked and the admin account disabled: the next
	// bootstrap makes a new admin account instead of enabling it again.
	l, _ := s.List(ctx)
	for _, tok := range l {
		s.Revoke(ctx, tok.ID)
	}
	if err := s.DisableAccount(ctx, "admin", "test"); err != nil {
		t.Fatal(err)
	}
	secret, tok, err := s.CreateFirst(ctx, "admin")
	if err != nil || tok == nil || !strings.HasPrefix(tok.Name, "admin-") || tok.Role != Admin {
		t.Fatalf("bootstrap after disabling admin: %+v %v", tok, err)
	}
	if got, err := s.Verify(ctx, secret); err != nil || got.Name != tok.Name {
		t.Errorf("new bootstrap token: %+v %v", got, err)
	}
	if a, _ := s.Account(ctx, "admin"); a == nil || a.DisabledAt == nil {
		t.Errorf("the disabled admin account was enabled again: %+v", a)
	}
}
