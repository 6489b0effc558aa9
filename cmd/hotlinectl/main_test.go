package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"net/http/httptest"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/flows"
	"github.com/cq12345/hotline/flows/flowstest"
)

type cliFixture struct {
	url    string
	admin  string
	reader string
	dir    string
	env    map[string]string
}

func newCLIFixture(t *testing.T) *cliFixture {
	t.Helper()
	ctx := context.Background()
	env := flowstest.Env(t)
	db := flowstest.Open(t, filepath.Join(t.TempDir(), "cli.db"))
	store, err := flows.NewStore(ctx, db, flows.LoaderFor(env).Checker())
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	admin, _, _ := tokens.Create(ctx, "alice", auth.Admin, "test")
	reader, _, _ := tokens.Create(ctx, "rita", auth.Auditor, "test")
	srv := httptest.NewServer(api.New(api.Config{Flows: store, Tokens: tokens, Env: env}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	for name, src := range map[string]string{"small.yaml": flowstest.SmallFlow, "v2.yaml": flowstest.SmallFlowV2, "broken.yaml": flowstest.BrokenFlow} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &cliFixture{url: srv.URL, admin: admin, reader: reader, dir: dir, env: map[string]string{}}
}

// lineOf returns the 1-based line of src that contains s.
func lineOf(src, s string) int {
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	return 0
}

func (f *cliFixture) file(name string) string { return filepath.Join(f.dir, name) }

// run runs hotlinectl with args and returns its exit code and outputs.
func (f *cliFixture) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) string { return f.env[k] })
	return code, out.String(), errb.String()
}

// admin runs a command as the admin against the test server.
func (f *cliFixture) adminRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return f.run(t, append([]string{"--server", f.url, "--token", f.admin}, args...)...)
}

func TestFlowsCommands(t *testing.T) {
	f := newCLIFixture(t)
	steps := []struct {
		name     string
		args     []string
		code     int
		out, err []string // substrings expected in stdout / stderr
	}{
		{"put v1", []string{"flows", "put", f.file("small.yaml"), "--id", "small", "-m", "first"}, 0, []string{"saved small v1 as a draft", "valid; publish it"}, nil},
		{"publish v1", []string{"flows", "publish", "small"}, 0, []string{"small v1 is published"}, nil},
		{"put broken", []string{"flows", "put", f.file("broken.yaml"), "--id", "small"}, 0, []string{"saved small v2 as a draft", "invalid and cannot be published", fmt.Sprintf("line %d: nodes.greet.next", lineOf(flowstest.BrokenFlow, "next: nowhere")), "nowhere"}, nil},
		{"publish broken", []string{"flows", "publish", "small", "--version", "2"}, 1, nil, []string{"small v2 is invalid", "no-such-queue", "no-such-prompt"}},
		{"validate file on the server", []string{"flows", "validate", f.file("broken.yaml")}, 1, []string{"invalid, 4 problems", fmt.Sprintf("line %d: nodes.agent.queue", lineOf(flowstest.BrokenFlow, "queue: no-such-queue"))}, nil},
		{"validate stored", []string{"flows", "validate", "--id", "small", "--version", "1"}, 0, []string{"small v1: valid"}, nil},
		{"put v3 (id from the file's name)", []string{"flows", "put", f.file("v2.yaml")}, 0, []string{"saved small v3"}, nil},
		{"publish v3", []string{"flows", "publish", "small", "-v", "3"}, 0, []string{"small v3 is published"}, nil},
		{"list", []string{"flows", "list"}, 0, []string{"ID", "small", "v3", "alice"}, nil},
		{"diff", []string{"flows", "diff", "small", "--from", "1", "--to", "3"}, 0, []string{"--- small v1", "+++ small v3", "-      \"4\": to-12315", "+      \"4\": agent"}, nil},
		{"rollback", []string{"flows", "rollback", "small"}, 0, []string{"small rolled back to v1"}, nil},
		{"get", []string{"flows", "get", "small"}, 0, []string{"name: small", "\"4\": to-12315"}, []string{"# small v1 (published) by alice"}},
		{"history", []string{"flows", "history", "small"}, 0, []string{"alice", "draft", "publish", "v1 -> v3", "rollback", "v3 -> v1"}, nil},
		{"simulate", []string{"flows", "simulate", "--id", "small", "--caller", "13800138000", "--at", "2026-10-01T10:00+08:00", "--digits", "4"}, 0,
			[]string{"caller 138****8000", "2026-10-01 10:00 Thu", "plays zh-CN/greeting", "keys 4", "final: transfer 12315"}, nil},
		{"simulate a file", []string{"flows", "simulate", f.file("v2.yaml"), "--digits", "4", "--lang", "en"}, 0, []string{"plays en/main-menu", "final: queue general"}, nil},
		{"simulate a broken file", []string{"flows", "simulate", f.file("broken.yaml")}, 1, nil, []string{"invalid", "nowhere"}},
		{"unknown flow", []string{"flows", "get", "nope"}, 1, nil, []string{"not found", "404"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			code, out, errs := f.adminRun(t, s.args...)
			if code != s.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, s.code, out, errs)
			}
			for _, w := range s.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range s.err {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if strings.Contains(out+errs, "13800138000") {
				t.Errorf("unmasked number in the output")
			}
		})
	}
}

