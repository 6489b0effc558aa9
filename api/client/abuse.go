package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/cq12345/hotline/abuse"
	"github.com/cq12345/hotline/api"
)

func abusePath(id string, rest ...string) string {
	p := "/api/v1/abuse/decisions/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// AbuseDecisions lists article-26 decisions, newest first (queue: only
// those waiting for a supervisor).
func (c *Client) AbuseDecisions(ctx context.Context, queue bool, status string, limit int) ([]*abuse.Decision, error) {
	q := url.Values{}
	if queue {
		q.Set("queue", "1")
	}
	if status != "" {
		q.Set("status", status)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var l api.AbuseList
	err := c.do(ctx, http.MethodGet, "/api/v1/abuse/decisions", q, nil, &l)
	return l.Decisions, err
}

// AbuseSearch lists one caller's decisions (the number goes in the body).
func (c *Client) AbuseSearch(ctx context.Context, caller, status string, limit int) ([]*abuse.Decision, error) {
	var l api.AbuseList
	err := c.do(ctx, http.MethodPost, "/api/v1/abuse/decisions/search", nil, api.AbuseSearch{Caller: caller, Status: status, Limit: limit}, &l)
	return l.Decisions, err
}

// AbuseShow returns a decision with its explanation; with a reason, also
// the caller's calls and the flag notes (audited).
func (c *Client) AbuseShow(ctx context.Context, id, revealReason string) (*api.AbuseView, error) {
	var q url.Values
	if revealReason != "" {
		q = url.Values{"reveal": {"notes"}, "reason": {revealReason}}
	}
	var v api.AbuseView
	err := c.do(ctx, http.MethodGet, abusePath(id), q, nil, &v)
	return &v, err
}

// AbuseReview confirms, shortens or lifts a decision.
func (c *Client) AbuseReview(ctx context.Context, id string, r abuse.ReviewRequest) (*abuse.Decision, error) {
	var d abuse.Decision
	err := c.do(ctx, http.MethodPost, abusePath(id, "review"), nil, r, &d)
	return &d, err
}

// AbuseEvidence downloads the evidence pack (format json or csv) as bytes.
func (c *Client) AbuseEvidence(ctx context.Context, id, format, reason string) ([]byte, error) {
	var raw json.RawMessage
	err := c.do(ctx, http.MethodGet, abusePath(id, "evidence"), url.Values{"format": {format}, "reason": {reason}}, nil, &raw)
	return raw, err
}

// AbuseFlag flags a call (harassment, insult, threat) or records a
// dissuasion (warned).
func (c *Client) AbuseFlag(ctx context.Context, callID, kind, note string) (*api.AbuseFlagResult, error) {
	var r api.AbuseFlagResult
	err := c.do(ctx, http.MethodPost, "/api/v1/abuse/flags", nil, api.AbuseFlag{CallID: callID, Kind: kind, Note: note}, &r)
	return &r, err
}

// AbusePolicyValidate checks a policy file on the server.
func (c *Client) AbusePolicyValidate(ctx context.Context, src []byte) (*api.AbuseValidation, error) {
	var v api.AbuseValidation
	err := c.do(ctx, http.MethodPost, "/api/v1/abuse/policy/validate", nil, src, &v)
	return &v, err
}
