package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/flows"
	"github.com/cq12345/hotline/flows/flowstest"
)

type fixture struct {
	srv    *httptest.Server
	store  *flows.Store
	tokens *auth.Store
	admin  string // token secrets
	reader string
	logs   *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	env := flowstest.Env(t)
	db := flowstest.Open(t, filepath.Join(t.TempDir(), "api.db"))
	store, err := flows.NewStore(ctx, db, flows.LoaderFor(env).Checker())
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := tokens.Create(ctx, "alice", auth.Admin, "test")
	if err != nil {
		t.Fatal(err)
	}
	reader, _, err := tokens.Create(ctx, "rita", auth.Auditor, "test")
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	h := New(Config{Flows: store, Tokens: tokens, Env: env, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, store: store, tokens: tokens, admin: admin, reader: reader, logs: logs}
}

// call sends a request and decodes the JSON answer into out (if not nil).
func (f *fixture) call(t *testing.T, method, path, token, ctype string, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s %s: content type %q: %s", method, path, resp.Header.Get("Content-Type"), b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func jsonBody(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, method, path, token, body string
		want                            int
		code                            string
	}{
		{"no token", "GET", "/api/v1/flows", "", "", 401, CodeUnauthorized},
		{"unknown token", "GET", "/api/v1/flows", "hl_nope", "", 401, CodeUnauthorized},
		{"reader reads", "GET", "/api/v1/flows", f.reader, "", 200, ""},
		{"reader validates", "POST", "/api/v1/flows/validate", f.reader, `{"source":"x"}`, 200, ""},
		{"reader cannot save", "POST", "/api/v1/flows/small/versions", f.reader, `{"source":"x"}`, 403, CodeForbidden},
		{"reader cannot save (put)", "PUT", "/api/v1/flows/small/draft", f.reader, `{"source":"x"}`, 403, CodeForbidden},
		{"reader cannot publish", "POST", "/api/v1/flows/small/publish", f.reader, `{}`, 403, CodeForbidden},
		{"reader cannot roll back", "POST", "/api/v1/flows/small/rollback", f.reader, `{}`, 403, CodeForbidden},
		{"admin: unknown flow", "POST", "/api/v1/flows/small/publish", f.admin, `{}`, 404, CodeNotFound},
		{"unknown endpoint", "GET", "/api/v1/nope", f.admin, "", 404, CodeNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e Error
			got := f.call(t, c.method, c.path, c.token, "application/json", c.body, &e)
			if got != c.want || e.Code != c.code {
				t.Fatalf("status %d code %q, want %d %q (%+v)", got, e.Code, c.want, c.code, e)
			}
		})
	}
	// A revoked token stops working.
	tok, err := f.tokens.Verify(context.Background(), f.reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.tokens.Revoke(context.Background(), tok.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.call(t, "GET", "/api/v1/flows", f.reader, "", "", nil); got != 401 {
		t.Fatalf("revoked token: %d", got)
	}
}

func TestFlowLifecycle(t *testing.T) {
	f := newFixture(t)
	var val Validation
	// Draft v1 as JSON, publish it.
	if got := f.call(t, "POST", "/api/v1/flows/small/versions", f.admin, "application/json",
		jsonBody(t, SourceRequest{Source: flowstest.SmallFlow, Comment: "first"}), &val); got != 201 || !val.Valid || val.Version.Version != 1 {
		t.Fatalf("draft v1: %d %+v", got, val)
	}
	var v flows.Version
	if got := f.call(t, "POST", "/api/v1/flows/small/publish", f.admin, "application/json", `{"version":1}`, &v); got != 200 || v.State != flows.Published {
		t.Fatalf("publish v1: %d %+v", got, v)
	}
	// A broken draft (raw YAML) is saved with its problems, never published.
	val = Validation{}
	if got := f.call(t, "PUT", "/api/v1/flows/small/draft?comment=oops", f.admin, "application/yaml", flowstest.BrokenFlow, &val); got != 201 || val.Valid || val.Version.Version != 2 || len(val.Problems) < 3 {
		t.Fatalf("draft v2: %d %+v", got, val)
	}
	for _, p := range val.Problems {
		if p.Path == "" || p.Line == 0 {
			t.Errorf("problem without path or line: %+v", p)
		}
	}
	var e Error
	if got := f.call(t, "POST", "/api/v1/flows/small/publish", f.admin, "application/json", `{"version":2}`, &e); got != 422 || e.Code != CodeInvalidFlow || e.ID != "small" || e.Version != 2 || len(e.Problems) != len(val.Problems) {
		t.Fatalf("publish broken: %d %+v", got, e)
	}
	var sum FlowList
	if f.call(t, "GET", "/api/v1/flows", f.reader, "", "", &sum); len(sum.Flows) != 1 || sum.Flows[0].ActiveVersion != 1 || sum.Flows[0].LatestVersion != 2 {
		t.Fatalf("list after refused publish: %+v", sum)
	}
	// Validate: a source, and a stored version.
	val = Validation{}
	if got := f.call(t, "POST", "/api/v1/flows/validate", f.reader, "application/yaml", flowstest.BrokenFlow, &val); got != 200 || val.Valid || len(val.Problems) < 3 {
		t.Fatalf("validate source: %d %+v", got, val)
	}
	val = Validation{}
	if got := f.call(t, "POST", "/api/v1/flows/small/validate?version=1", f.reader, "", "", &val); got != 200 || !val.Valid || val.Version.Version != 1 {
		t.Fatalf("validate v1: %d %+v", got, val)
	}
	// v3, published by default as the latest.
	f.call(t, "POST", "/api/v1/flows/small/versions", f.admin, "application/json", jsonBody(t, SourceRequest{Source: flowstest.SmallFlowV2}), nil)
	if got := f.call(t, "POST", "/api/v1/flows/small/publish", f.admin, "", "", &v); got != 200 || v.Version != 3 {
		t.Fatalf("publish latest: %d %+v", got, v)
	}
	// Diff: default is active (v3) against latest (v3): the one before.
	var d Diff
	if got := f.call(t, "GET", "/api/v1/flows/small/diff?from=1&to=3", f.reader, "", "", &d); got != 200 || d.From != 1 || d.To != 3 ||
		!strings.Contains(d.Diff, "-      \"4\": to-12315") || !strings.Contains(d.Diff, "+      \"4\": agent") {
		t.Fatalf("diff: %d %+v", got, d)
	}
	// Rollback to the previous published version (v1).
	if got := f.call(t, "POST", "/api/v1/flows/small/rollback", f.admin, "", "", &v); got != 200 || v.Version != 1 {
		t.Fatalf("rollback: %d %+v", got, v)
	}
	if got := f.call(t, "POST", "/api/v1/flows/small/rollback", f.admin, "application/json", `{"version":2}`, &e); got != 400 || e.Code != CodeBadRequest {
		t.Fatalf("rollback to a draft: %d %+v", got, e)
	}
	v = flows.Version{}
	if got := f.call(t, "GET", "/api/v1/flows/small", f.reader, "", "", &v); got != 200 || v.Version != 1 || v.Source != flowstest.SmallFlow {
		t.Fatalf("get active: %d v%d", got, v.Version)
	}
	if got := f.call(t, "GET", "/api/v1/flows/small?version=2", f.reader, "", "", &v); got != 200 || v.State != flows.Draft || v.Comment != "oops" {
		t.Fatalf("get v2: %d %+v", got, v)
	}
	var vl VersionList
	if f.call(t, "GET", "/api/v1/flows/small/versions", f.reader, "", "", &vl); len(vl.Versions) != 3 || vl.Versions[0].State != flows.Superseded || vl.Versions[2].State != flows.Published {
		t.Fatalf("versions: %+v", vl)
	}
	// History: who and when.
	var h History
	f.call(t, "GET", "/api/v1/flows/small/history", f.reader, "", "", &h)
	var got []string
	for _, e := range h.History {
		if e.At.IsZero() {
			t.Errorf("event without time: %+v", e)
		}
		got = append(got, e.Actor+" "+e.Action)
	}
	want := "alice draft|alice publish|alice draft|alice draft|alice publish|alice rollback"
	if strings.Join(got, "|") != want {
		t.Fatalf("history %q, want %q", strings.Join(got, "|"), want)
	}
	if !strings.Contains(f.logs.String(), "flow published") || strings.Contains(f.logs.String(), f.admin) {
		t.Fatalf("logs:\n%s", f.logs)
	}
}

func TestSimulate(t *testing.T) {
	f := newFixture(t)
	if _, err := f.store.Seed(context.Background(), "small", []byte(flowstest.SmallFlow), "hotlined"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		req       SimulateRequest
		status    int
		final     string
		prompts   int
		wantError string
	}{
		{"stored, key 4", SimulateRequest{ID: "small", Caller: "13800138000", At: "2026-10-01T10:00+08:00", Digits: []string{"4"}}, 200, "transfer 12315", 3, ""},
		{"stored, key 0 in English", SimulateRequest{ID: "small", Version: 1, Caller: "13800138000", Digits: []string{"0"}, Lang: "en"}, 200, "queue general", 3, ""},
		{"source, no input", SimulateRequest{Source: flowstest.SmallFlowV2, Caller: "13800138000", At: "2026-10-10 09:00"}, 200, "queue general", 0, ""},
		{"invalid source", SimulateRequest{Source: flowstest.BrokenFlow}, 422, "", 0, CodeInvalidFlow},
		{"both", SimulateRequest{Source: flowstest.SmallFlow, ID: "small"}, 400, "", 0, CodeBadRequest},
		{"neither", SimulateRequest{}, 400, "", 0, CodeBadRequest},
		{"bad time", SimulateRequest{ID: "small", At: "yesterday"}, 400, "", 0, CodeBadRequest},
		{"unknown flow", SimulateRequest{ID: "nope"}, 404, "", 0, CodeNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var raw json.RawMessage
			got := f.call(t, "POST", "/api/v1/flows/simulate", f.reader, "application/json", jsonBody(t, c.req), &raw)
			if got != c.status {
				t.Fatalf("status %d, want %d: %s", got, c.status, raw)
			}
			if strings.Contains(string(raw), "13800138000") {
				t.Fatalf("unmasked caller number in the answer: %s", raw)
			}
			if c.wantError != "" {
				var e Error
				json.Unmarshal(raw, &e)
				if e.Code != c.wantError || (c.wantError == CodeInvalidFlow && len(e.Problems) < 3) {
					t.Fatalf("error %+v", e)
				}
				return
			}
			var res struct {
				Caller string `json:"caller"`
				Final  struct{ Kind, ID string }
				Steps  []struct{ Node string }
				Prompt []string `json:"prompts"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatal(err)
			}
			if res.Final.Kind+" "+res.Final.ID != c.final {
				t.Fatalf("final %+v, want %s: %s", res.Final, c.final, raw)
			}
			if c.prompts > 0 && len(res.Prompt) != c.prompts {
				t.Fatalf("prompts %v", res.Prompt)
			}
			if c.req.Caller != "" && res.Caller != "138****8000" {
				t.Fatalf("caller %q", res.Caller)
			}
			if c.req.Lang == "en" && !strings.HasPrefix(res.Prompt[0], "en/") {
				t.Fatalf("language: %v", res.Prompt)
			}
		})
	}
}

func TestMaskJSON(t *testing.T) {
	in := `{"a":"call 13800138000 back","n":13800138000,"l":["13800138000"],"m":{"k":"x13800138000"}}`
	out, err := maskJSON([]byte(in), "13800138000")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	d := json.NewDecoder(bytes.NewReader(out))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v["a"] != "call 138****8000 back" || v["n"].(json.Number) != "13800138000" || v["l"].([]any)[0] != "138****8000" || v["m"].(map[string]any)["k"] != "x138****8000" {
		t.Fatalf("%s", out)
	}
	// A short "number" never breaks JSON numbers.
	if out, err := maskJSON([]byte(`{"n":12345678,"s":"5678"}`), "5678"); err != nil || !json.Valid(out) || !strings.Contains(string(out), "12345678") {
		t.Fatalf("%s %v", out, err)
	}
}

func TestParseAt(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"2026-10-01T10:00+08:00", "2026-10-01T02:00:00Z"},
		{"2026-10-01T10:00:30+08:00", "2026-10-01T02:00:30Z"},
		{"2026-10-01T02:00Z", "2026-10-01T02:00:00Z"},
		{"2026-10-10 09:00", "2026-10-10T01:00:00Z"},
		{"2026-10-10T09:00", "2026-10-10T01:00:00Z"},
		{"2026-10-10", "2026-10-09T16:00:00Z"},
	} {
		got, err := ParseAt(c.in)
		if err != nil || got.UTC().Format("2006-01-02T15:04:05Z") != c.want {
			t.Errorf("%s: %v %v, want %s", c.in, got.UTC(), err, c.want)
		}
	}
	if _, err := ParseAt("10/01/2026"); err == nil {
		t.Error("US date accepted")
	}
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	db := flowstest.Open(t, filepath.Join(t.TempDir(), "b.db"))
	tokens, err := auth.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "var")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	path, err := Bootstrap(ctx, tokens, dir, logger)
	if err != nil || path != filepath.Join(dir, TokenFile) {
		t.Fatalf("bootstrap: %q %v", path, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	secret := strings.TrimSpace(string(b))
	tok, err := tokens.Verify(ctx, secret)
	if err != nil || tok.Role != auth.Admin {
		t.Fatalf("bootstrap token: %+v %v", tok, err)
	}
	if !strings.Contains(logs.String(), path) || strings.Contains(logs.String(), secret) {
		t.Fatalf("log must name the file and not the token:\n%s", logs.String())
	}
	// Second start: nothing created, the file is left alone.
	if p, err := Bootstrap(ctx, tokens, dir, logger); p != "" || err != nil {
		t.Fatalf("second bootstrap: %q %v", p, err)
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Fatal("token file rewritten")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left-over files: %v", ents)
	}
}

func TestTokensEndpoints(t *testing.T) {
	f := newFixture(t)
	var e Error
	if got := f.call(t, "POST", "/api/v1/tokens", f.reader, "application/json", `{"name":"x","role":"admin"}`, &e); got != 403 {
		t.Fatalf("reader creates a token: %d", got)
	}
	if got := f.call(t, "POST", "/api/v1/tokens", f.admin, "application/json", `{"name":"x","role":"root"}`, &e); got != 400 || e.Code != CodeBadRequest {
		t.Fatalf("unknown role: %d %+v", got, e)
	}
	var nt NewToken
	if got := f.call(t, "POST", "/api/v1/tokens", f.admin, "application/json", `{"name":"sam","role":"supervisor"}`, &nt); got != 201 || nt.Secret == "" || nt.Role != auth.Supervisor || nt.CreatedBy != "alice" {
		t.Fatalf("create: %d %+v", got, nt)
	}
	if got := f.call(t, "GET", "/api/v1/flows", nt.Secret, "", "", nil); got != 200 {
		t.Fatalf("new token reads: %d", got)
	}
	var l TokenList
	if got := f.call(t, "GET", "/api/v1/tokens", f.admin, "", "", &l); got != 200 || len(l.Tokens) != 3 || strings.Contains(jsonBody(t, l), nt.Secret) {
		t.Fatalf("list: %d %+v", got, l)
	}
	req, _ := http.NewRequest("DELETE", f.srv.URL+"/api/v1/tokens/"+nt.ID, nil)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("revoke: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	if got := f.call(t, "GET", "/api/v1/flows", nt.Secret, "", "", nil); got != 401 {
		t.Fatalf("revoked token reads: %d", got)
	}
	if got := f.call(t, "DELETE", "/api/v1/tokens/"+nt.ID, f.admin, "", "", &e); got != 404 || e.Code != CodeNotFound {
		t.Fatalf("revoke twice: %d %+v", got, e)
	}
}
