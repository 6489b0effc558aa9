// Package api is hotlined's HTTP API: JSON over HTTP under /api/v1, with
// bearer-token auth (RFC 6750). Reads need any valid token; changes need an
// admin token. Today it serves the IVR flows (list, get, save a draft,
// validate, publish, roll back, diff, history, simulate), the cases, the
// audit trail and the monthly report (cases.go: roles decide what an
// account sees), and accounts and tokens (admins; POST /api/v1/login
// exchanges a password for a token); agents and abuse add their routes
// beside them in New.
//
// Errors are JSON: {"error": "...", "code": "not_found", "id": "<flow>",
// "problems": [{"path", "line", "message"}]}.
//
// Caller numbers never leave this package unmasked (telemetry.MaskNumber).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cq12345/hotline/abuse"
	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/flows"
	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/telemetry"
)

// Config is what the API serves from.
type Config struct {
	// Flows is the versioned flow store.
	Flows *flows.Store
	// Tokens authenticates requests.
	Tokens *auth.Store
	// Cases is the case store (nil: no case routes); Protector hashes
	// caller numbers for look-ups and opens sealed data for Revealer.
	Cases     cases.Store
	Protector *cases.Protector
	// Abuse is the article-26 service (nil: no abuse routes).
	Abuse *abuse.Service
	// Routing serves destinations, queues, agents, callbacks and live
	// figures (nil: no routing routes).
	Routing Routing
	// Env is the environment flows are validated and simulated against
	// (the same the call path loads flows with).
	Env ivr.Env
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the API's http.Handler.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// MaxBody is the largest request body accepted (a flow file is a few KB).
const MaxBody = 1 << 20

// New returns the API handler. Mount it at "/api/" (it matches full paths).
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.Default()
	}
	read := func(h handlerFunc) http.Handler { return s.authed(false, h) }
	write := func(h handlerFunc) http.Handler { return s.authed(true, h) }
	m := s.mux
	m.Handle("GET /api/v1/flows", read(s.listFlows))
	m.Handle("POST /api/v1/flows/validate", read(s.validateSource))
	m.Handle("POST /api/v1/flows/simulate", read(s.simulate))
	m.Handle("GET /api/v1/flows/{id}", read(s.getFlow))
	m.Handle("GET /api/v1/flows/{id}/versions", read(s.listVersions))
	m.Handle("POST /api/v1/flows/{id}/versions", write(s.saveDraft))
	m.Handle("PUT /api/v1/flows/{id}/draft", write(s.saveDraft))
	m.Handle("POST /api/v1/flows/{id}/validate", read(s.validateStored))
	m.Handle("POST /api/v1/flows/{id}/publish", write(s.publish))
	m.Handle("POST /api/v1/flows/{id}/rollback", write(s.rollback))
	m.Handle("GET /api/v1/flows/{id}/diff", read(s.diff))
	m.Handle("GET /api/v1/flows/{id}/history", read(s.history))
	s.tokenRoutes(write)
	s.accountRoutes(write)
	s.caseRoutes()
	s.abuseRoutes()
	s.routingRoutes()
	m.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, &Error{Message: "no such endpoint: " + r.Method + " " + r.URL.Path, Code: CodeNotFound})
	}))
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Error codes of the JSON error body.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeInvalidFlow  = "invalid_flow"
	CodeInternal     = "internal"
)

// Error is the JSON body of every error response.
type Error struct {
	Message  string          `json:"error"`
	Code     string          `json:"code"`
	ID       string          `json:"id,omitempty"`
	Version  int             `json:"version,omitempty"`
	Problems []flows.Problem `json:"problems,omitempty"`
}

func (e *Error) Error() string { return e.Message }

type handlerFunc func(w http.ResponseWriter, r *http.Request, tok *auth.Token) error

// authed checks the bearer token (admin for writes), runs h and turns its
// error into a JSON error response.
func (s *Server) authed(admin bool, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hotline"`)
			writeError(w, http.StatusUnauthorized, &Error{Message: "a bearer token is required", Code: CodeUnauthorized})
			return
		}
		tok, err := s.cfg.Tokens.Verify(r.Context(), secret)
		if errors.Is(err, auth.ErrInvalid) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hotline", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, &Error{Message: "invalid or revoked token", Code: CodeUnauthorized})
			return
		}
		if err != nil {
			s.log.Error("api: verify token", "err", err)
			writeError(w, http.StatusInternalServerError, &Error{Message: "internal error", Code: CodeInternal})
			return
		}
		if admin && tok.Role != auth.Admin {
			writeError(w, http.StatusForbidden, &Error{Message: "this needs an admin token", Code: CodeForbidden})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		if err := h(w, r, tok); err != nil {
			s.fail(w, r, err)
		}
	})
}

