package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cq12345/hotline/flows/flowstest"
)

func TestTokens(t *testing.T) {
	ctx := context.Background()
	for name, dsn := range flowstest.DSNs(t) {
		t.Run(name, func(t *testing.T) {
			s, err := NewStore(ctx, flowstest.Open(t, dsn))
			if err != nil {
				t.Fatal(err)
			}
			secret, tok, err := s.Create(ctx, "reader1", Auditor, "test")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(secret, "hl_") || len(secret) < 40 {
				t.Fatalf("secret %q", secret)
			}
			got, err := s.Verify(ctx, secret)
			if err != nil || got.ID != tok.ID || got.Role != Auditor || got.Name != "reader1" {
				t.Fatalf("verify: %+v %v", got, err)
			}
			// Only the hash is stored.
			var n int
			if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_tokens WHERE hash = $1 OR id = $1`, secret).Scan(&n); err != nil || n != 0 {
				t.Fatalf("secret stored in clear: %d %v", n, err)
			}
			for _, bad := range []string{"", "hl_", secret + "x", strings.TrimPrefix(secret, "hl_")} {
				if _, err := s.Verify(ctx, bad); !errors.Is(err, ErrInvalid) {
					t.Errorf("verify %q: %v", bad, err)
				}
			}
			if _, _, err := s.Create(ctx, "x", Role("root"), "test"); err == nil {
				t.Error("unknown role accepted")
			}
			if err := s.Revoke(ctx, tok.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Verify(ctx, secret); !errors.Is(err, ErrInvalid) {
				t.Fatalf("revoked token verified: %v", err)
			}
		})
	}
}

func TestCreateFirstOnce(t *testing.T) {
	ctx := context.Background()
	for name, dsn := range flowstest.DSNs(t) {
		t.Run(name, func(t *testing.T) {
			stores := make([]*Store, 2)
			for i := range stores {
				s, err := NewStore(ctx, flowstest.Open(t, dsn))
				if err != nil {
					t.Fatal(err)
				}
				stores[i] = s
			}
			var wg sync.WaitGroup
			secrets := make([]string, 2)
			for i, s := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sec, _, err := s.CreateFirst(ctx, "admin")
					if err != nil {
						t.Error(err)
					}
					secrets[i] = sec
				}()
			}
			wg.Wait()
			if (secrets[0] == "") == (secrets[1] == "") {
				t.Fatalf("bootstrap created %d tokens, want 1", btoi(secrets[0] != "")+btoi(secrets[1] != ""))
			}
			sec := secrets[0] + secrets[1]
			tok, err := stores[0].Verify(ctx, sec)
			if err != nil || tok.Role != Admin {
				t.Fatalf("bootstrap token: %+v %v", tok, err)
			}
			if again, _, err := stores[1].CreateFirst(ctx, "admin"); again != "" || err != nil {
				t.Fatalf("second bootstrap: %q %v", again, err)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
