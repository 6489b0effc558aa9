package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/report"
)

// The cases API (issue 5, article 22 of the hotline's rules). Who may do
// what:
//
//   - admin, supervisor: every case; notes, status, assignment; the full
//     caller number and the notes with ?reveal=caller|notes&reason=….
//   - agent: only the cases routed to them (Case.Agent is their account
//     name, so an agent's account is named by their 工号, routing.Agent.ID,
//     the id routing writes to the case), and the same there, the full
//     number included.
//   - auditor: cases masked, and the audit trail; never a full number.
//
// Every case shown to a person writes an audit entry (field "case"); every
// full number or notes read writes one more (field "caller" / "notes"),
// before anything is revealed. The audit trail has no route that edits or
// deletes it.

// CaseList is the body of GET /api/v1/cases and POST /api/v1/cases/search.
type CaseList struct {
	Cases []*cases.Case `json:"cases"`
}

// CaseView is the body of GET /api/v1/cases/{id}: the case (caller masked),
// its events (notes sealed: only their author and time show), and what was
// revealed on request.
type CaseView struct {
	*cases.Case
	Events     []cases.Event `json:"events"`
	NoteCount  int           `json:"note_count"`
	CallerFull string        `json:"caller_full,omitempty"`
	Notes      []cases.Note  `json:"notes,omitempty"`
}

// CaseSearch is the body of POST /api/v1/cases/search: the number travels
// in the body, not in a URL that proxies log.
type CaseSearch struct {
	Caller   string       `json:"caller,omitempty"`
	From     string       `json:"from,omitempty"`
	To       string       `json:"to,omitempty"`
	Status   cases.Status `json:"status,omitempty"`
	Unit     string       `json:"unit,omitempty"`
	Queue    string       `json:"queue,omitempty"`
	Agent    string       `json:"agent,omitempty"`
	OpenOnly bool         `json:"open_only,omitempty"`
	Limit    int          `json:"limit,omitempty"`
	Offset   int          `json:"offset,omitempty"`
}

// NoteRequest is the body of POST /api/v1/cases/{id}/notes.
type NoteRequest struct {
	Text string `json:"text"`
}

// StatusRequest is the body of POST /api/v1/cases/{id}/status.
type StatusRequest struct {
	Status     cases.Status `json:"status"`
	PartnerRef string       `json:"partner_ref,omitempty"` // transferred out (川渝互转)
	Unit       string       `json:"unit,omitempty"`
}

// AssignRequest is the body of POST /api/v1/cases/{id}/assign: a
// supervisor routes a case to a handling unit, a queue or an agent.
type AssignRequest struct {
	Unit  string `json:"unit,omitempty"`
	Queue string `json:"queue,omitempty"`
	Agent string `json:"agent,omitempty"`
}

// AuditList is the body of GET /api/v1/audit.
type AuditList struct {
	Entries []cases.AuditEntry `json:"entries"`
}

// MaxReason bounds a reveal reason.
const MaxReason = 500

var (
	caseReaders = []auth.Role{auth.Admin, auth.Supervisor, auth.Agent, auth.Auditor}
	caseWriters = []auth.Role{auth.Admin, auth.Supervisor, auth.Agent}
	revealers   = []auth.Role{auth.Admin, auth.Supervisor, auth.Agent}
	managers    = []auth.Role{auth.Admin, auth.Supervisor}
	auditReader = []auth.Role{auth.Admin, auth.Auditor}
	reportRoles = []auth.Role{auth.Admin, auth.Supervisor, auth.Auditor}
)

func (s *Server) caseRoutes() {
	if s.cfg.Cases == nil {
		return
	}
	m := s.mux
	m.Handle("GET /api/v1/cases", s.role(caseReaders, s.listCases))
	m.Handle("POST /api/v1/cases/search", s.role(caseReaders, s.searchCases))
	m.Handle("GET /api/v1/cases/{id}", s.role(caseReaders, s.showCase))
	m.Handle("GET /api/v1/cases/{id}/history", s.role(caseReaders, s.caseHistory))
	m.Handle("POST /api/v1/cases/{id}/notes", s.role(caseWriters, s.addNote))
	m.Handle("POST /api/v1/cases/{id}/status", s.role(caseWriters, s.setStatus))
	m.Handle("POST /api/v1/cases/{id}/assign", s.role(managers, s.assignCase))
	m.Handle("GET /api/v1/audit", s.role(auditReader, s.listAudit))
	m.Handle("GET /api/v1/reports/monthly", s.role(reportRoles, s.monthlyReport))
}