// bearer takes the token from "Authorization: Bearer <token>" (RFC 6750
// section 2.1).
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	var inv *flows.InvalidError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &e):
		status := http.StatusBadRequest
		switch e.Code {
		case CodeNotFound:
			status = http.StatusNotFound
		case CodeInvalidFlow:
			status = http.StatusUnprocessableEntity
		}
		writeError(w, status, e)
	case errors.As(err, &inv):
		writeError(w, http.StatusUnprocessableEntity, &Error{Message: fmt.Sprintf("%s v%d is invalid: %d problems", inv.FlowID, inv.Version, len(inv.Problems)),
			Code: CodeInvalidFlow, ID: inv.FlowID, Version: inv.Version, Problems: inv.Problems})
	case errors.Is(err, flows.ErrNotFound):
		writeError(w, http.StatusNotFound, &Error{Message: err.Error(), Code: CodeNotFound, ID: r.PathValue("id")})
	case errors.Is(err, flows.ErrBadRequest):
		writeError(w, http.StatusBadRequest, &Error{Message: err.Error(), Code: CodeBadRequest, ID: r.PathValue("id")})
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, &Error{Message: fmt.Sprintf("request body over %d bytes", MaxBody), Code: CodeBadRequest})
	default:
		s.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, &Error{Message: "internal error", Code: CodeInternal})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, e *Error) { writeJSON(w, status, e) }

func badRequest(format string, args ...any) error {
	return &Error{Message: fmt.Sprintf(format, args...), Code: CodeBadRequest}
}

// intParam reads an optional integer query parameter (absent: 0).
func intParam(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badRequest("%s must be a version number, not %q", name, v)
	}
	return n, nil
}

// SourceRequest carries flow source: as JSON {"source": "...", "comment":
// "..."} (Content-Type application/json) or as the raw YAML body (any other
// type; the comment then comes from ?comment=).
type SourceRequest struct {
	Source  string `json:"source"`
	Comment string `json:"comment,omitempty"`
}

func readSource(r *http.Request) (*SourceRequest, error) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var req SourceRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			return nil, badRequest("body: %v", err)
		}
		return &req, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	return &SourceRequest{Source: string(b), Comment: r.URL.Query().Get("comment")}, nil
}

// FlowList is the body of GET /api/v1/flows.
type FlowList struct {
	Flows []flows.Summary `json:"flows"`
}

func (s *Server) listFlows(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	l, err := s.cfg.Flows.List(r.Context())
	if err != nil {
		return err
	}
	if l == nil {
		l = []flows.Summary{}
	}
	writeJSON(w, http.StatusOK, FlowList{Flows: l})
	return nil
}

