// Package client is the Go client of hotlined's HTTP API (package api), used
// by hotlinectl and by tests.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/flows"
)

// Client talks to one hotlined.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client for the server at base (e.g. http://127.0.0.1:8080)
// that authenticates with token.
func New(base, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

// StatusError is an error answer the server gave (with the JSON body when it
// had one).
type StatusError struct {
	Status int
	Body   api.Error
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("server: %s (%d %s)", e.Body.Message, e.Status, e.Body.Code)
}

// do sends a request and decodes a JSON answer into out (unless nil). body
// is sent as JSON unless it is a []byte (sent as YAML).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/yaml"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		se := &StatusError{Status: resp.StatusCode}
		if json.Unmarshal(data, &se.Body) != nil || se.Body.Message == "" {
			se.Body.Message = strings.TrimSpace(string(data))
			if se.Body.Message == "" {
				se.Body.Message = resp.Status
			}
		}
		return se
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], data...)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: answer: %w", method, path, err)
	}
	return nil
}

func flowPath(id string, rest ...string) string {
	p := "/api/v1/flows/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

func versionQuery(name string, v int) url.Values {
	if v == 0 {
		return nil
	}
	return url.Values{name: {strconv.Itoa(v)}}
}

// ListFlows lists the flows.
func (c *Client) ListFlows(ctx context.Context) ([]flows.Summary, error) {
	var l api.FlowList
	err := c.do(ctx, http.MethodGet, "/api/v1/flows", nil, nil, &l)
	return l.Flows, err
}

// GetFlow returns a version with its source (0: the active one, else the
// latest draft).
func (c *Client) GetFlow(ctx context.Context, id string, version int) (*flows.Version, error) {
	var v flows.Version
	if err := c.do(ctx, http.MethodGet, flowPath(id), versionQuery("version", version), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Versions lists a flow's versions, newest first.
func (c *Client) Versions(ctx context.Context, id string) ([]flows.Version, error) {
	var l api.VersionList
	err := c.do(ctx, http.MethodGet, flowPath(id, "versions"), nil, nil, &l)
	return l.Versions, err
}

// SaveDraft stores src as a new draft version and returns it with its
// validation problems.
func (c *Client) SaveDraft(ctx context.Context, id string, src []byte, comment string) (*api.Validation, error) {
	var v api.Validation
	if err := c.do(ctx, http.MethodPost, flowPath(id, "versions"), nil, api.SourceRequest{Source: string(src), Comment: comment}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Validate validates flow source against the server's prompts,
// destinations, queues and calendars.
func (c *Client) Validate(ctx context.Context, src []byte) (*api.Validation, error) {
	var v api.Validation
	if err := c.do(ctx, http.MethodPost, "/api/v1/flows/validate", nil, api.SourceRequest{Source: string(src)}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ValidateStored validates a stored version (0: the latest).
func (c *Client) ValidateStored(ctx context.Context, id string, version int) (*api.Validation, error) {
	var v api.Validation
	if err := c.do(ctx, http.MethodPost, flowPath(id, "validate"), versionQuery("version", version), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Publish makes a version active (0: the latest). An invalid version gives
// a *StatusError with code invalid_flow and the problems.
func (c *Client) Publish(ctx context.Context, id string, version int) (*flows.Version, error) {
	var v flows.Version
	if err := c.do(ctx, http.MethodPost, flowPath(id, "publish"), nil, api.VersionRequest{Version: version}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Rollback makes an earlier published version active again (0: the
// previous one).
func (c *Client) Rollback(ctx context.Context, id string, version int) (*flows.Version, error) {
	var v flows.Version
	if err := c.do(ctx, http.MethodPost, flowPath(id, "rollback"), nil, api.VersionRequest{Version: version}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Diff returns the unified diff between two versions (0: the server's
// defaults, the active version and the latest).
func (c *Client) Diff(ctx context.Context, id string, from, to int) (*api.Diff, error) {
	q := url.Values{}
	if from != 0 {
		q.Set("from", strconv.Itoa(from))
	}
	if to != 0 {
		q.Set("to", strconv.Itoa(to))
	}
	var d api.Diff
	if err := c.do(ctx, http.MethodGet, flowPath(id, "diff"), q, nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// History returns a flow's changes, oldest first.
func (c *Client) History(ctx context.Context, id string) ([]flows.Event, error) {
	var h api.History
	err := c.do(ctx, http.MethodGet, flowPath(id, "history"), nil, nil, &h)
	return h.History, err
}

// Simulate runs a simulated call on the server and returns its JSON answer
// (an ivr.SimResult).
func (c *Client) Simulate(ctx context.Context, req api.SimulateRequest) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, "/api/v1/flows/simulate", nil, req, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Tokens lists the API tokens (admin).
func (c *Client) Tokens(ctx context.Context) ([]auth.Token, error) {
	var l api.TokenList
	err := c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, &l)
	return l.Tokens, err
}

// CreateToken makes a token (admin); the answer carries its secret, shown
// once.
func (c *Client) CreateToken(ctx context.Context, name string, role auth.Role) (*api.NewToken, error) {
	var t api.NewToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, api.TokenRequest{Name: name, Role: role}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// RevokeToken makes a token unusable (admin).
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(id), nil, nil, nil)
}
