package sip

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/phone"
	"github.com/cq12345/hotline/routing"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// memCreds is an in-memory credential store (routing.SQLStore in
// production), keyed by extension.
type memCreds struct {
	mu    sync.Mutex
	users map[string]routing.Credentials
}

func newCreds(pw map[string]string) *memCreds {
	m := &memCreds{users: map[string]routing.Credentials{}}
	for u, p := range pw {
		m.users[u] = routing.Credentials{AgentID: "a" + u, Username: u, Realm: "hotline",
			HA1MD5: routing.HA1("MD5", u, "hotline", p), HA1SHA256: routing.HA1("SHA-256", u, "hotline", p)}
	}
	return m
}

func (m *memCreds) Credentials(_ context.Context, user string) (routing.Credentials, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.users[user]
	if !ok {
		return routing.Credentials{Username: user}, routing.ErrNoAgent
	}
	return c, nil
}

// testClock lets a test move the registrar's time forward.
type testClock struct{ off atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }

func withRegistrar(creds CredentialStore) serverOpt {
	return func(_ *media.Config, c *Config) { c.Credentials = creds }
}

func newPhone(t testing.TB) *phone.Phone {
	t.Helper()
	p, err := phone.New(phone.Config{SIPAddr: "127.0.0.1:0", MediaIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestRegistrar(t *testing.T) {
	ts := startServer(t, func(context.Context, ivr.Call) {}, withRegistrar(newCreds(map[string]string{"1001": "s3cret", "1002": "other"})))
	clock := &testClock{}
	now := clock.now
	ts.reg.clock.Store(&now)
	target := ts.Addr().String()
	ctx := context.Background()

	p1, p2 := newPhone(t), newPhone(t)
	// Wrong password: 403.
	_, err := p1.Register(ctx, phone.RegisterConfig{Registrar: target, User: "1001", Password: "wrong"})
	if !errors.Is(err, phone.ErrRegister) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("wrong password: %v, want 403", err)
	}
	// Unknown user: 403 too (no user enumeration).
	_, err = p1.Register(ctx, phone.RegisterConfig{Registrar: target, User: "1999", Password: "x"})
	if !errors.Is(err, phone.ErrRegister) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("unknown user: %v, want 403", err)
	}
	// Another agent's password for 1001: 403.
	if len(ts.Contacts("1001")) != 0 {
		t.Fatal("a refused REGISTER left a binding")
	}
	// Too brief: 423 with Min-Expires.
	_, err = p1.Register(ctx, phone.RegisterConfig{Registrar: target, User: "1001", Password: "s3cret", Expires: 10 * time.Second})
	if !errors.Is(err, phone.ErrRegister) || !strings.Contains(err.Error(), "423") {
		t.Fatalf("expires 10 s: %v, want 423", err)
	}
	// Right password: bound, expiry granted (capped at MaxExpires).
	r1, err := p1.Register(ctx, phone.RegisterConfig{Registrar: target, User: "1001", Password: "s3cret", Expires: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if g := r1.Granted(); g != time.Hour {
		t.Errorf("granted %v, want the 1 h maximum", g)
	}
	// A second phone of the same agent: two contacts.
	r2, err := p2.Register(ctx, phone.RegisterConfig{Registrar: target, User: "1001", Password: "s3cret", Expires: 120 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ts.Contacts("1001")); n != 2 || !ts.Registered("1001") || ts.Registered("1002") {
		t.Fatalf("%d contacts, want 2; 1002 registered: %v", n, ts.Registered("1002"))
	}
	// Unregister (Expires: 0) removes only that contact.
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	cs := ts.Contacts("1001")
	if len(cs) != 1 || cs[0].Contact.Port != int(p1.SIPAddr("udp").Port()) {
		t.Fatalf("after unregister: %+v, want p1's contact", cs)
	}
	// Contact: * with Expires: 0 removes every binding of the user.
	wildcardUnregister(t, ts.Addr(), "1001", "s3cret")
	if n := len(ts.Contacts("1001")); n != 0 {
		t.Fatalf("%d contacts after Contact: *, want 0", n)
	}
	// Expiry: a binding not refreshed is gone once its time is up.
	r2, err = p2.Register(ctx, phone.RegisterConfig{Registrar: target, User: "1001", Password: "s3cret", Expires: 120 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(119 * time.Second)
	if n := len(ts.Contacts("1001")); n != 1 {
		t.Fatalf("%d contacts before expiry, want 1", n)
	}
	clock.advance(2 * time.Second)
	if n := len(ts.Contacts("1001")); n != 0 {
		t.Fatalf("%d contacts after expiry, want 0", n)
	}
	clock.advance(-121 * time.Second)
	_ = r2.Close()
	_ = r1.Close()
}

// wildcardUnregister sends REGISTER Contact: * Expires: 0 with sipgo.
func wildcardUnregister(t *testing.T, srv netip.AddrPort, user, pw string) {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	cl, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	aor := sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1"}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: srv.Addr().String(), Port: int(srv.Port())})
	req.AppendHeader(&sip.FromHeader{Address: aor, Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(8)}}})
	req.AppendHeader(&sip.ToHeader{Address: aor})
	req.AppendHeader(sip.NewHeader("Contact", "*"))
	req.AppendHeader(sip.NewHeader("Expires", "0"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := cl.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == 401 {
		res, err = cl.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
	}
	if res.StatusCode != 200 {
		t.Fatalf("Contact: * got %d %s", res.StatusCode, res.Reason)
	}
}

// TestVerifyDigest: responses computed by a client library (icholy/digest,
// which sipgo uses) check out against the stored HA1 for MD5 and SHA-256,
// with and without qop; a wrong password does not.
func TestVerifyDigest(t *testing.T) {
	c, _ := newCreds(map[string]string{"1001": "s3cret"}).Credentials(context.Background(), "1001")
	for _, alg := range []string{"MD5", "SHA-256"} {
		for _, qop := range [][]string{{"auth"}, nil} {
			for _, pw := range []string{"s3cret", "wrong"} {
				chal := &digest.Challenge{Realm: "hotline", Nonce: "abc", Algorithm: alg, QOP: qop}
				cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:127.0.0.1", Username: "1001", Password: pw, Count: 1, Cnonce: "xyz"})
				if err != nil {
					t.Fatal(err)
				}
				parsed, err := digest.ParseCredentials(cred.String())
				if err != nil {
					t.Fatal(err)
				}
				err = verify(parsed, c, "REGISTER")
				if ok := err == nil; ok != (pw == "s3cret") {
					t.Errorf("%s qop=%v password %q: %v", alg, qop, pw, err)
				}
			}
		}
	}
}