// getFlow returns a version with its source: ?version=N, else the active
// one, else (nothing published yet) the latest draft.
func (s *Server) getFlow(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	id := r.PathValue("id")
	n, err := intParam(r, "version")
	if err != nil {
		return err
	}
	if n == 0 {
		f, err := s.cfg.Flows.Flow(r.Context(), id)
		if err != nil {
			return err
		}
		n = f.ActiveVersion
		if n == 0 {
			n = f.LatestVersion
		}
	}
	v, err := s.cfg.Flows.Get(r.Context(), id, n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// VersionList is the body of GET /api/v1/flows/{id}/versions.
type VersionList struct {
	Versions []flows.Version `json:"versions"`
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	vs, err := s.cfg.Flows.Versions(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, VersionList{Versions: vs})
	return nil
}

// Validation is the body answering a validation, and a saved draft.
type Validation struct {
	Valid    bool            `json:"valid"`
	Problems []flows.Problem `json:"problems"`
	// Version is the saved draft (save) or the version validated.
	Version *flows.Version `json:"version,omitempty"`
}

func validation(ps []flows.Problem, v *flows.Version) Validation {
	if ps == nil {
		ps = []flows.Problem{}
	}
	return Validation{Valid: len(ps) == 0, Problems: ps, Version: v}
}

func (s *Server) saveDraft(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	req, err := readSource(r)
	if err != nil {
		return err
	}
	if strings.TrimSpace(req.Source) == "" {
		return badRequest("empty flow source")
	}
	v, ps, err := s.cfg.Flows.SaveDraft(r.Context(), r.PathValue("id"), []byte(req.Source), req.Comment, tok.Name)
	if err != nil {
		return err
	}
	v.Source = ""
	s.log.Info("api: flow draft saved", "flow", v.FlowID, "version", v.Version, "valid", len(ps) == 0, "actor", tok.Name)
	writeJSON(w, http.StatusCreated, validation(ps, v))
	return nil
}

func (s *Server) validateSource(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	req, err := readSource(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, validation(s.cfg.Flows.Check([]byte(req.Source)), nil))
	return nil
}

// validateStored validates ?version=N (default: the latest) of a stored flow.
func (s *Server) validateStored(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	id := r.PathValue("id")
	n, err := intParam(r, "version")
	if err != nil {
		return err
	}
	if n == 0 {
		f, err := s.cfg.Flows.Flow(r.Context(), id)
		if err != nil {
			return err
		}
		n = f.LatestVersion
	}
	v, err := s.cfg.Flows.Get(r.Context(), id, n)
	if err != nil {
		return err
	}
	ps := s.cfg.Flows.Check([]byte(v.Source))
	v.Source = ""
	writeJSON(w, http.StatusOK, validation(ps, v))
	return nil
}

// VersionRequest is the body of publish and rollback: {"version": N}
// (0 or absent: the latest for publish, the previous published for
// rollback).
type VersionRequest struct {
	Version int `json:"version"`
}

func readVersion(r *http.Request) (int, error) {
	var req VersionRequest
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, err
	}
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := json.Unmarshal(b, &req); err != nil {
			return 0, badRequest("body: %v", err)
		}
	}
	if req.Version < 0 {
		return 0, badRequest("negative version")
	}
	return req.Version, nil
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	n, err := readVersion(r)
	if err != nil {
		return err
	}
	v, err := s.cfg.Flows.Publish(r.Context(), r.PathValue("id"), n, tok.Name)
	if err != nil {
		return err
	}
	v.Source = ""
	s.log.Info("api: flow published", "flow", v.FlowID, "version", v.Version, "actor", tok.Name)
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	n, err := readVersion(r)
	if err != nil {
		return err
	}
	v, err := s.cfg.Flows.Rollback(r.Context(), r.PathValue("id"), n, tok.Name)
	if err != nil {
		return err
	}
	v.Source = ""
	s.log.Info("api: flow rolled back", "flow", v.FlowID, "version", v.Version, "actor", tok.Name)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// Diff is the body of GET /api/v1/flows/{id}/diff.
type Diff struct {
	ID   string `json:"id"`
	From int    `json:"from"`
	To   int    `json:"to"`
	// Diff is a unified diff of the YAML text; "" when equal.
	Diff string `json:"diff"`
}

// diff compares ?from= (default: the active version, else the one before
// to) with ?to= (default: the latest).
func (s *Server) diff(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	id := r.PathValue("id")
	from, err := intParam(r, "from")
	if err != nil {
		return err
	}
	to, err := intParam(r, "to")
	if err != nil {
		return err
	}
	f, err := s.cfg.Flows.Flow(r.Context(), id)
	if err != nil {
		return err
	}
	if to == 0 {
		to = f.LatestVersion
	}
	if from == 0 {
		from = f.ActiveVersion
		if from == 0 || from == to {
			from = max(to-1, 1)
		}
	}
	d, err := s.cfg.Flows.Diff(r.Context(), id, from, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Diff{ID: id, From: from, To: to, Diff: d})
	return nil
}

// History is the body of GET /api/v1/flows/{id}/history.
type History struct {
	ID      string        `json:"id"`
	History []flows.Event `json:"history"`
}

func (s *Server) history(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	id := r.PathValue("id")
	h, err := s.cfg.Flows.History(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, History{ID: id, History: h})
	return nil
}

// SimulateRequest is the body of POST /api/v1/flows/simulate: either Source
// (a flow file) or ID (+ Version, 0 = the active one, else the latest).
type SimulateRequest struct {
	Source  string `json:"source,omitempty"`
	ID      string `json:"id,omitempty"`
	Version int    `json:"version,omitempty"`
	// Caller is the calling number; it is masked in the answer.
	Caller string `json:"caller,omitempty"`
	// At is the simulated time: RFC 3339, optionally without seconds
	// ("2026-10-01T10:00+08:00"); without an offset it is Beijing time.
	// Empty: now.
	At string `json:"at,omitempty"`
	// Digits are the keys pressed at each input point ("" = none).
	Digits []string `json:"digits,omitempty"`
	Lang   string   `json:"lang,omitempty"`
	// Dialled is the service number ("" = 12345).
	Dialled string `json:"dialled,omitempty"`
	// RouterOutcome: "returned" (default), "left" or "failed".
	RouterOutcome string `json:"router_outcome,omitempty"`
}

// Beijing is China Standard Time (UTC+8, no daylight saving since 1991).
var Beijing = time.FixedZone("CST", 8*3600)

// ParseAt reads a simulated time: RFC 3339 with or without seconds; without
// an offset, Beijing time.
func ParseAt(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, Beijing); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want e.g. 2026-10-01T10:00+08:00", s)
}

