package ari

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Errors that ARI status codes map to. Test with errors.Is: a 404 from
// hanging up a channel that is already gone is normal and
// errors.Is(err, ErrNotFound) lets the caller ignore it.
var (
	ErrBadRequest    = errors.New("ari: bad request")           // 400
	ErrUnauthorized  = errors.New("ari: unauthorized")          // 401, 403
	ErrNotFound      = errors.New("ari: not found")             // 404
	ErrConflict      = errors.New("ari: conflict")              // 409: e.g. channel not in Stasis
	ErrPrecondition  = errors.New("ari: precondition failed")   // 412: e.g. channel in invalid state
	ErrUnprocessable = errors.New("ari: unprocessable")         // 422: e.g. endpoint not found
	ErrServer        = errors.New("ari: asterisk server error") // 5xx
	ErrMissingParam  = errors.New("ari: missing required parameter")
)

// Error is an ARI request that got a non-2xx status. Path is the request
// path without its query: queries may carry numbers (callerId, endpoint),
// which are personal data and must not reach logs through errors.
type Error struct {
	Method  string
	Path    string
	Status  int
	Message string // Asterisk's {"message": "..."} when there was one
}

func (e *Error) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("ari: %s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
	}
	return fmt.Sprintf("ari: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
}

// Is maps the status code to the sentinel errors above.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrPrecondition:
		return e.Status == http.StatusPreconditionFailed
	case ErrUnprocessable:
		return e.Status == http.StatusUnprocessableEntity
	case ErrServer:
		return e.Status >= 500
	}
	return false
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is Asterisk's HTTP server, e.g. "http://127.0.0.1:8088"; "/ari"
	// is appended unless the path already ends in it.
	URL string
	// User and Password are an ari.conf user (HTTP basic auth).
	User, Password string
	// RequestTimeout bounds each REST request (default 5 s) when the
	// caller's context has no earlier deadline.
	RequestTimeout time.Duration
	// HTTPClient is used for REST requests (default: a client with no
	// overall timeout; the per-request context does the bounding).
	HTTPClient *http.Client
}

// Client is a typed ARI client. Its REST methods (zz_generated.go) are
// safe for concurrent use.
type Client struct {
	base    *url.URL // .../ari
	user    string
	pass    string
	timeout time.Duration
	http    *http.Client
}

// NewClient checks cfg and returns a Client. It makes no request.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ari: url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("ari: url %q: scheme must be http or https", cfg.URL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/ari") {
		u.Path += "/ari"
	}
	c := &Client{base: u, user: cfg.User, pass: cfg.Password, timeout: cfg.RequestTimeout, http: cfg.HTTPClient}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	return c, nil
}

// OperationInfo describes one spec operation the Client implements.
type OperationInfo struct {
	Resource, Nickname, Method, Path, GoMethod string
}

// do sends one request. path is relative to /ari and already escaped; body
// (if not nil) is sent as a JSON object; out (if not nil) receives the JSON
// reply.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body map[string]any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.base
	u.RawPath = u.Path + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("ari: %s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("ari: %s %s: %w", method, path, err)
	}
	req.SetBasicAuth(c.user, c.pass)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error quotes the full URL, query included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("ari: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("ari: %s %s: read reply: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Method: method, Path: path, Status: resp.StatusCode}
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &m) == nil {
			e.Message = m.Message
		}
		return e
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("ari: %s %s: decode reply: %w", method, path, err)
	}
	return nil
}

// Time is an ARI Date. Asterisk writes "2026-11-28T03:08:47.287+0000"
// (no colon in the offset), which is not RFC 3339; Time reads that and
// RFC 3339, and writes Asterisk's form back.
type Time struct{ time.Time }

const ariTimeLayout = "2006-01-02T15:04:05.000-0700"

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("ari: date: %w", err)
	}
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	for _, layout := range []string{ariTimeLayout, "2006-01-02T15:04:05.999999999-0700", time.RFC3339Nano} {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v
			return nil
		}
	}
	return fmt.Errorf("ari: date %q: unknown format", s)
}

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte(`""`), nil
	}
	return json.Marshal(t.Format(ariTimeLayout))
}

// eventsURL is the events WebSocket of the spec's events.eventWebsocket
// operation: GET /events?app=<app>&subscribeAll=false. subscribeAll=false
// (the default, sent explicitly) limits events to the channels and bridges
// the app owns or subscribed to.
func (c *Client) eventsURL(app string) *url.URL {
	u := *c.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path += "/events"
	u.RawPath = ""
	u.RawQuery = url.Values{"app": {app}, "subscribeAll": {"false"}}.Encode()
	return &u
}
