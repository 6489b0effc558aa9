package routing

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AgentState is what an agent is doing, as supervisors see it.
type AgentState string

const (
	LoggedOut AgentState = "logged-out"
	Available AgentState = "available"
	Ringing   AgentState = "ringing"
	OnCall    AgentState = "on-call"
	// WrapUp is timed after-call work: shown as its own state (app_queue
	// shows it as "available", a long-standing complaint).
	WrapUp AgentState = "wrap-up"
	Paused AgentState = "paused"
)

// PauseNoAnswer is the pause reason the ACD sets after MaxMisses calls in a
// row rang unanswered.
const PauseNoAnswer = "no-answer"

// DefaultRealm is the SIP digest realm of agent credentials.
const DefaultRealm = "hotline"

// Skills are what an agent can handle, or what a queue asks for.
type Skills struct {
	Appeals   []string `yaml:"appeals,omitempty" json:"appeals,omitempty"`     // 咨询, 投诉, … ("consultation", "complaint", …)
	Domains   []string `yaml:"domains,omitempty" json:"domains,omitempty"`     // "market-supervision", "education", …
	Languages []string `yaml:"languages,omitempty" json:"languages,omitempty"` // "zh-CN", "en"
}

// covers reports whether s has every skill in need.
func (s Skills) covers(need Skills) bool {
	for _, a := range need.Appeals {
		if !slices.Contains(s.Appeals, a) {
			return false
		}
	}
	for _, d := range need.Domains {
		if !slices.Contains(s.Domains, d) {
			return false
		}
	}
	for _, l := range need.Languages {
		if !s.speaks(l) {
			return false
		}
	}
	return true
}

// speaks: an agent with no languages listed speaks zh-CN only.
func (s Skills) speaks(lang string) bool {
	if len(s.Languages) == 0 {
		return lang == "zh-CN"
	}
	return slices.Contains(s.Languages, lang)
}

// Agent is an agent account and its live state. The SIP password is never
// kept: only its digest HA1 values (RFC 7616 section 3.4.2), which is what
// a registrar needs to check a REGISTER.
type Agent struct {
	// ID is the agent's number (工号), digits; callers hear it.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Extension is the SIP user name of the agent's phone.
	Extension string `json:"extension"`
	Skills    Skills `json:"skills"`

	// Presence is what the agent (or a supervisor) chose: LoggedOut,
	// Available or Paused (with PauseReason).
	Presence    AgentState `json:"presence"`
	PauseReason string     `json:"pause_reason,omitempty"`
	// Activity is what the ACD does with the agent: Ringing, OnCall or ""
	// (valid while the reservation holds).
	Activity      AgentState `json:"-"`
	ReservedBy    string     `json:"-"`
	ReservedUntil time.Time  `json:"-"`
	WrapUntil     time.Time  `json:"wrap_until,omitzero"`
	// IdleSince is when the agent last became free (longest-idle).
	IdleSince time.Time `json:"idle_since,omitzero"`
	// Missed counts calls in a row that rang unanswered.
	Missed int `json:"missed"`
	// Calls counts calls answered (fewest-calls).
	Calls int `json:"calls"`
	// Case is the case number of the call the agent is on.
	Case      string    `json:"case,omitempty"`
	Since     time.Time `json:"since"` // of the presence
	CreatedAt time.Time `json:"created_at"`
}

// State is the agent's state at now: a live reservation shows as ringing
// or on call, then a running wrap-up, then the presence. A reservation left
// by a crashed process shows nothing once expired.
func (a *Agent) State(now time.Time) AgentState {
	if a.ReservedBy != "" && now.Before(a.ReservedUntil) && a.Activity != "" {
		return a.Activity
	}
	if now.Before(a.WrapUntil) && a.Presence != LoggedOut {
		return WrapUp
	}
	return a.Presence
}

// Free reports whether the ACD may offer the agent a call at now.
func (a *Agent) Free(now time.Time) bool {
	return a.Presence == Available && (a.ReservedBy == "" || !now.Before(a.ReservedUntil)) && !now.Before(a.WrapUntil)
}

// StateLabel is the state as figures show it: "paused:<reason>" for a
// pause, so that each reason counts on its own.
func (a *Agent) StateLabel(now time.Time) string {
	s := a.State(now)
	if s == Paused {
		r := a.PauseReason
		if r == "" {
			r = "unspecified"
		}
		return string(Paused) + ":" + r
	}
	return string(s)
}

// NewAgent is what an admin gives to create an agent.
type NewAgent struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Extension string `json:"extension"`
	// Password is the SIP password; only its HA1 is stored.
	Password string `json:"password"`
	Skills   Skills `json:"skills"`
	// Presence at creation: LoggedOut (default), Available or Paused. An
	// agent created paused is never rung (no intermediate available state,
	// unlike AddQueueMember + PauseQueueMember in app_queue).
	Presence    AgentState `json:"presence,omitempty"`
	PauseReason string     `json:"pause_reason,omitempty"`
}

// Validate checks a new agent.
func (n *NewAgent) Validate() error {
	switch {
	case !digits(n.ID, 1, 12):
		return fmt.Errorf("%w: id (工号) %q: want 1 to 12 digits", ErrBadAgent, n.ID)
	case !digits(n.Extension, 2, 12):
		return fmt.Errorf("%w: extension %q: want 2 to 12 digits", ErrBadAgent, n.Extension)
	case strings.TrimSpace(n.Name) == "":
		return fmt.Errorf("%w: name is required", ErrBadAgent)
	case len(n.Password) < 8:
		return fmt.Errorf("%w: password: at least 8 characters", ErrBadAgent)
	}
	switch n.Presence {
	case "", LoggedOut, Available:
		if n.PauseReason != "" {
			return fmt.Errorf("%w: pause_reason without presence paused", ErrBadAgent)
		}
	case Paused:
	default:
		return fmt.Errorf("%w: presence %q: want logged-out, available or paused", ErrBadAgent, n.Presence)
	}
	return nil
}

func digits(s string, min, max int) bool {
	return len(s) >= min && len(s) <= max && strings.Trim(s, "0123456789") == ""
}

// Credentials are what a SIP registrar needs to check an agent's REGISTER
// (digest, RFC 7616): HA1 = H(username ":" realm ":" password) with MD5 and
// with SHA-256.
type Credentials struct {
	AgentID   string
	Username  string // the extension
	Realm     string
	HA1MD5    string
	HA1SHA256 string
}

// HA1 computes the digest HA1 for an algorithm ("MD5" or "SHA-256").
func HA1(algorithm, username, realm, password string) string {
	s := username + ":" + realm + ":" + password
	if strings.EqualFold(algorithm, "SHA-256") {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])
	}
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