func (s *Server) simulate(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	var req SimulateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	src := []byte(req.Source)
	switch {
	case req.Source != "" && req.ID != "":
		return badRequest("give either source or id, not both")
	case req.ID != "":
		n := req.Version
		if n == 0 {
			f, err := s.cfg.Flows.Flow(r.Context(), req.ID)
			if err != nil {
				return err
			}
			n = f.ActiveVersion
			if n == 0 {
				n = f.LatestVersion
			}
		}
		v, err := s.cfg.Flows.Get(r.Context(), req.ID, n)
		if err != nil {
			return err
		}
		src = []byte(v.Source)
	case req.Source == "":
		return badRequest("give the flow source or a flow id")
	}
	res, err := Simulate(r.Context(), src, s.cfg.Env, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// Simulate loads src against env and simulates a call as req says; it is
// what POST /api/v1/flows/simulate and `hotlinectl flows simulate
// --offline` run. The answer is the ivr.SimResult as JSON with the caller's
// number masked wherever it appears. An invalid flow gives an *Error with
// code invalid_flow and the problems.
func Simulate(ctx context.Context, src []byte, env ivr.Env, req SimulateRequest) (json.RawMessage, error) {
	at := time.Now()
	if req.At != "" {
		t, err := ParseAt(req.At)
		if err != nil {
			return nil, badRequest("at: %v", err)
		}
		at = t
	}
	f, err := ivr.Load(src, env)
	if err != nil {
		ps := flows.ProblemsOf(err)
		return nil, &Error{Message: fmt.Sprintf("the flow is invalid: %d problems", len(ps)), Code: CodeInvalidFlow, ID: req.ID, Version: req.Version, Problems: ps}
	}
	res, err := ivr.Simulate(ctx, f, env, ivr.SimOptions{
		Caller: req.Caller, At: at, Digits: req.Digits, Lang: req.Lang,
		Dialled: req.Dialled, RouterOutcome: req.RouterOutcome,
	})
	if err != nil {
		return nil, fmt.Errorf("api: simulate: %s", MaskIn(err.Error(), req.Caller))
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("api: simulate: %w", err)
	}
	if b, err = maskJSON(b, req.Caller); err != nil {
		return nil, fmt.Errorf("api: simulate: %w", err)
	}
	return json.RawMessage(b), nil
}

// MaskIn replaces every occurrence of number in s by its masked form.
func MaskIn(s, number string) string {
	number = strings.TrimSpace(number)
	if len(number) < 3 {
		return s
	}
	return strings.ReplaceAll(s, number, telemetry.MaskNumber(number))
}

// maskJSON masks number in every string of the JSON document b (only in
// strings: a short number must not corrupt a JSON number).
func maskJSON(b []byte, number string) ([]byte, error) {
	if len(strings.TrimSpace(number)) < 3 {
		return b, nil
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case string:
			return MaskIn(x, number)
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		}
		return v
	}
	return json.Marshal(walk(v))
}
