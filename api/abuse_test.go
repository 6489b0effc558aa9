package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cq12345/hotline/abuse"
	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/api/client"
	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/flows"
	"github.com/cq12345/hotline/flows/flowstest"
)

// TestAbuseAPI: an agent dissuades and flags a call through the API; the
// flag restricts the caller at once; roles decide who sees and reviews
// what; notes and the evidence pack need a reason and are audited.
func TestAbuseAPI(t *testing.T) {
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
	kr, _ := cases.NewKeyRing("k1", map[string][]byte{"k1": key})
	prot, _ := cases.NewProtector(kr, hashKey)
	store, err := cases.OpenSQL(ctx, db, cases.SQLConfig{Protector: prot})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := abuse.Open(ctx, abuse.Config{DB: db, Hash: prot.CallerHash, Audit: store, Sealer: kr, SyncEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	logs := &bytes.Buffer{}
	srv := httptest.NewServer(api.New(api.Config{Flows: fs, Tokens: tokens, Env: env, Cases: store, Protector: prot, Abuse: svc,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}))
	defer srv.Close()
	as := map[string]*client.Client{}
	for name, role := range map[string]auth.Role{"sam": auth.Supervisor, "wang": auth.Agent, "rita": auth.Auditor} {
		secret, _, err := tokens.Create(ctx, name, role, "test")
		if err != nil {
			t.Fatal(err)
		}
		as[name] = client.New(srv.URL, secret)
	}
	status := func(err error) int {
		var se *client.StatusError
		if errors.As(err, &se) {
			return se.Status
		}
		return 0
	}

	svc.Check(ctx, abuse.CallStart{CallID: "call-1", Caller: "13812345678", At: time.Now()})
	if r, err := as["wang"].AbuseFlag(ctx, "call-1", "warned", "asked to stop"); err != nil || r.Decision != nil {
		t.Fatalf("warned: %v %+v", err, r)
	}
	if _, err := as["rita"].AbuseFlag(ctx, "call-1", "insult", "x"); status(err) != http.StatusForbidden {
		t.Fatalf("auditor flags: %v", err)
	}
	if _, err := as["wang"].AbuseFlag(ctx, "call-1", "rude", "x"); status(err) != http.StatusBadRequest {
		t.Fatalf("unknown kind: %v", err)
	}
	r, err := as["wang"].AbuseFlag(ctx, "call-1", "insult", "insulted me after the warning")
	if err != nil || r.Decision == nil || r.Decision.Measure != abuse.Restricted || r.Decision.Caller != "138****5678" {
		t.Fatalf("insult: %v %+v", err, r)
	}
	id := r.Decision.ID
	if _, err := as["wang"].AbuseDecisions(ctx, true, "", 0); status(err) != http.StatusForbidden {
		t.Fatalf("agent lists: %v", err)
	}
	l, err := as["rita"].AbuseDecisions(ctx, true, "", 0)
	if err != nil || len(l) != 1 || l[0].ID != id {
		t.Fatalf("queue: %v %+v", err, l)
	}
	if l, err := as["sam"].AbuseSearch(ctx, "+86 138 1234 5678", "", 0); err != nil || len(l) != 1 {
		t.Fatalf("search: %v %+v", err, l)
	}
	v, err := as["rita"].AbuseShow(ctx, id, "")
	if err != nil || !strings.Contains(v.ExplanationZH, "劝阻") || !strings.Contains(v.ExplanationEN, "dissuaded") || v.Evidence != nil {
		t.Fatalf("show: %v %+v", err, v)
	}
	if _, err := as["rita"].AbuseShow(ctx, id, "curious"); status(err) != http.StatusForbidden {
		t.Fatalf("auditor reads notes: %v", err)
	}
	v, err = as["sam"].AbuseShow(ctx, id, "review")
	if err != nil || v.Evidence == nil || len(v.Evidence.Flags) != 1 || v.Evidence.Flags[0].Note != "insulted me after the warning" {
		t.Fatalf("show with notes: %v %+v", err, v.Evidence)
	}
	csv, err := as["sam"].AbuseEvidence(ctx, id, "csv", "referral")
	if err != nil || !strings.Contains(string(csv), "flag,") || !strings.Contains(string(csv), "insulted me") {
		t.Fatalf("evidence: %v\n%s", err, csv)
	}
	if _, err := as["wang"].AbuseReview(ctx, id, abuse.ReviewRequest{Action: "lift", Reason: "x"}); status(err) != http.StatusForbidden {
		t.Fatalf("agent reviews: %v", err)
	}
	d, err := as["sam"].AbuseReview(ctx, id, abuse.ReviewRequest{Action: "shorten", Duration: time.Hour, Reason: "first time"})
	if err != nil || time.Until(d.Expires) > time.Hour {
		t.Fatalf("shorten: %v %+v", err, d)
	}
	audit, err := store.ListAudit(ctx, cases.AuditFilter{Account: "sam"})
	if err != nil || len(audit) != 3 { // show with notes, evidence, shorten
		t.Fatalf("audit: %v %+v", err, audit)
	}
	val, err := as["rita"].AbusePolicyValidate(ctx, []byte("version: 3\n"))
	if err != nil || val.Valid || len(val.Problems) < 3 {
		t.Fatalf("validate: %v %+v", err, val)
	}
	if strings.Contains(logs.String(), "13812345678") {
		t.Errorf("the API logged the full number:\n%s", logs.String())
	}
}
