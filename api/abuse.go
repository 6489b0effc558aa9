package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cq12345/hotline/abuse"
	"github.com/cq12345/hotline/api/auth"
)

// The article-26 API (package abuse). Who may do what:
//
//   - agent, supervisor, admin: flag a call (harassment, insult, threat,
//     with a note) or mark that they dissuaded the caller ("warned", 劝阻).
//   - supervisor, admin: the review queue; confirm, shorten or lift a
//     decision with a reason; read the flag notes and export the evidence
//     pack (both audited, with a reason).
//   - auditor: decisions and their explanations, never the notes.
//   - anyone with a token: validate a policy file.
var (
	abuseFlaggers  = []auth.Role{auth.Admin, auth.Supervisor, auth.Agent}
	abuseReviewers = []auth.Role{auth.Admin, auth.Supervisor}
	abuseReaders   = []auth.Role{auth.Admin, auth.Supervisor, auth.Auditor}
)

func (s *Server) abuseRoutes() {
	if s.cfg.Abuse == nil {
		return
	}
	m := s.mux
	m.Handle("GET /api/v1/abuse/decisions", s.role(abuseReaders, s.abuseList))
	m.Handle("POST /api/v1/abuse/decisions/search", s.role(abuseReaders, s.abuseSearch))
	m.Handle("GET /api/v1/abuse/decisions/{id}", s.role(abuseReaders, s.abuseShow))
	m.Handle("POST /api/v1/abuse/decisions/{id}/review", s.role(abuseReviewers, s.abuseReview))
	m.Handle("GET /api/v1/abuse/decisions/{id}/evidence", s.role(abuseReviewers, s.abuseEvidence))
	m.Handle("POST /api/v1/abuse/flags", s.role(abuseFlaggers, s.abuseFlag))
	m.Handle("GET /api/v1/abuse/policy", s.role(abuseReaders, s.abusePolicy))
	m.Handle("POST /api/v1/abuse/policy/validate", s.authed(false, s.abuseValidate))
}

// AbuseList is the body of GET /api/v1/abuse/decisions.
type AbuseList struct {
	Decisions []*abuse.Decision `json:"decisions"`
}

// AbuseView is the body of GET /api/v1/abuse/decisions/{id}: the decision,
// its explanation in Chinese and English, and (with ?reveal=notes&reason=…,
// supervisors and admins, audited) the caller's calls and flags with notes.
type AbuseView struct {
	Decision      *abuse.Decision `json:"decision"`
	ExplanationZH string          `json:"explanation_zh"`
	ExplanationEN string          `json:"explanation_en"`
	Evidence      *abuse.Evidence `json:"evidence,omitempty"`
}

// AbuseSearch is the body of POST /api/v1/abuse/decisions/search (the
// number travels in the body, not in a URL).
type AbuseSearch struct {
	Caller string `json:"caller"`
	Status string `json:"status,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// AbuseFlag is the body of POST /api/v1/abuse/flags.
type AbuseFlag struct {
	CallID string `json:"call_id"`
	Kind   string `json:"kind"` // harassment, insult, threat, warned
	Note   string `json:"note,omitempty"`
}

// AbuseFlagResult is the answer to a flag: the decision it led to, if any.
type AbuseFlagResult struct {
	Recorded bool            `json:"recorded"`
	Decision *abuse.Decision `json:"decision,omitempty"`
}

// AbuseValidation is the answer of POST /api/v1/abuse/policy/validate.
type AbuseValidation struct {
	Valid    bool            `json:"valid"`
	Problems []abuse.Problem `json:"problems"`
}

func abuseErr(err error) error {
	switch {
	case errors.Is(err, abuse.ErrNotFound):
		return &Error{Message: err.Error(), Code: CodeNotFound}
	case errors.Is(err, abuse.ErrInvalid):
		return &Error{Message: err.Error(), Code: CodeBadRequest}
	}
	return err
}

func (s *Server) abuseList(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	queue := q.Get("queue") == "1" || q.Get("queue") == "true"
	l, err := s.cfg.Abuse.List(r.Context(), abuse.ListFilter{Queue: queue, Status: q.Get("status"), Limit: limit}, "")
	if err != nil {
		return abuseErr(err)
	}
	if l == nil {
		l = []*abuse.Decision{}
	}
	writeJSON(w, http.StatusOK, AbuseList{Decisions: l})
	return nil
}

func (s *Server) abuseSearch(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	var req AbuseSearch
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	if req.Caller == "" {
		return badRequest("caller is required")
	}
	l, err := s.cfg.Abuse.List(r.Context(), abuse.ListFilter{Status: req.Status, Limit: req.Limit}, req.Caller)
	if err != nil {
		return abuseErr(err)
	}
	if l == nil {
		l = []*abuse.Decision{}
	}
	writeJSON(w, http.StatusOK, AbuseList{Decisions: l})
	return nil
}

func (s *Server) abuseShow(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	var v AbuseView
	if q.Get("reveal") == "notes" {
		if tok.Role != auth.Admin && tok.Role != auth.Supervisor {
			return forbidden("the %s role may not read abuse notes", tok.Role)
		}
		if q.Get("reason") == "" {
			return badRequest("reveal needs a reason (?reason=…): it goes to the audit trail")
		}
		ev, err := s.cfg.Abuse.Show(r.Context(), id, access(tok, q.Get("reason")))
		if err != nil {
			return abuseErr(err)
		}
		v.Decision, v.Evidence = ev.Decision, ev
	} else {
		d, err := s.cfg.Abuse.Get(r.Context(), id)
		if err != nil {
			return abuseErr(err)
		}
		v.Decision = d
	}
	pol := s.cfg.Abuse.Policy()
	v.ExplanationZH = abuse.Explain(v.Decision, "zh-CN", pol)
	v.ExplanationEN = abuse.Explain(v.Decision, "en", pol)
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) abuseReview(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	var req abuse.ReviewRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	req.Account, req.Role = tok.Name, string(tok.Role)
	d, err := s.cfg.Abuse.Review(r.Context(), r.PathValue("id"), req)
	if err != nil {
		return abuseErr(err)
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) abuseEvidence(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	q := r.URL.Query()
	if q.Get("reason") == "" {
		return badRequest("the evidence pack needs a reason (?reason=…): it goes to the audit trail")
	}
	ev, err := s.cfg.Abuse.Evidence(r.Context(), r.PathValue("id"), access(tok, q.Get("reason")))
	if err != nil {
		return abuseErr(err)
	}
	name := "evidence-" + ev.Decision.ID + "-" + time.Now().Format("20060102")
	if q.Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		return ev.WriteCSV(w)
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
	writeJSON(w, http.StatusOK, ev)
	return nil
}

func (s *Server) abuseFlag(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	var req AbuseFlag
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	d, err := s.cfg.Abuse.Flag(r.Context(), req.CallID, tok.Name, req.Kind, req.Note)
	if err != nil {
		return abuseErr(err)
	}
	writeJSON(w, http.StatusCreated, AbuseFlagResult{Recorded: true, Decision: d})
	return nil
}

func (s *Server) abusePolicy(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	writeJSON(w, http.StatusOK, s.cfg.Abuse.Policy())
	return nil
}

func (s *Server) abuseValidate(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	v := AbuseValidation{Valid: true, Problems: []abuse.Problem{}}
	if _, err := abuse.ParsePolicy(b); err != nil {
		var inv *abuse.InvalidError
		if !errors.As(err, &inv) {
			return err
		}
		v.Valid, v.Problems = false, inv.Problems
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
