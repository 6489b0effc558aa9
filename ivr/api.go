package ivr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cq12345/hotline/prompts"
)

// CalendarSet answers whether a calendar (business hours, public holidays,
// 调休 working weekend days) is open at an instant. routing.Calendars
// implements it; it is defined here, where it is used.
type CalendarSet interface {
	// Has reports whether the calendar id is defined.
	Has(id string) bool
	// IsOpen reports whether the calendar is open at t. An error (e.g. no
	// holiday data for t's year) comes with the best answer available.
	IsOpen(id string, t time.Time) (bool, error)
}

// Env is what a flow is validated against: the prompts that exist and the
// destinations, queues and calendars that are configured.
type Env struct {
	// Catalogue lists the prompts; every prompt a flow plays must exist in
	// every language the flow offers.
	Catalogue *prompts.Catalogue
	// Destinations are the ids a transfer node may name ("12315", "12333",
	// "edu-bureau", "sichuan-12345", ...). Never raw numbers.
	Destinations map[string]bool
	// Queues are the 12345 agent queue ids ("general", "complaints", ...).
	Queues map[string]bool
	// Calendars are the calendars branch nodes may test.
	Calendars CalendarSet
	// Includes resolves the sub-flows an include node names (by id: the
	// file "<id>.yaml" is read from it). Nil means includes are refused.
	Includes IncludeResolver

	// MaxKeyPresses, when above 0, makes a destination or queue that needs
	// more menu/language key presses than this a problem (GB/T 33358: no
	// deep menus; 2 for the 12345 flows).
	MaxKeyPresses int
	// PersonEscape makes it a problem when a menu's key 0 or its running
	// out of retries, a language or survey node's key 0, or a collect's
	// running out of retries does not lead to a queue (a person) without
	// further input.
	PersonEscape bool
}

// IncludeResolver returns the YAML source of a sub-flow by id.
type IncludeResolver interface {
	Include(id string) ([]byte, error)
}

// Problem is one thing wrong with a flow, located by node path and line.
type Problem struct {
	// Path is the node path, e.g. "nodes.main.options.1".
	Path string `json:"path"`
	// Line is the 1-based line in the YAML source (0 when unknown).
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Path, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.Path, p.Message)
}

// ValidationError lists every problem found in a flow. Load returns it (as
// error) and never a usable flow alongside it.
type ValidationError struct {
	Problems []Problem `json:"problems"`
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ivr: flow invalid (%d problems)", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// AsValidationError returns the *ValidationError inside err, if any.
func AsValidationError(err error) (*ValidationError, bool) {
	var ve *ValidationError
	ok := errors.As(err, &ve)
	return ve, ok
}

// SimOptions drive a simulated call.
type SimOptions struct {
	// Caller is the calling number (masked in the result).
	Caller string
	// At is the simulated clock at the start of the call.
	At time.Time
	// Digits: each element is the keys pressed at one input point, in order,
	// e.g. "1", "3", "20261128000123#". "" means no key at that point (the
	// caller waits for the timeout); after the last element the caller
	// presses nothing.
	Digits []string
	// Lang preselects the language ("" = the flow's default).
	Lang string
	// Dialled is the service number dialled ("" = "12345").
	Dialled string
	// RouterOutcome is what the simulated router answers to every decision:
	// "returned" (default: the agent leg ends, the caller is back in the flow),
	// "left" (the call was handed over) or "failed".
	RouterOutcome string
	// Cases looks case numbers up; nil finds every case (status
	// "processing").
	Cases CaseLookup `json:"-"`
	// PromptDuration, when set, makes each prompt take its real length on
	// the simulated clock (see LibraryDurations); otherwise prompts take
	// no time and only waiting for input does.
	PromptDuration func(key string) time.Duration `json:"-"`
}

// LibraryDurations gives each audio key its length in lib (20 ms frames).
func LibraryDurations(lib *prompts.Library) func(key string) time.Duration {
	return func(key string) time.Duration {
		frames, _ := lib.Frames(key, prompts.PCMA)
		return time.Duration(len(frames)) * 20 * time.Millisecond
	}
}

// SimResult is what a simulation prints (JSON-able).
type SimResult struct {
	Flow      string     `json:"flow"`
	Caller    string     `json:"caller"` // masked
	At        time.Time  `json:"at"`
	Lang      string     `json:"lang"`
	Steps     []Step     `json:"steps"`
	Decisions []Decision `json:"decisions,omitempty"`
	// Final is the last routing decision or the hang-up.
	Final Action `json:"final"`
	// End says how the call ended: "hangup" (by the flow), "caller-hangup",
	// "handed-over" (the router took the call) or "error".
	End string `json:"end"`
	// Prompts are all audio keys played, in order.
	Prompts []string `json:"prompts"`
	// Survey is the satisfaction level recorded (0 = none).
	Survey int `json:"survey,omitempty"`
	// Ended is the simulated clock at the end of the call.
	Ended time.Time `json:"ended"`
}

// Action is a final action of a call.
type Action struct {
	Kind string `json:"kind"` // "transfer", "queue", "hangup", "caller-hangup", "callback", "message"
	ID   string `json:"id,omitempty"`
}

// Simulate runs f with the same interpreter real calls use, through a
// simulated Call whose clock starts at opts.At.
func Simulate(ctx context.Context, f *Flow, env Env, opts SimOptions) (*SimResult, error) {
	return simulate(ctx, f, env, opts)
}