// role admits the given roles only and maps the case store's errors.
func (s *Server) role(roles []auth.Role, h handlerFunc) http.Handler {
	return s.authed(false, func(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
		if !slices.Contains(roles, tok.Role) {
			writeError(w, http.StatusForbidden, &Error{Message: fmt.Sprintf("the %s role may not do this", tok.Role), Code: CodeForbidden})
			return nil
		}
		err := h(w, r, tok)
		var e *Error
		switch {
		case err == nil:
			return nil
		case errors.As(err, &e) && e.Code == CodeForbidden:
			writeError(w, http.StatusForbidden, e)
			return nil
		case errors.Is(err, cases.ErrNotFound):
			writeError(w, http.StatusNotFound, &Error{Message: "no such case", Code: CodeNotFound, ID: r.PathValue("id")})
			return nil
		case errors.Is(err, cases.ErrInvalid):
			writeError(w, http.StatusConflict, &Error{Message: err.Error(), Code: CodeConflict, ID: r.PathValue("id")})
			return nil
		}
		return err
	})
}

// CodeConflict: the case cannot change as asked (e.g. a status move the
// lifecycle does not allow).
const CodeConflict = "conflict"

// access names the account for the audit trail.
func access(tok *auth.Token, reason string) cases.Access {
	return cases.Access{Account: tok.Name, Role: string(tok.Role), Reason: reason}
}

// mayRead: an agent reads only the cases routed to them.
func mayRead(tok *auth.Token, c *cases.Case) bool {
	return tok.Role != auth.Agent || (c.Agent != "" && c.Agent == tok.Name)
}

func forbidden(format string, args ...any) error {
	return &Error{Message: fmt.Sprintf(format, args...), Code: CodeForbidden}
}

// getCase loads the case of the path and checks the account may see it.
func (s *Server) getCase(r *http.Request, tok *auth.Token) (*cases.Case, error) {
	c, err := s.cfg.Cases.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if !mayRead(tok, c) {
		return nil, forbidden("case %s is not routed to %s", c.Number, tok.Name)
	}
	return c, nil
}

