package ivr

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"
)

// Decision is a routing decision the flow made: where the caller goes.
type Decision struct {
	// Kind is "transfer" (a destination by id) or "queue" (a 12345 queue).
	Kind string `json:"kind"`
	// ID is the destination or queue id, never a raw number.
	ID string `json:"id"`
	// Node is the flow node that decided.
	Node string `json:"node"`
	// Lang is the caller's language, for the agent or line.
	Lang string `json:"lang,omitempty"`
	// Vars are the flow's variables (appeal type, domain, case number...)
	// for the agent's screen; the caller's number is not among them.
	Vars map[string]string `json:"vars,omitempty"`
}

// Router outcome statuses.
const (
	// OutcomeReturned: the leg ended and the caller is back in the flow
	// (e.g. the agent hung up first); the flow goes on at the node's next.
	OutcomeReturned = "returned"
	// OutcomeLeft: the call was handed over (blind transfer, or the caller
	// hung up during the leg); the flow stops without hanging up.
	OutcomeLeft = "left"
	// OutcomeFailed: the destination or queue could not take the call; the
	// flow goes on at on_fail (or next).
	OutcomeFailed = "failed"
)

// Outcome is what became of a routing decision.
type Outcome struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Router carries out routing decisions (the routing issue implements it on
// each plane). Route blocks while the caller is on the routed leg.
type Router interface {
	Route(ctx context.Context, call Call, d Decision) (Outcome, error)
}

// CaseInfo is what a case look-up tells the flow.
type CaseInfo struct {
	Number string
	// Status is a short code ("received", "processing", "closed"); a
	// case_lookup node maps it to a prompt.
	Status string
}

// CaseLookup finds a case by its number (the cases issue implements it).
type CaseLookup interface {
	LookupCase(ctx context.Context, number string) (CaseInfo, bool, error)
}

// SurveyResponse is one satisfaction rating (好差评) from a caller.
type SurveyResponse struct {
	CallID string    `json:"call_id"`
	Flow   string    `json:"flow"`
	Node   string    `json:"node"`
	Level  int       `json:"level"` // 1 非常满意 … 5 非常不满意
	Label  string    `json:"label"`
	After  *Decision `json:"after,omitempty"` // the leg that was rated
	At     time.Time `json:"at"`
}

// SurveyRecorder stores satisfaction ratings.
type SurveyRecorder interface {
	RecordSurvey(ctx context.Context, r SurveyResponse) error
}

// CallbackRequest asks for the caller to be called back.
type CallbackRequest struct {
	CallID string `json:"call_id"`
	// Number is the caller's number: personal data, never log it unmasked.
	Number string            `json:"-"`
	Flow   string            `json:"flow"`
	Node   string            `json:"node"`
	Vars   map[string]string `json:"vars,omitempty"`
	At     time.Time         `json:"at"`
}

// CallbackRequester registers callback requests (回拨).
type CallbackRequester interface {
	RequestCallback(ctx context.Context, r CallbackRequest) error
}

// RecordRequest asks for the caller's message to be recorded.
type RecordRequest struct {
	CallID      string
	Flow, Node  string
	MaxDuration time.Duration
	Terminator  byte
}

// Recording is a recorded message.
type Recording struct {
	ID       string        `json:"id"`
	Duration time.Duration `json:"duration"`
}

// Recorder records a caller's message. No plane records yet: the sip plane
// gains recording later (it will implement RecordingCall); until then
// CallRecorder answers ErrRecordingUnsupported and the flow takes on_fail.
type Recorder interface {
	Record(ctx context.Context, call Call, r RecordRequest) (Recording, error)
}

// RecordingCall is a Call whose plane can record the caller.
type RecordingCall interface {
	Call
	Record(ctx context.Context, r RecordRequest) (Recording, error)
}

// ErrRecordingUnsupported reports that the call's plane cannot record.
var ErrRecordingUnsupported = errors.New("ivr: recording not supported by this media plane")

// CallRecorder records through the call's plane when it is a RecordingCall.
type CallRecorder struct{}

// Record implements Recorder.
func (CallRecorder) Record(ctx context.Context, call Call, r RecordRequest) (Recording, error) {
	if rc, ok := call.(RecordingCall); ok {
		return rc.Record(ctx, r)
	}
	return Recording{}, ErrRecordingUnsupported
}

// MemoryCases is an in-memory CaseLookup, until the cases store exists.
type MemoryCases struct {
	mu    sync.Mutex
	cases map[string]CaseInfo
}

// NewMemoryCases returns a look-up knowing the given cases.
func NewMemoryCases(cases ...CaseInfo) *MemoryCases {
	m := &MemoryCases{cases: map[string]CaseInfo{}}
	for _, c := range cases {
		m.cases[c.Number] = c
	}
	return m
}

// Add adds or replaces a case.
func (m *MemoryCases) Add(c CaseInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cases[c.Number] = c
}

// LookupCase implements CaseLookup.
func (m *MemoryCases) LookupCase(_ context.Context, number string) (CaseInfo, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.cases[number]
	return c, ok, nil
}

// MemorySurveys is an in-memory SurveyRecorder.
type MemorySurveys struct {
	mu        sync.Mutex
	responses []SurveyResponse
}

// RecordSurvey implements SurveyRecorder.
func (m *MemorySurveys) RecordSurvey(_ context.Context, r SurveyResponse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.responses = append(m.responses, r)
	return nil
}

// Responses returns a copy of the recorded responses.
func (m *MemorySurveys) Responses() []SurveyResponse {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]SurveyResponse(nil), m.responses...)
}

// MemoryCallbacks is an in-memory CallbackRequester.
type MemoryCallbacks struct {
	mu       sync.Mutex
	requests []CallbackRequest
}

// RequestCallback implements CallbackRequester.
func (m *MemoryCallbacks) RequestCallback(_ context.Context, r CallbackRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.Vars = maps.Clone(r.Vars)
	m.requests = append(m.requests, r)
	return nil
}

// Requests returns a copy of the recorded requests.
func (m *MemoryCallbacks) Requests() []CallbackRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]CallbackRequest(nil), m.requests...)
}
