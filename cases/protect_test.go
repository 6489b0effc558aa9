package cases_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cq12345/hotline/cases"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestKeyRingRotation(t *testing.T) {
	old, err := cases.NewKeyRing("2025", map[string][]byte{"2025": key(1)})
	if err != nil {
		t.Fatal(err)
	}
	sealedOld, err := old.Seal([]byte("13800138000"), "caller/c1")
	if err != nil {
		t.Fatal(err)
	}
	if cases.KeyID(sealedOld) != "2025" || strings.Contains(sealedOld, "13800138000") {
		t.Fatalf("sealed %q", sealedOld)
	}
	rotated, err := cases.NewKeyRing("2026", map[string][]byte{"2025": key(1), "2026": key(2)})
	if err != nil {
		t.Fatal(err)
	}
	sealedNew, _ := rotated.Seal([]byte("13800138000"), "caller/c1")
	if cases.KeyID(sealedNew) != "2026" {
		t.Errorf("new value sealed with %q, want the current key", cases.KeyID(sealedNew))
	}
	for _, s := range []string{sealedOld, sealedNew} {
		p, err := rotated.Open(s, "caller/c1")
		if err != nil || string(p) != "13800138000" {
			t.Errorf("open %q: %q, %v", s, p, err)
		}
	}
	if _, err := old.Open(sealedNew, "caller/c1"); !errors.Is(err, cases.ErrKeyUnknown) {
		t.Errorf("open with a ring lacking the key: %v", err)
	}
	if _, err := rotated.Open(sealedOld, "caller/c2"); err == nil {
		t.Error("a ciphertext moved to another case opened")
	}
	tampered := sealedOld[:len(sealedOld)-2] + "AA"
	if _, err := rotated.Open(tampered, "caller/c1"); err == nil {
		t.Error("a tampered ciphertext opened")
	}
	if a, _ := rotated.Seal([]byte("x"), "p"); a == sealedNew {
		t.Error("nonce reuse")
	}
	for _, bad := range []map[string][]byte{{"k": key(1)[:16]}, {"a.b": key(1)}} {
		if _, err := cases.NewKeyRing("k", bad); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
}

func TestNormaliseCaller(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"13800138000", "13800138000"},
		{"+86 138-0013-8000", "13800138000"},
		{"008613800138000", "13800138000"},
		{"8613800138000", "13800138000"},
		{"sip:+8613800138000@10.0.0.1", "13800138000"},
		{"023-63862437", "2363862437"},
		{"+86 23 6386 2437", "2363862437"},
		{"63862437", "2363862437"},
		{"", ""},
	} {
		if got := cases.NormaliseCaller(tc.in, "23"); got != tc.want {
			t.Errorf("NormaliseCaller(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	p := testProtector(t)
	if p.CallerHash("+86 138 0013 8000") != p.CallerHash("13800138000") || p.CallerHash("13800138000") == p.CallerHash("13800138001") {
		t.Error("hash does not follow the normalised number")
	}
	if h := p.CallerHash("13800138000"); len(h) != 64 || strings.Contains(h, "8000") {
		t.Errorf("hash %q", h)
	}
	if got := cases.MaskCaller("+86 138 0013 8000"); got != "138****8000" {
		t.Errorf("MaskCaller = %q", got)
	}
}

func TestLoadProtectorGeneratesKeys(t *testing.T) {
	t.Setenv(cases.EnvKeys, "")
	dir := filepath.Join(t.TempDir(), "keys")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := cases.LoadProtector(dir, false, log); err == nil {
		t.Fatal("no keys and no generation: want an error")
	}
	p1, err := cases.LoadProtector(dir, true, log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "generated new data keys") {
		t.Errorf("generation not logged: %s", logs.String())
	}
	for _, f := range []string{cases.KeyFileName, cases.HashKeyFileName} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, st.Mode(), err)
		}
	}
	// Loaded again: the same keys.
	logs.Reset()
	p2, err := cases.LoadProtector(dir, true, log)
	if err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Errorf("second load logged %q", logs.String())
	}
	s, _ := p1.Keys.Seal([]byte("13800138000"), "x")
	if got, err := p2.Keys.Open(s, "x"); err != nil || string(got) != "13800138000" {
		t.Errorf("reloaded keys do not open: %v", err)
	}
	if p1.CallerHash("13800138000") != p2.CallerHash("13800138000") {
		t.Error("reloaded hash key differs")
	}
	// Rotation by appending a key line.
	f, _ := os.OpenFile(filepath.Join(dir, cases.KeyFileName), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("k2026 " + base64.StdEncoding.EncodeToString(key(9)) + "\n")
	f.Close()
	p3, err := cases.LoadProtector(dir, true, log)
	if err != nil {
		t.Fatal(err)
	}
	if p3.Keys.Current() != "k2026" {
		t.Errorf("current key %q after appending k2026", p3.Keys.Current())
	}
	if got, err := p3.Keys.Open(s, "x"); err != nil || string(got) != "13800138000" {
		t.Errorf("rotated ring does not open old values: %v", err)
	}
}

func TestLoadProtectorFromEnv(t *testing.T) {
	t.Setenv(cases.EnvKeys, "a "+base64.StdEncoding.EncodeToString(key(1))+";b "+base64.StdEncoding.EncodeToString(key(2)))
	t.Setenv(cases.EnvHashKey, base64.StdEncoding.EncodeToString(key(3)))
	dir := filepath.Join(t.TempDir(), "keys")
	p, err := cases.LoadProtector(dir, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Keys.Current() != "b" {
		t.Errorf("current %q", p.Keys.Current())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Error("keys from env, yet files were generated")
	}
	t.Setenv(cases.EnvHashKey, base64.StdEncoding.EncodeToString(key(3)[:8]))
	if _, err := cases.LoadProtector(dir, true, nil); err == nil {
		t.Error("short hash key accepted")
	}
}
