package abuse

import (
	"time"
)

// Decision statuses. Expired is never stored: a decision whose Expires
// has passed reads as expired.
const (
	StatusPending    = "pending"    // a block waiting for a supervisor's confirmation (the caller is restricted meanwhile)
	StatusActive     = "active"     // in force until Expires
	StatusLifted     = "lifted"     // a supervisor lifted it
	StatusSuperseded = "superseded" // a later decision replaced it
	StatusExpired    = "expired"
)

// Why a call was not counted.
const (
	ExemptAllow    = "allow_list" // a partner hotline
	ExemptRedial   = "redial"     // called back soon after a cut-off call
	ExemptFollowUp = "follow_up"  // keyed a case number
	ExemptOpenCase = "open_case"  // has an open case someone took up
	ExemptRefused  = "refused"    // blocked: refused calls do not count
)

// Decision is one measure taken against a caller, with everything that
// explains it. It is stored whole (abuse_decisions) and every change is in
// the event log and the audit trail.
type Decision struct {
	ID         string    `json:"id"`
	CallerHash string    `json:"caller_hash"`
	Caller     string    `json:"caller"` // masked, 138****8000
	Measure    Measure   `json:"measure"`
	Status     string    `json:"status"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
	// MaxCall is the longest call while restricted.
	MaxCall Duration `json:"max_call,omitempty"`

	// The rule that fired and what it counted.
	Rule    string   `json:"rule"`
	Why     string   `json:"why"`
	WhyZH   string   `json:"why_zh,omitempty"`
	Signal  Signal   `json:"signal"`
	Window  Duration `json:"window"`
	AtLeast int      `json:"at_least"`
	Count   int      `json:"count"`
	// Previous is the caller's last measure within the ladder memory: the
	// decision went one step above it.
	Previous   Measure   `json:"previous,omitempty"`
	PreviousAt time.Time `json:"previous_at,omitzero"`
	// Times of the calls (or long calls) counted, oldest first.
	CallTimes []time.Time `json:"call_times,omitempty"`
	// Flags counted, and when an agent dissuaded the caller (劝阻).
	Flags  []FlagRef `json:"flags,omitempty"`
	Warned time.Time `json:"warned,omitzero"`
	// CallID is the call during (or at the end of) which it was taken.
	CallID string `json:"call_id"`

	Reviews []Review  `json:"reviews,omitempty"`
	Updated time.Time `json:"updated"`
}

// FlagRef is one agent flag a decision counted. The note is read through
// Service.Evidence or Service.Show (audited), never stored in a decision.
type FlagRef struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Agent  string    `json:"agent,omitempty"`
	CallID string    `json:"call_id,omitempty"`
	Note   string    `json:"note,omitempty"` // only in Show/Evidence output
}

// Review actions.
const (
	ActionConfirm = "confirm"
	ActionShorten = "shorten"
	ActionLift    = "lift"
)

// Review is one supervisor action on a decision.
type Review struct {
	At      time.Time `json:"at"`
	Account string    `json:"account"`
	Role    string    `json:"role"`
	Action  string    `json:"action"`
	Reason  string    `json:"reason"`
	Expires time.Time `json:"expires,omitzero"` // shorten: the new end
}

// StatusAt is the decision's status at now (expired when past Expires).
func (d *Decision) StatusAt(now time.Time) string {
	if (d.Status == StatusActive || d.Status == StatusPending) && !now.Before(d.Expires) {
		return StatusExpired
	}
	return d.Status
}

func (d *Decision) clone() *Decision {
	if d == nil {
		return nil
	}
	c := *d
	c.CallTimes = append([]time.Time(nil), d.CallTimes...)
	c.Flags = append([]FlagRef(nil), d.Flags...)
	c.Reviews = append([]Review(nil), d.Reviews...)
	return &c
}