func TestJSONOutput(t *testing.T) {
	f := newCLIFixture(t)
	if code, _, errs := f.adminRun(t, "flows", "put", f.file("small.yaml"), "--id", "small"); code != 0 {
		t.Fatal(errs)
	}
	f.adminRun(t, "flows", "publish", "small")
	code, out, _ := f.adminRun(t, "--json", "flows", "list")
	var l api.FlowList
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Flows) != 1 || l.Flows[0].ActiveVersion != 1 {
		t.Fatalf("list --json: %d %s", code, out)
	}
	code, out, _ = f.adminRun(t, "--json", "flows", "simulate", "--id", "small", "--caller", "13800138000", "--at", "2026-10-01T10:00+08:00", "--digits", "1,0")
	var sim struct {
		Caller string
		Final  struct{ Kind, ID string }
		Steps  []struct{ Node, Digits, Branch string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &sim) != nil {
		t.Fatalf("simulate --json: %d %s", code, out)
	}
	// 1 is not an option of the small flow: invalid, then 0 for an agent.
	if sim.Caller != "138****8000" || sim.Final.Kind != "queue" || sim.Final.ID != "general" || len(sim.Steps) < 2 || sim.Steps[1].Digits != "10" {
		t.Fatalf("simulate --json: %s", out)
	}
	code, out, _ = f.adminRun(t, "--json", "flows", "validate", f.file("broken.yaml"))
	var v api.Validation
	if code != 1 || json.Unmarshal([]byte(out), &v) != nil || v.Valid || len(v.Problems) != 4 {
		t.Fatalf("validate --json: %d %s", code, out)
	}
	code, out, _ = f.adminRun(t, "--json", "flows", "publish", "small", "--version", "9")
	if code != 1 {
		t.Fatalf("publish of a missing version: %d %s", code, out)
	}
}

func TestOfflineValidate(t *testing.T) {
	f := newCLIFixture(t)
	// No server, no token: --offline needs neither.
	code, out, errs := f.run(t, "--server", "http://127.0.0.1:1", "flows", "validate", "--offline", f.file("small.yaml"))
	if code != 0 || !strings.Contains(out, "valid") || !strings.Contains(out, "offline") {
		t.Fatalf("offline valid: %d %s %s", code, out, errs)
	}
	// No server answering and no --offline: validated here, and said so.
	code, out, errs = f.run(t, "--server", "http://127.0.0.1:1", "--token", "hl_x", "flows", "validate", f.file("small.yaml"))
	if code != 0 || !strings.Contains(out, "offline") || !strings.Contains(errs, "validating offline") {
		t.Fatalf("fallback: %d %s %s", code, out, errs)
	}
	// A server that answers decides (here: the token is refused).
	if code, _, errs := f.run(t, "--server", f.url, "--token", "hl_x", "flows", "validate", f.file("small.yaml")); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("refused token: %d %s", code, errs)
	}
	code, out, _ = f.run(t, "flows", "validate", "--offline", f.file("broken.yaml"))
	// Offline checks the graph and prompts; the queue is the server's to check.
	if code != 1 || !strings.Contains(out, "nowhere") || !strings.Contains(out, "no-such-prompt") || strings.Contains(out, "no-such-queue") {
		t.Fatalf("offline broken: %d %s", code, out)
	}
}

