// Package cases holds the case (工单) that every call opens: its model and
// lifecycle, case numbers, due dates in working days, the protection of the
// caller's number and of free-text notes (article 22), the audit trail, the
// Store interface with one SQL implementation for SQLite and PostgreSQL, and
// the Durable wrapper that journals writes locally while the store is down so
// that no case of an answered call is lost (article 25).
//
// The call path uses Store.CreateForCall when a call is answered (before the
// greeting ends) and Store.AppendEvent as the call goes on. A case's summary
// columns (queue, agent, outcome, status, …) are kept up to date by the
// events, so a write is always one append that is idempotent by its id.
package cases

import (
	"fmt"
	"time"
)

// AppealType is the kind of appeal (诉求类型).
type AppealType string

const (
	AppealConsultation AppealType = "consultation" // 咨询
	AppealHelp         AppealType = "help"         // 求助
	AppealComplaint    AppealType = "complaint"    // 投诉
	AppealReport       AppealType = "report"       // 举报
	AppealSuggestion   AppealType = "suggestion"   // 建议
)

// AppealTypes lists the valid appeal types.
var appealTypes = map[AppealType]string{
	AppealConsultation: "咨询", AppealHelp: "求助", AppealComplaint: "投诉",
	AppealReport: "举报", AppealSuggestion: "建议",
}

// Valid reports whether t is one of the five appeal types.
func (t AppealType) Valid() bool { _, ok := appealTypes[t]; return ok }

// Chinese returns the type's Chinese name (咨询, 求助, …).
func (t AppealType) Chinese() string { return appealTypes[t] }

// Status is where a case is in its lifecycle.
type Status string

const (
	StatusOpened         Status = "opened"
	StatusRouted         Status = "routed"
	StatusInProgress     Status = "in_progress"
	StatusHandled        Status = "handled"
	StatusReplied        Status = "replied"
	StatusClosed         Status = "closed"
	StatusTransferredOut Status = "transferred_out" // to a partner hotline (川渝互转), with its reference
)

// statusRank orders the main line opened → … → closed.
var statusRank = map[Status]int{
	StatusOpened: 0, StatusRouted: 1, StatusInProgress: 2, StatusHandled: 3,
	StatusReplied: 4, StatusClosed: 5,
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	_, ok := statusRank[s]
	return ok || s == StatusTransferredOut
}

// CanMove reports whether a case may go from status s to status to. Along
// the main line a case only moves forward (steps may be skipped: a
// consultation answered by the agent goes from in progress to closed). A case
// that is not yet handled may be transferred out; a transferred-out case may
// only be closed (when the partner reports it done).
func (s Status) CanMove(to Status) bool {
	if !to.Valid() || s == to {
		return false
	}
	if s == StatusTransferredOut {
		return to == StatusClosed
	}
	if to == StatusTransferredOut {
		return statusRank[s] < statusRank[StatusHandled]
	}
	return statusRank[to] > statusRank[s]
}

// Outcome is how the call ended.
type Outcome string

const (
	OutcomeSelfService           Outcome = "self_service"            // the IVR answered the caller
	OutcomeTransferred           Outcome = "transferred"             // to a specialised line or partner (see Destination)
	OutcomeAnsweredByAgent       Outcome = "answered_by_agent"       // a 12345 agent took it
	OutcomeAbandoned             Outcome = "abandoned"               // caller hung up after answer, before an agent
	OutcomeAbandonedBeforeAnswer Outcome = "abandoned_before_answer" // caller cancelled before the call was answered
	OutcomeRefusedAbusive        Outcome = "refused_abusive"         // article 26 measure
	OutcomeCallbackRequested     Outcome = "callback_requested"      // no agent free: the caller asked to be called back
	OutcomeMessageLeft           Outcome = "message_left"            // no agent free: the caller left a message
)

// PathStep is one IVR node the call went through, with the digits keyed there.
type PathStep struct {
	At     time.Time `json:"at"`
	Node   string    `json:"node"`
	Digits string    `json:"digits,omitempty"`
}

