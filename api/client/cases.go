package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/cases"
)

func casePath(id string, rest ...string) string {
	p := "/api/v1/cases/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// Cases lists cases, newest first. A search by caller number goes in a
// POST body (never in the URL).
func (c *Client) Cases(ctx context.Context, q api.CaseSearch) ([]*cases.Case, error) {
	var l api.CaseList
	if q.Caller != "" {
		err := c.do(ctx, http.MethodPost, "/api/v1/cases/search", nil, q, &l)
		return l.Cases, err
	}
	v := url.Values{}
	for k, s := range map[string]string{"from": q.From, "to": q.To, "status": string(q.Status), "unit": q.Unit,
		"queue": q.Queue, "agent": q.Agent} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.OpenOnly {
		v.Set("open", "1")
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/cases", v, nil, &l)
	return l.Cases, err
}

// Case shows a case (by id or number). reveal ("caller", "notes") asks for
// the full number or the notes, with a reason; each is audited.
func (c *Client) Case(ctx context.Context, id string, reveal []string, reason string) (*api.CaseView, error) {
	v := url.Values{}
	if len(reveal) > 0 {
		v.Set("reveal", strings.Join(reveal, ","))
	}
	if reason != "" {
		v.Set("reason", reason)
	}
	var cv api.CaseView
	if err := c.do(ctx, http.MethodGet, casePath(id), v, nil, &cv); err != nil {
		return nil, err
	}
	return &cv, nil
}

// CaseHistory lists the cases of the same caller as case id.
func (c *Client) CaseHistory(ctx context.Context, id string) ([]*cases.Case, error) {
	var l api.CaseList
	err := c.do(ctx, http.MethodGet, casePath(id, "history"), nil, nil, &l)
	return l.Cases, err
}

// AddNote adds a note (sealed at rest) to a case.
func (c *Client) AddNote(ctx context.Context, id, text string) (*cases.Case, error) {
	var cs cases.Case
	if err := c.do(ctx, http.MethodPost, casePath(id, "notes"), nil, api.NoteRequest{Text: text}, &cs); err != nil {
		return nil, err
	}
	return &cs, nil
}

// SetStatus moves a case along its lifecycle.
func (c *Client) SetStatus(ctx context.Context, id string, req api.StatusRequest) (*cases.Case, error) {
	var cs cases.Case
	if err := c.do(ctx, http.MethodPost, casePath(id, "status"), nil, req, &cs); err != nil {
		return nil, err
	}
	return &cs, nil
}

// Assign routes a case to a unit, queue or agent (admin, supervisor).
func (c *Client) Assign(ctx context.Context, id string, req api.AssignRequest) (*cases.Case, error) {
	var cs cases.Case
	if err := c.do(ctx, http.MethodPost, casePath(id, "assign"), nil, req, &cs); err != nil {
		return nil, err
	}
	return &cs, nil
}

// AuditQuery selects audit entries; zero fields do not filter.
type AuditQuery struct {
	Case, Account, From, To string
	Limit                   int
}

// Audit lists the audit trail (admin, auditor), oldest first.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]cases.AuditEntry, error) {
	v := url.Values{}
	for k, s := range map[string]string{"case": q.Case, "account": q.Account, "from": q.From, "to": q.To} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var l api.AuditList
	err := c.do(ctx, http.MethodGet, "/api/v1/audit", v, nil, &l)
	return l.Entries, err
}

// MonthlyReport returns the monthly evaluation (month "2026-11") rendered
// as json, csv or html.
func (c *Client) MonthlyReport(ctx context.Context, month, format string) ([]byte, error) {
	var raw json.RawMessage
	err := c.do(ctx, http.MethodGet, "/api/v1/reports/monthly", url.Values{"month": {month}, "format": {format}}, nil, &raw)
	return raw, err
}

// Accounts lists the accounts (admin).
func (c *Client) Accounts(ctx context.Context) ([]auth.Account, error) {
	var l api.AccountList
	err := c.do(ctx, http.MethodGet, "/api/v1/accounts", nil, nil, &l)
	return l.Accounts, err
}

// AddAccount creates an account (admin); password may be "".
func (c *Client) AddAccount(ctx context.Context, req api.AccountRequest) (*auth.Account, error) {
	var a auth.Account
	if err := c.do(ctx, http.MethodPost, "/api/v1/accounts", nil, req, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// DisableAccount disables an account and every token of it (admin).
func (c *Client) DisableAccount(ctx context.Context, name string) (*auth.Account, error) {
	var a auth.Account
	if err := c.do(ctx, http.MethodPost, "/api/v1/accounts/"+url.PathEscape(name)+"/disable", nil, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// SetPassword sets an account's password (admin).
func (c *Client) SetPassword(ctx context.Context, name, password string) error {
	return c.do(ctx, http.MethodPut, "/api/v1/accounts/"+url.PathEscape(name)+"/password", nil, api.PasswordRequest{Password: password}, nil)
}

// Login exchanges a name and password for a new token (no token needed).
func (c *Client) Login(ctx context.Context, name, password string) (*api.NewToken, error) {
	var t api.NewToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/login", nil, api.LoginRequest{Name: name, Password: password}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}
