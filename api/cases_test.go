package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/api/client"
	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/flows"
	"github.com/cq12345/hotline/flows/flowstest"
)

type caseFixture struct {
	url    string
	store  *cases.SQLStore
	tokens *auth.Store
	logs   *bytes.Buffer
	// clients by account: admin "alice", supervisor "sam", agents "wang"
	// and "zhao", auditor "rita".
	as map[string]*client.Client
}

func newCaseFixture(t *testing.T) *caseFixture {
	t.Helper()
	ctx := context.Background()
	env := flowstest.Env(t)
	db := flowstest.Open(t, filepath.Join(t.TempDir(), "api.db"))
	fs, err := flows.NewStore(ctx, db, flows.LoaderFor(env).Checker())
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	key, hashKey := make([]byte, 32), make([]byte, 32)
	rand.Read(key)
	rand.Read(hashKey)
	kr, err := cases.NewKeyRing("k1", map[string][]byte{"k1": key})
	if err != nil {
		t.Fatal(err)
	}
	prot, err := cases.NewProtector(kr, hashKey)
	if err != nil {
		t.Fatal(err)
	}
	store, err := cases.OpenSQL(ctx, db, cases.SQLConfig{Protector: prot})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	h := api.New(api.Config{Flows: fs, Tokens: tokens, Env: env, Cases: store, Protector: prot,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f := &caseFixture{url: srv.URL, store: store, tokens: tokens, logs: logs, as: map[string]*client.Client{}}
	for name, role := range map[string]auth.Role{"alice": auth.Admin, "sam": auth.Supervisor, "wang": auth.Agent,
		"zhao": auth.Agent, "rita": auth.Auditor} {
		secret, _, err := tokens.Create(ctx, name, role, "test")
		if err != nil {
			t.Fatal(err)
		}
		f.as[name] = client.New(srv.URL, secret)
	}
	return f
}

func (f *caseFixture) newCase(t *testing.T, callID, caller string) *cases.Case {
	t.Helper()
	now := time.Now()
	c, err := f.store.CreateForCall(context.Background(), cases.NewCall{CallID: callID, Caller: caller, Dialled: "12345",
		Plane: "sip", Started: now, Answered: now, Language: "zh-CN"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func statusOf(err error) int {
	var se *client.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

func TestCasesAPIRoles(t *testing.T) {
	ctx := context.Background()
	f := newCaseFixture(t)
	const caller = "13800138000"
	c1 := f.newCase(t, "call-1", caller)
	c2 := f.newCase(t, "call-2", caller)
	f.newCase(t, "call-3", "13900139000")

	// A supervisor routes case 1 to agent wang.
	if _, err := f.as["sam"].Assign(ctx, c1.Number, api.AssignRequest{Agent: "wang", Unit: "渝中区"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.as["sam"].Assign(ctx, c2.Number, api.AssignRequest{Agent: "rita"}); statusOf(err) != 400 {
		t.Errorf("assign to an auditor: %v, want 400", err)
	}
	if _, err := f.as["wang"].Assign(ctx, c2.Number, api.AssignRequest{Agent: "wang"}); statusOf(err) != 403 {
		t.Errorf("an agent assigns: %v, want 403", err)
	}

	// Lists are masked for everyone; agents see only their cases.
	for name, want := range map[string]int{"alice": 3, "sam": 3, "rita": 3, "wang": 1, "zhao": 0} {
		l, err := f.as[name].Cases(ctx, api.CaseSearch{})
		if err != nil || len(l) != want {
			t.Errorf("%s lists %d cases (%v), want %d", name, len(l), err, want)
		}
		b, _ := json.Marshal(l)
		if strings.Contains(string(b), caller) || strings.Contains(string(b), "13900139000") {
			t.Errorf("%s's list carries a full number: %s", name, b)
		}
	}
	// Search by caller number (keyed hash), by unit, by status.
	if l, err := f.as["sam"].Cases(ctx, api.CaseSearch{Caller: "+86 138 0013 8000"}); err != nil || len(l) != 2 {
		t.Errorf("by caller: %d cases (%v), want 2", len(l), err)
	}
	if l, err := f.as["sam"].Cases(ctx, api.CaseSearch{Unit: "渝中区"}); err != nil || len(l) != 1 || l[0].ID != c1.ID {
		t.Errorf("by unit: %v (%v)", l, err)
	}
	if l, err := f.as["sam"].Cases(ctx, api.CaseSearch{Status: cases.StatusRouted}); err != nil || len(l) != 1 {
		t.Errorf("by status: %d (%v)", len(l), err)
	}
	if l, err := f.as["sam"].Cases(ctx, api.CaseSearch{From: "2000-01-01", To: "2000-01-31"}); err != nil || len(l) != 0 {
		t.Errorf("by date: %d (%v)", len(l), err)
	}

	// An agent cannot read another agent's case, nor one routed to nobody.
	if _, err := f.as["zhao"].Case(ctx, c1.Number, nil, ""); statusOf(err) != 403 {
		t.Errorf("zhao reads wang's case: %v, want 403", err)
	}
	if _, err := f.as["zhao"].Case(ctx, c1.Number, []string{"caller"}, "callback"); statusOf(err) != 403 {
		t.Errorf("zhao reveals wang's caller: %v, want 403", err)
	}
	if _, err := f.as["wang"].Case(ctx, c2.Number, nil, ""); statusOf(err) != 403 {
		t.Errorf("wang reads an unrouted case: %v, want 403", err)
	}
	if _, err := f.as["zhao"].AddNote(ctx, c1.Number, "x"); statusOf(err) != 403 {
		t.Errorf("zhao writes a note on wang's case: %v", err)
	}
	// The auditor never gets a full number.
	if _, err := f.as["rita"].Case(ctx, c1.Number, []string{"caller"}, "audit"); statusOf(err) != 403 {
		t.Errorf("auditor reveals: %v, want 403", err)
	}
	// A reveal needs a reason.
	if _, err := f.as["sam"].Case(ctx, c1.Number, []string{"caller"}, ""); statusOf(err) != 400 {
		t.Errorf("reveal without a reason: %v, want 400", err)
	}

	audit := func(field string) int {
		t.Helper()
		es, err := f.as["rita"].Audit(ctx, client.AuditQuery{Case: c1.Number})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range es {
			if e.Field == field {
				n++
			}
		}
		return n
	}

	// The agent of the case sees it masked, and the full number on request.
	v, err := f.as["wang"].Case(ctx, c1.Number, nil, "")
	if err != nil || v.CallerMasked != "138****8000" || v.CallerFull != "" {
		t.Fatalf("wang shows: %+v %v", v, err)
	}
	if n := audit("case"); n != 1 {
		t.Errorf("%d 'case' audit entries after one show, want 1", n)
	}
	for i := 1; i <= 2; i++ {
		v, err = f.as["wang"].Case(ctx, c1.Number, []string{"caller"}, "call the citizen back")
		if err != nil || v.CallerFull != caller {
			t.Fatalf("wang reveals: %+v %v", v, err)
		}
		if n := audit("caller"); n != i {
			t.Errorf("%d full-number reads audited after %d reads", n, i)
		}
	}
	es, _ := f.as["alice"].Audit(ctx, client.AuditQuery{Account: "wang"})
	if len(es) == 0 || es[len(es)-1].Role != "agent" || es[len(es)-1].Reason != "call the citizen back" || es[len(es)-1].CaseID != c1.ID {
		t.Errorf("audit entry: %+v", es)
	}
	if _, err := f.as["wang"].Audit(ctx, client.AuditQuery{}); statusOf(err) != 403 {
		t.Errorf("an agent reads the audit trail: %v", err)
	}

	// Notes are sealed: shown only on request, audited.
	const note = "家住渝中区解放碑, 腿脚不便"
	if _, err := f.as["wang"].AddNote(ctx, c1.Number, note); err != nil {
		t.Fatal(err)
	}
	v, err = f.as["sam"].Case(ctx, c1.Number, nil, "")
	if err != nil || v.NoteCount != 1 || len(v.Notes) != 0 {
		t.Fatalf("show with a note: %+v %v", v, err)
	}
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), "解放碑") {
		t.Errorf("a note shows without reveal: %s", b)
	}
	v, err = f.as["sam"].Case(ctx, c1.Number, []string{"notes"}, "review")
	if err != nil || len(v.Notes) != 1 || v.Notes[0].Text != note || v.Notes[0].Account != "wang" {
		t.Fatalf("notes revealed: %+v %v", v, err)
	}
	if n := audit("notes"); n != 1 {
		t.Errorf("%d notes reads audited, want 1", n)
	}

	// Status: forward moves only.
	if cs, err := f.as["wang"].SetStatus(ctx, c1.Number, api.StatusRequest{Status: cases.StatusInProgress}); err != nil || cs.Status != cases.StatusInProgress {
		t.Errorf("status: %+v %v", cs, err)
	}
	if _, err := f.as["wang"].SetStatus(ctx, c1.Number, api.StatusRequest{Status: cases.StatusOpened}); statusOf(err) != 409 {
		t.Errorf("backwards: %v, want 409", err)
	}
	if _, err := f.as["rita"].SetStatus(ctx, c1.Number, api.StatusRequest{Status: cases.StatusClosed}); statusOf(err) != 403 {
		t.Errorf("auditor changes status: %v, want 403", err)
	}

	// History: the caller's cases; for the agent only theirs.
	if l, err := f.as["sam"].CaseHistory(ctx, c1.Number); err != nil || len(l) != 2 {
		t.Errorf("history: %d (%v), want 2", len(l), err)
	}
	if l, err := f.as["wang"].CaseHistory(ctx, c1.Number); err != nil || len(l) != 1 {
		t.Errorf("agent's history: %d (%v), want 1", len(l), err)
	}

	// The audit trail cannot be edited or deleted through the API.
	for _, m := range []string{http.MethodDelete, http.MethodPut, http.MethodPatch, http.MethodPost} {
		req, _ := http.NewRequest(m, f.url+"/api/v1/audit", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+mustToken(t, f, "alice"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%s /api/v1/audit: %d", m, resp.StatusCode)
		}
	}
	if n := audit("caller"); n != 2 {
		t.Errorf("audit changed: %d caller reads", n)
	}

	// The monthly report renders in each format.
	month := time.Now().In(cases.Shanghai()).Format("2006-01")
	for _, format := range []string{"json", "csv", "html"} {
		b, err := f.as["sam"].MonthlyReport(ctx, month, format)
		if err != nil || len(b) == 0 {
			t.Errorf("report %s: %v", format, err)
		}
		if format == "json" && !strings.Contains(string(b), `"calls": 3`) && !strings.Contains(string(b), `"calls":3`) {
			t.Errorf("json report without the 3 calls: %.300s", b)
		}
	}
	if _, err := f.as["wang"].MonthlyReport(ctx, month, "json"); statusOf(err) != 403 {
		t.Errorf("agent reads the report: %v", err)
	}

	if strings.Contains(f.logs.String(), caller) || strings.Contains(f.logs.String(), "解放碑") {
		t.Errorf("logs carry personal data:\n%s", f.logs.String())
	}
}

// mustToken creates another token of an account (raw requests).
func mustToken(t *testing.T, f *caseFixture, name string) string {
	t.Helper()
	secret, _, err := f.tokens.Create(context.Background(), name, "", "test")
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func TestAccountsAPI(t *testing.T) {
	ctx := context.Background()
	f := newCaseFixture(t)
	admin := f.as["alice"]
	if _, err := admin.AddAccount(ctx, api.AccountRequest{Name: "liu", Role: auth.Supervisor, Password: "a long enough password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.as["sam"].AddAccount(ctx, api.AccountRequest{Name: "x", Role: auth.Admin}); statusOf(err) != 403 {
		t.Errorf("a supervisor adds an account: %v", err)
	}
	anon := client.New(f.url, "")
	if _, err := anon.Login(ctx, "liu", "wrong password"); statusOf(err) != 401 {
		t.Errorf("wrong password: %v", err)
	}
	tok, err := anon.Login(ctx, "liu", "a long enough password")
	if err != nil || tok.Name != "liu" || tok.Role != auth.Supervisor || tok.Secret == "" {
		t.Fatalf("login: %+v %v", tok, err)
	}
	liu := client.New(f.url, tok.Secret)
	if _, err := liu.Cases(ctx, api.CaseSearch{}); err != nil {
		t.Errorf("liu lists: %v", err)
	}
	if _, err := admin.DisableAccount(ctx, "liu"); err != nil {
		t.Fatal(err)
	}
	if _, err := liu.Cases(ctx, api.CaseSearch{}); statusOf(err) != 401 {
		t.Errorf("a disabled account's token: %v, want 401", err)
	}
	l, err := admin.Accounts(ctx)
	if err != nil || len(l) != 6 {
		t.Errorf("accounts: %d %v", len(l), err)
	}
	if strings.Contains(f.logs.String(), "a long enough password") {
		t.Error("a password in the logs")
	}
}
