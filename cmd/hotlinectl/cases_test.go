package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/flows"
	"github.com/cq12345/hotline/flows/flowstest"
)

func TestCasesCommands(t *testing.T) {
	ctx := context.Background()
	env := flowstest.Env(t)
	db := flowstest.Open(t, filepath.Join(t.TempDir(), "cli.db"))
	fs, err := flows.NewStore(ctx, db, flows.LoaderFor(env).Checker())
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	key, hk := make([]byte, 32), make([]byte, 32)
	rand.Read(key)
	rand.Read(hk)
	kr, _ := cases.NewKeyRing("k1", map[string][]byte{"k1": key})
	prot, err := cases.NewProtector(kr, hk)
	if err != nil {
		t.Fatal(err)
	}
	store, err := cases.OpenSQL(ctx, db, cases.SQLConfig{Protector: prot})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Flows: fs, Tokens: tokens, Env: env, Cases: store, Protector: prot}))
	t.Cleanup(srv.Close)
	admin, _, _ := tokens.Create(ctx, "alice", auth.Admin, "test")
	now := time.Now()
	c, err := store.CreateForCall(ctx, cases.NewCall{CallID: "c1", Caller: "13800138000", Dialled: "12345", Plane: "sip", Started: now, Answered: now})
	if err != nil {
		t.Fatal(err)
	}
	f := &cliFixture{url: srv.URL, admin: admin, env: map[string]string{"HOTLINE_PASSWORD": "a long enough password"}}

	steps := []struct {
		args     []string
		code     int
		out, not []string
	}{
		{[]string{"cases", "list"}, 0, []string{c.Number, "138****8000", "opened"}, []string{"13800138000"}},
		{[]string{"--json", "cases", "list", "--caller", "13800138000"}, 0, []string{`"number": "` + c.Number}, []string{"13800138000"}},
		{[]string{"cases", "list", "--caller", "13900139000"}, 0, nil, []string{c.Number}},
		{[]string{"cases", "show", c.Number}, 0, []string{"138****8000", "status    opened"}, []string{"13800138000"}},
		{[]string{"cases", "show", c.Number, "--reveal", "caller", "--reason", "callback"}, 0, []string{"13800138000", "audited"}, nil},
		{[]string{"cases", "note", c.Number, "住址: 解放碑"}, 0, []string{"note added to " + c.Number}, nil},
		{[]string{"cases", "show", c.Number}, 0, []string{"1 notes (sealed"}, []string{"解放碑"}},
		{[]string{"cases", "status", c.Number, "in_progress"}, 0, []string{"is now in_progress"}, nil},
		{[]string{"cases", "status", c.Number, "opened"}, 1, nil, nil},
		{[]string{"accounts", "add", "wang", "--role", "agent", "--password"}, 0, []string{"account wang (agent) added"}, nil},
		{[]string{"cases", "assign", c.Number, "--agent", "wang", "--unit", "渝中区"}, 0, []string{"agent wang"}, nil},
		{[]string{"cases", "history", c.Number}, 0, []string{c.Number}, nil},
		{[]string{"audit"}, 0, []string{"alice", "caller", "callback"}, nil},
		{[]string{"accounts", "list"}, 0, []string{"wang", "agent", "yes"}, nil},
		{[]string{"report", "monthly", "--month", now.In(cases.Shanghai()).Format("2006-01"), "--format", "csv"}, 0, []string{"month,kind,group"}, nil},
	}
	for _, st := range steps {
		code, out, errOut := f.adminRun(t, st.args...)
		if code != st.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", st.args, code, st.code, out, errOut)
		}
		for _, s := range st.out {
			if !strings.Contains(out, s) {
				t.Errorf("%v: output lacks %q:\n%s", st.args, s, out)
			}
		}
		for _, s := range st.not {
			if strings.Contains(out, s) {
				t.Errorf("%v: output has %q:\n%s", st.args, s, out)
			}
		}
	}

	// login --user: the agent's token sees only the cases routed to them.
	code, out, errOut := f.run(t, "--server", srv.URL, "--json", "login", "--user", "wang")
	if code != 0 {
		t.Fatalf("login: %d %s %s", code, out, errOut)
	}
	var tok api.NewToken
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Role != auth.Agent {
		t.Fatalf("login answer %s: %v", out, err)
	}
	code, out, _ = f.run(t, "--server", srv.URL, "--token", tok.Secret, "cases", "show", c.Number, "--reveal", "caller", "--reason", "callback")
	if code != 0 || !strings.Contains(out, "13800138000") {
		t.Errorf("agent reveals their case: %d %s", code, out)
	}
	code, _, _ = f.run(t, "--server", srv.URL, "--token", tok.Secret, "audit")
	if code == 0 {
		t.Error("an agent read the audit trail")
	}
	if code, _, _ = f.adminRun(t, "accounts", "disable", "wang"); code != 0 {
		t.Error("disable")
	}
	if code, _, _ = f.run(t, "--server", srv.URL, "--token", tok.Secret, "cases", "list"); code == 0 {
		t.Error("a disabled account's token still works")
	}
}