// parseDay reads a time bound: RFC 3339 or a date (Beijing time); a date
// given as the upper bound includes that whole day.
func parseDay(v string, upper bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := ParseAt(v)
	if err != nil {
		return time.Time{}, badRequest("%v", err)
	}
	if upper && len(v) == len("2006-01-02") {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

func (s *Server) filter(q CaseSearch, tok *auth.Token) (cases.Filter, error) {
	from, err := parseDay(q.From, false)
	if err != nil {
		return cases.Filter{}, err
	}
	to, err := parseDay(q.To, true)
	if err != nil {
		return cases.Filter{}, err
	}
	if q.Status != "" && !q.Status.Valid() {
		return cases.Filter{}, badRequest("unknown status %q", q.Status)
	}
	if q.Limit < 0 || q.Offset < 0 {
		return cases.Filter{}, badRequest("limit and offset are not negative")
	}
	f := cases.Filter{From: from, To: to, Status: q.Status, Unit: q.Unit, Queue: q.Queue, Agent: q.Agent,
		OpenOnly: q.OpenOnly, Limit: q.Limit, Offset: q.Offset}
	if q.Caller != "" {
		if s.cfg.Protector == nil {
			return cases.Filter{}, errors.New("api: no protector for caller look-ups")
		}
		f.CallerHash = s.cfg.Protector.CallerHash(q.Caller)
	}
	if tok.Role == auth.Agent {
		if q.Agent != "" && q.Agent != tok.Name {
			return cases.Filter{}, forbidden("an agent sees only the cases routed to them")
		}
		f.Agent = tok.Name
	}
	return f, nil
}

func (s *Server) writeCases(w http.ResponseWriter, r *http.Request, q CaseSearch, tok *auth.Token) error {
	f, err := s.filter(q, tok)
	if err != nil {
		return err
	}
	l, err := s.cfg.Cases.List(r.Context(), f)
	if err != nil {
		return err
	}
	if l == nil {
		l = []*cases.Case{}
	}
	writeJSON(w, http.StatusOK, CaseList{Cases: l})
	return nil
}

func (s *Server) listCases(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	v := r.URL.Query()
	if v.Has("caller") {
		return badRequest("look a caller up with POST /api/v1/cases/search (a number does not belong in a URL)")
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		return err
	}
	offset, err := intParam(r, "offset")
	if err != nil {
		return err
	}
	q := CaseSearch{From: v.Get("from"), To: v.Get("to"), Status: cases.Status(v.Get("status")), Unit: v.Get("unit"),
		Queue: v.Get("queue"), Agent: v.Get("agent"), OpenOnly: v.Get("open") == "1" || v.Get("open") == "true",
		Limit: limit, Offset: offset}
	return s.writeCases(w, r, q, tok)
}

func (s *Server) searchCases(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	var q CaseSearch
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		return badRequest("body: %v", err)
	}
	return s.writeCases(w, r, q, tok)
}

// showCase shows one case; the audit trail records that this account
// opened it, and one more entry per field revealed.
func (s *Server) showCase(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	ctx := r.Context()
	reveal := map[string]bool{}
	for f := range strings.SplitSeq(r.URL.Query().Get("reveal"), ",") {
		switch f = strings.TrimSpace(f); f {
		case "":
		case "caller", "notes":
			reveal[f] = true
		default:
			return badRequest("reveal=%s: caller or notes", f)
		}
	}
	reason := strings.TrimSpace(r.URL.Query().Get("reason"))
	if len(reason) > MaxReason {
		return badRequest("reason over %d bytes", MaxReason)
	}
	if len(reveal) > 0 {
		if !slices.Contains(revealers, tok.Role) {
			return forbidden("the %s role may not read a full number or notes", tok.Role)
		}
		if reason == "" {
			return badRequest("reading a full number or notes needs a reason (&reason=…)")
		}
	}
	c, err := s.getCase(r, tok)
	if err != nil {
		return err
	}
	rv := &cases.Revealer{Store: s.cfg.Cases, Protector: s.cfg.Protector}
	openReason := reason
	if openReason == "" {
		openReason = "show"
	}
	if err := rv.Opened(ctx, c.ID, access(tok, openReason)); err != nil {
		return fmt.Errorf("api: audit: %w", err)
	}
	evs, err := s.cfg.Cases.Events(ctx, c.ID)
	if err != nil {
		return err
	}
	view := CaseView{Case: c, Events: evs}
	if view.Events == nil {
		view.Events = []cases.Event{}
	}
	for _, e := range evs {
		if e.Kind == cases.EventNote {
			view.NoteCount++
		}
	}
	if reveal["caller"] {
		if view.CallerFull, err = rv.Caller(ctx, c.ID, access(tok, reason)); err != nil {
			return err
		}
		s.log.Info("api: caller number read", "case", c.Number, "account", tok.Name, "role", tok.Role)
	}
	if reveal["notes"] {
		if view.Notes, err = rv.Notes(ctx, c.ID, access(tok, reason)); err != nil {
			return err
		}
		s.log.Info("api: notes read", "case", c.Number, "account", tok.Name, "role", tok.Role)
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

// caseHistory lists the cases of the same caller (by the keyed hash),
// newest first; an agent sees only those routed to them.
func (s *Server) caseHistory(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	c, err := s.getCase(r, tok)
	if err != nil {
		return err
	}
	f := cases.Filter{CallerHash: c.CallerHash, Limit: 1000}
	if tok.Role == auth.Agent {
		f.Agent = tok.Name
	}
	l, err := s.cfg.Cases.List(r.Context(), f)
	if err != nil {
		return err
	}
	if l == nil {
		l = []*cases.Case{}
	}
	writeJSON(w, http.StatusOK, CaseList{Cases: l})
	return nil
}

func (s *Server) appendEvent(w http.ResponseWriter, r *http.Request, e cases.Event) error {
	if err := s.cfg.Cases.AppendEvent(r.Context(), e); err != nil {
		return err
	}
	c, err := s.cfg.Cases.Get(r.Context(), e.CaseID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) addNote(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	var req NoteRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	if strings.TrimSpace(req.Text) == "" {
		return badRequest("an empty note")
	}
	c, err := s.getCase(r, tok)
	if err != nil {
		return err
	}
	e := cases.NewEvent(c.ID, cases.EventNote)
	e.Note, e.Account = req.Text, tok.Name
	s.log.Info("api: note added", "case", c.Number, "account", tok.Name) // never the text
	return s.appendEvent(w, r, e)
}

func (s *Server) setStatus(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	var req StatusRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	if !req.Status.Valid() {
		return badRequest("unknown status %q", req.Status)
	}
	c, err := s.getCase(r, tok)
	if err != nil {
		return err
	}
	e := cases.NewEvent(c.ID, cases.EventStatus)
	e.Status, e.PartnerRef, e.Unit, e.Account = req.Status, req.PartnerRef, req.Unit, tok.Name
	s.log.Info("api: case status", "case", c.Number, "from", c.Status, "to", req.Status, "account", tok.Name)
	return s.appendEvent(w, r, e)
}

func (s *Server) assignCase(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	var req AssignRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	if req.Unit == "" && req.Queue == "" && req.Agent == "" {
		return badRequest("give a unit, a queue or an agent")
	}
	if req.Agent != "" && s.cfg.Tokens != nil {
		a, err := s.cfg.Tokens.Account(r.Context(), req.Agent)
		if errors.Is(err, auth.ErrNotFound) {
			return badRequest("no account %q", req.Agent)
		} else if err != nil {
			return err
		}
		if a.Role != auth.Agent || a.DisabledAt != nil {
			return badRequest("account %q is not an active agent", req.Agent)
		}
	}
	c, err := s.getCase(r, tok)
	if err != nil {
		return err
	}
	e := cases.NewEvent(c.ID, cases.EventRouted)
	e.Unit, e.Queue, e.Agent, e.Account = req.Unit, req.Queue, req.Agent, tok.Name
	s.log.Info("api: case assigned", "case", c.Number, "unit", req.Unit, "queue", req.Queue, "agent", req.Agent, "account", tok.Name)
	return s.appendEvent(w, r, e)
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	v := r.URL.Query()
	from, err := parseDay(v.Get("from"), false)
	if err != nil {
		return err
	}
	to, err := parseDay(v.Get("to"), true)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		return err
	}
	f := cases.AuditFilter{Account: v.Get("account"), From: from, To: to, Limit: limit}
	if id := v.Get("case"); id != "" {
		c, err := s.cfg.Cases.Get(r.Context(), id)
		if err != nil {
			return err
		}
		f.CaseID = c.ID
	}
	l, err := s.cfg.Cases.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	if l == nil {
		l = []cases.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, AuditList{Entries: l})
	return nil
}

// monthlyReport renders the monthly evaluation: ?month=2026-11&format=json|csv|html.
func (s *Server) monthlyReport(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	month := r.URL.Query().Get("month")
	if month == "" {
		month = time.Now().In(cases.Shanghai()).Format("2006-01")
	}
	if _, _, err := report.MonthRange(month); err != nil {
		return badRequest("month: %v", err)
	}
	format := r.URL.Query().Get("format")
	ctype := map[string]string{"": "application/json", "json": "application/json", "csv": "text/csv", "html": "text/html"}[format]
	if ctype == "" {
		return badRequest("format %q: json, csv or html", format)
	}
	m, err := report.Build(r.Context(), s.cfg.Cases, month, time.Now())
	if err != nil {
		return err
	}
	if format == "" {
		format = "json"
	}
	var b strings.Builder
	if err := m.Write(&b, format); err != nil {
		return err
	}
	w.Header().Set("Content-Type", ctype+"; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write([]byte(b.String()))
	return err
}