func TestTokenResolution(t *testing.T) {
	f := newCLIFixture(t)
	tokenFile := filepath.Join(f.dir, "admin.token")
	os.WriteFile(tokenFile, []byte(f.admin+"\n"), 0o600)
	base := []string{"--server", f.url, "--token-file", tokenFile}

	// From the file.
	if code, _, errs := f.run(t, append(base, "flows", "put", f.file("small.yaml"), "--id", "small")...); code != 0 {
		t.Fatalf("token from file: %s", errs)
	}
	// The environment beats the file: a reader token cannot publish.
	f.env["HOTLINE_TOKEN"] = f.reader
	if code, _, errs := f.run(t, append(base, "flows", "publish", "small")...); code != 1 || !strings.Contains(errs, "admin token") {
		t.Fatalf("token from env: %d %s", code, errs)
	}
	// The flag beats the environment.
	if code, _, errs := f.run(t, append(base, "--token", f.admin, "flows", "publish", "small")...); code != 0 {
		t.Fatalf("token from flag: %s", errs)
	}
	// HOTLINE_SERVER when there is no --server.
	f.env["HOTLINE_SERVER"] = f.url
	if code, out, errs := f.run(t, "flows", "list"); code != 0 || !strings.Contains(out, "small") {
		t.Fatalf("server from env: %d %s %s", code, out, errs)
	}
	// Nothing anywhere.
	f.env = map[string]string{}
	if code, _, errs := f.run(t, "--server", f.url, "--token-file", filepath.Join(f.dir, "missing"), "flows", "list"); code != 1 || !strings.Contains(errs, "no token") {
		t.Fatalf("no token: %d %s", code, errs)
	}
	if code, out, _ := f.run(t, "--help"); code != 0 || !strings.Contains(out, "flows") {
		t.Fatalf("--help: %d %s", code, out)
	}
	if code, _, _ := f.run(t, "flows", "nope"); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
}

func TestTokensCommands(t *testing.T) {
	f := newCLIFixture(t)
	code, secret, errs := f.adminRun(t, "tokens", "create", "sam", "--role", "supervisor")
	secret = strings.TrimSpace(secret)
	if code != 0 || !strings.HasPrefix(secret, "hl_") || !strings.Contains(errs, "shown only now") {
		t.Fatalf("create: %d %q %s", code, secret, errs)
	}
	// The new token reads but cannot write.
	if code, _, _ := f.run(t, "--server", f.url, "--token", secret, "flows", "list"); code != 0 {
		t.Fatal("new token cannot read")
	}
	if code, _, errs := f.run(t, "--server", f.url, "--token", secret, "tokens", "create", "eve", "--role", "admin"); code != 1 || !strings.Contains(errs, "admin token") {
		t.Fatalf("supervisor made a token: %d %s", code, errs)
	}
	code, out, _ := f.adminRun(t, "--json", "tokens", "list")
	var l struct{ Tokens []auth.Token }
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Tokens) != 3 || strings.Contains(out, secret) {
		t.Fatalf("list: %d %s", code, out)
	}
	var id string
	for _, tok := range l.Tokens {
		if tok.Name == "sam" {
			id = tok.ID
		}
	}
	if code, out, errs := f.adminRun(t, "tokens", "revoke", id); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %d %s %s", code, out, errs)
	}
	if code, _, _ := f.run(t, "--server", f.url, "--token", secret, "flows", "list"); code != 1 {
		t.Fatal("revoked token still reads")
	}
	if code, out, _ := f.adminRun(t, "tokens", "list"); code != 0 || !strings.Contains(out, "sam") || !strings.Contains(out, "supervisor") {
		t.Fatalf("list: %s", out)
	}
}