// Case is one call's record. Caller data is kept sealed: CallerMasked is the
// only form of the number a Case carries in clear; the full number is read
// through a Revealer, which writes an audit entry per read.
type Case struct {
	ID     string `json:"id"`     // opaque (UUIDv7), stable across stores and journal
	Number string `json:"number"` // YYYYMMDD-NNNNNN; empty while it is only journaled without a reserved number
	CallID string `json:"call_id"`

	CallerMasked string `json:"caller"`      // 138****8000
	CallerHash   string `json:"caller_hash"` // keyed hash of the normalised number, for look-ups
	CallerSealed string `json:"-"`           // AES-GCM ciphertext, see KeyRing

	Dialled string `json:"dialled"`
	Plane   string `json:"plane"`

	Started  time.Time `json:"started"`
	Answered time.Time `json:"answered,omitzero"` // zero: never answered
	Ended    time.Time `json:"ended,omitzero"`

	Path []PathStep `json:"path,omitempty"` // filled by Get, not by List

	AppealType  AppealType    `json:"appeal_type,omitempty"`
	Domain      string        `json:"domain,omitempty"`
	Language    string        `json:"language,omitempty"`
	Destination string        `json:"destination,omitempty"` // specialised line or partner the call went to
	Queue       string        `json:"queue,omitempty"`
	Agent       string        `json:"agent,omitempty"`
	Wait        time.Duration `json:"wait_ns,omitempty"` // answer → agent answer (or hang-up)
	Talk        time.Duration `json:"talk_ns,omitempty"`
	Outcome     Outcome       `json:"outcome,omitempty"`
	Survey      int           `json:"survey,omitempty"` // 1 (非常不满意) … 5 (非常满意); 0: none

	Unit       string    `json:"unit,omitempty"` // handling unit
	Status     Status    `json:"status"`
	PartnerRef string    `json:"partner_ref,omitempty"`
	FollowUpOf string    `json:"follow_up_of,omitempty"` // id of the earlier case this call follows up / was merged into
	Due        string    `json:"due,omitempty"`          // YYYY-MM-DD (Asia/Shanghai), last working day to close
	Closed     time.Time `json:"closed,omitzero"`

	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// String describes the case for logs: masked, never the full number.
func (c *Case) String() string {
	return fmt.Sprintf("case %s (%s) caller %s status %s", c.Number, c.ID, c.CallerMasked, c.Status)
}

// NewCall is what the call path knows when it opens a case.
type NewCall struct {
	CallID   string
	Caller   string // full number; personal data: never log it (String masks it)
	Dialled  string
	Plane    string
	Started  time.Time
	Answered time.Time // zero for a call abandoned before answer
	Language string

	// CaseID and Number are normally left empty: the store assigns them.
	// The Durable wrapper sets them for a case it journals (Number from a
	// block it reserved from the store, or empty).
	CaseID string
	Number string
	// Created is when the case was opened; zero means when it reaches
	// the store. Durable sets it, so that a case replayed from the
	// journal keeps the time it was opened and its created event stays
	// before the events that followed it.
	Created time.Time
}

// String describes the call for logs, masked.
func (n NewCall) String() string {
	return fmt.Sprintf("call %s from %s to %s", n.CallID, MaskCaller(n.Caller), n.Dialled)
}

// EventKind names what an event records.
type EventKind string

const (
	EventCreated  EventKind = "created"  // written by CreateForCall
	EventPath     EventKind = "path"     // an IVR node and its digits
	EventClassify EventKind = "classify" // appeal type, domain, language, unit
	EventRouted   EventKind = "routed"   // destination or queue (and agent)
	EventEnded    EventKind = "ended"    // end time, outcome, wait, talk, survey
	EventNote     EventKind = "note"     // free-text note (sealed at rest)
	EventStatus   EventKind = "status"   // status change (and partner reference)
	EventLink     EventKind = "link"     // follow-up of / merged into another case
	EventSurvey   EventKind = "survey"   // survey score given after the call
)

// Event is one append-only entry of a case's history. Only the fields that
// belong to its Kind are set. Applying an event also updates the case's
// summary (e.g. an ended event sets Ended, Outcome, Wait, Talk).
type Event struct {
	ID     string    `json:"id"` // idempotency key; NewEvent sets a UUIDv7
	CaseID string    `json:"case_id"`
	Seq    int64     `json:"seq,omitempty"` // set by the store: order of the case's events
	Kind   EventKind `json:"kind"`
	At     time.Time `json:"at"`

	Node   string `json:"node,omitempty"`
	Digits string `json:"digits,omitempty"`

	AppealType AppealType `json:"appeal_type,omitempty"`
	Domain     string     `json:"domain,omitempty"`
	Language   string     `json:"language,omitempty"`
	Unit       string     `json:"unit,omitempty"`

	Destination string `json:"destination,omitempty"`
	Queue       string `json:"queue,omitempty"`
	Agent       string `json:"agent,omitempty"`

	Outcome Outcome       `json:"outcome,omitempty"`
	Wait    time.Duration `json:"wait,omitempty"`
	Talk    time.Duration `json:"talk,omitempty"`
	Survey  int           `json:"survey,omitempty"`

	// Note is free text. It may hold health, address or family details: the
	// store seals it; events read back carry it sealed (NoteSealed) and a
	// Revealer opens it with an audit entry.
	Note       string `json:"note,omitempty"`
	NoteSealed string `json:"-"`
	Account    string `json:"account,omitempty"` // who wrote the note / changed the status

	Status     Status   `json:"status,omitempty"`
	PartnerRef string   `json:"partner_ref,omitempty"`
	LinkedCase string   `json:"linked_case,omitempty"` // case id (EventLink)
	LinkKind   LinkKind `json:"link_kind,omitempty"`   // EventLink; LinkFollowUp when empty
}

// LinkKind says why a case is linked to an earlier one.
type LinkKind string

const (
	// LinkFollowUp: the caller asks about an earlier case (keyed in its
	// number, or has an open case).
	LinkFollowUp LinkKind = "follow_up"
	// LinkMerged: a repeated appeal about the same matter, merged into the
	// open case (重复诉求并单处理) instead of being handled twice.
	LinkMerged LinkKind = "merged"
)

// String describes the event for logs; it never includes the note.
func (e Event) String() string {
	return fmt.Sprintf("event %s %s of case %s", e.Kind, e.ID, e.CaseID)
}

// AuditEntry is one line of the append-only audit trail: who read or changed
// what, and why. The store can append and list entries, never edit them.
type AuditEntry struct {
	ID      string    `json:"id"` // idempotency key
	At      time.Time `json:"at"`
	Account string    `json:"account"`
	Role    string    `json:"role"`
	CaseID  string    `json:"case_id,omitempty"`
	Field   string    `json:"field"` // e.g. "caller", "notes", "case"
	Reason  string    `json:"reason"`
}
