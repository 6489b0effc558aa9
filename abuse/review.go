package abuse

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cq12345/hotline/cases"
)

// ReviewRequest is a supervisor's action on a decision.
type ReviewRequest struct {
	Action string `json:"action"` // confirm, shorten, lift
	Reason string `json:"reason"`
	// Until is the new end (shorten); or Duration from now.
	Until    time.Time     `json:"until,omitzero"`
	Duration time.Duration `json:"duration,omitempty"`
	Account  string        `json:"-"`
	Role     string        `json:"-"`
}

// Get returns a decision as stored (status read at now: expired shows).
func (s *Service) Get(ctx context.Context, id string) (*Decision, error) {
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	d, err := s.st.decision(ctx, id)
	if err != nil {
		return nil, err
	}
	d.Status = d.StatusAt(s.now())
	return d, nil
}

// List returns decisions, newest first. Queue: those waiting for a person.
// CallerNumber, when set, selects one caller (hashed here).
func (s *Service) List(ctx context.Context, f ListFilter, callerNumber string) ([]*Decision, error) {
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	if callerNumber != "" {
		f.CallerHash = s.cfg.Hash(callerNumber)
	}
	l, err := s.st.decisions(ctx, f, s.now())
	for _, d := range l {
		d.Status = d.StatusAt(s.now())
	}
	return l, err
}

// Review confirms, shortens or lifts a decision, with a reason. The audit
// entry is written first: no review without its trace.
func (s *Service) Review(ctx context.Context, id string, r ReviewRequest) (*Decision, error) {
	if strings.TrimSpace(r.Reason) == "" {
		return nil, fmt.Errorf("%w: a review needs a reason", ErrInvalid)
	}
	if r.Account == "" {
		return nil, fmt.Errorf("%w: a review needs the reviewer's account", ErrInvalid)
	}
	d, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if d.Status != StatusActive && d.Status != StatusPending {
		return nil, fmt.Errorf("%w: decision %s is %s; only a pending or active decision can be reviewed", ErrInvalid, id, d.Status)
	}
	rv := Review{At: now, Account: r.Account, Role: r.Role, Action: r.Action, Reason: r.Reason}
	switch r.Action {
	case ActionConfirm:
		d.Status = StatusActive
	case ActionShorten:
		until := r.Until
		if until.IsZero() && r.Duration > 0 {
			until = now.Add(r.Duration)
		}
		if until.IsZero() || !until.Before(d.Expires) {
			return nil, fmt.Errorf("%w: shorten needs an end before the current one (%s)", ErrInvalid, d.Expires.Format(time.RFC3339))
		}
		if until.Before(now) {
			until = now
		}
		d.Expires, rv.Expires = until, until
	case ActionLift:
		d.Status = StatusLifted
		d.Expires = now
	default:
		return nil, fmt.Errorf("%w: action %q (confirm, shorten, lift)", ErrInvalid, r.Action)
	}
	d.Reviews = append(d.Reviews, rv)
	d.Updated = now
	if s.cfg.Audit != nil {
		if err := s.cfg.Audit.AppendAudit(ctx, cases.AuditEntry{ID: cases.NewID(), At: now, Account: r.Account, Role: r.Role,
			Field: "abuse_decision", Reason: fmt.Sprintf("%s decision %s (%s, %s): %s", r.Action, d.ID, d.Measure, d.Caller, r.Reason)}); err != nil {
			return nil, fmt.Errorf("abuse: audit: %w", err)
		}
	}
	e := &event{ID: cases.NewID(), Kind: evDecision, At: now, CallerHash: d.CallerHash, CallID: d.CallID, Decision: d.clone(), Review: r.Action, Proc: s.cfg.Proc}
	if err := s.st.writeBatch(ctx, []*event{e}); err != nil {
		return nil, err
	}
	s.apply(e)
	s.log.Info("abuse: decision reviewed", "decision", d.ID, "action", r.Action, "by", r.Account, "caller", d.Caller)
	return d, nil
}

// Access names who reads notes or exports evidence, and why (audited).
type Access = cases.Access

// CallRow is one call of a caller, as the log has it.
type CallRow struct {
	CallID    string    `json:"call_id"`
	Arrived   time.Time `json:"arrived"`
	Ended     time.Time `json:"ended,omitzero"`
	Duration  float64   `json:"duration_s,omitempty"`
	Talk      float64   `json:"talk_s,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	Counted   bool      `json:"counted"`
	Exempt    string    `json:"exempt,omitempty"`
	FollowUp  bool      `json:"follow_up,omitempty"`
	CutOff    bool      `json:"cut_off,omitempty"`
	Long      bool      `json:"long,omitempty"`
	Measure   Measure   `json:"measure"` // applied at this call (warning given, restricted, refused)
	Recording string    `json:"recording,omitempty"`
}

// Evidence is everything about a decision's caller that a supervisor may
// hand to the police (a person decides; nothing is sent automatically).
type Evidence struct {
	Decision    *Decision   `json:"decision"`
	Explanation string      `json:"explanation"`
	Caller      string      `json:"caller"` // masked; the full number is read from a case, audited
	From        time.Time   `json:"from"`
	To          time.Time   `json:"to"`
	Generated   time.Time   `json:"generated"`
	GeneratedBy string      `json:"generated_by"`
	Reason      string      `json:"reason"`
	Calls       []CallRow   `json:"calls"`
	Flags       []FlagRef   `json:"flags"`
	Warned      []FlagRef   `json:"warned"`   // dissuasions (劝阻) by agents
	Warnings    []time.Time `json:"warnings"` // calls at which the caller heard the article-26 warning
	Decisions   []*Decision `json:"decisions"`
}

// Show returns a decision with the caller's calls and flags (notes in
// clear) over the ladder memory before it, and the explanation in words.
// Reading the notes writes an audit entry.
func (s *Service) Show(ctx context.Context, id string, who Access) (*Evidence, error) {
	return s.evidence(ctx, id, who, "show")
}

// Evidence builds the evidence pack of a decision (audited as an export).
func (s *Service) Evidence(ctx context.Context, id string, who Access) (*Evidence, error) {
	return s.evidence(ctx, id, who, "evidence export")
}

func (s *Service) evidence(ctx context.Context, id string, who Access, what string) (*Evidence, error) {
	if who.Account == "" || strings.TrimSpace(who.Reason) == "" {
		return nil, fmt.Errorf("%w: who and why are required to read abuse notes", ErrInvalid)
	}
	d, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if s.cfg.Audit != nil {
		if err := s.cfg.Audit.AppendAudit(ctx, cases.AuditEntry{ID: cases.NewID(), At: now, Account: who.Account, Role: who.Role,
			Field: "abuse_" + strings.ReplaceAll(what, " ", "_"), Reason: fmt.Sprintf("decision %s (%s): %s", d.ID, d.Caller, who.Reason)}); err != nil {
			return nil, fmt.Errorf("abuse: audit: %w", err)
		}
	}
	from := d.Created.Add(-s.pol.LadderMemory.D())
	evs, err := s.st.eventsOf(ctx, d.CallerHash, from, now.Add(time.Second))
	if err != nil {
		return nil, err
	}
	ev := &Evidence{Decision: d, Caller: d.Caller, From: from, To: now, Generated: now, GeneratedBy: who.Account, Reason: who.Reason,
		Calls: []CallRow{}, Flags: []FlagRef{}, Warned: []FlagRef{}, Warnings: []time.Time{}}
	seenDec := map[string]int{}
	for _, e := range evs {
		switch e.Kind {
		case evArrive:
			ev.Calls = append(ev.Calls, CallRow{CallID: e.CallID, Arrived: e.At, Counted: e.Exempt == "", Exempt: e.Exempt, Measure: e.Measure})
			if e.Measure == Warning {
				ev.Warnings = append(ev.Warnings, e.At)
			}
		case evEnd:
			for i := range ev.Calls {
				c := &ev.Calls[i]
				if c.CallID != e.CallID {
					continue
				}
				c.Ended, c.Outcome, c.FollowUp, c.CutOff, c.Long, c.Recording = e.Ended, e.Outcome, e.FollowUp, e.CutOff, e.Long, e.Recording
				c.Duration = e.Ended.Sub(c.Arrived).Seconds()
				c.Talk = float64(e.TalkMS) / 1000
				if e.FollowUp {
					c.Counted, c.Exempt = false, ExemptFollowUp
				}
			}
		case evFlag:
			f := FlagRef{ID: e.ID, At: e.At, Kind: e.Flag, Agent: e.Agent, CallID: e.CallID, Note: s.openNote(e)}
			if e.Flag == KindWarned {
				ev.Warned = append(ev.Warned, f)
			} else {
				ev.Flags = append(ev.Flags, f)
			}
		case evDecision:
			if e.Decision == nil {
				continue
			}
			x := e.Decision.clone()
			x.Status = x.StatusAt(now)
			if i, ok := seenDec[x.ID]; ok {
				ev.Decisions[i] = x
			} else {
				seenDec[x.ID] = len(ev.Decisions)
				ev.Decisions = append(ev.Decisions, x)
			}
		}
	}
	// The decision's own flags get their notes and agents.
	for i := range d.Flags {
		for _, f := range ev.Flags {
			if f.ID == d.Flags[i].ID {
				d.Flags[i] = f
			}
		}
	}
	ev.Explanation = Explain(d, "zh-CN", s.pol) + "\n\n" + Explain(d, "en", s.pol)
	return ev, nil
}

func (s *Service) openNote(e *event) string {
	if e.NoteSealed == "" {
		return ""
	}
	if v, ok := strings.CutPrefix(e.NoteSealed, "clear:"); ok {
		return v
	}
	if s.cfg.Sealer == nil {
		return "(sealed)"
	}
	b, err := s.cfg.Sealer.Open(e.NoteSealed, "abuse-note/"+e.ID)
	if err != nil {
		return "(cannot open: " + err.Error() + ")"
	}
	return string(b)
}

// WriteCSV writes the evidence pack as CSV: one row per call, flag,
// dissuasion and decision, in time order.
func (ev *Evidence) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"type", "time", "call_id", "ended", "duration_s", "talk_s", "outcome", "counted", "exempt", "measure_applied", "flag_kind", "agent", "note", "recording", "decision_id", "decision"})
	type row struct {
		at  time.Time
		rec []string
	}
	var rows []row
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(cases.Shanghai()).Format(time.RFC3339)
	}
	for _, c := range ev.Calls {
		rows = append(rows, row{c.Arrived, []string{"call", ts(c.Arrived), c.CallID, ts(c.Ended), strconv.FormatFloat(c.Duration, 'f', 1, 64),
			strconv.FormatFloat(c.Talk, 'f', 1, 64), c.Outcome, strconv.FormatBool(c.Counted), c.Exempt, c.Measure.String(), "", "", "", c.Recording, "", ""}})
	}
	for _, f := range ev.Flags {
		rows = append(rows, row{f.At, []string{"flag", ts(f.At), f.CallID, "", "", "", "", "", "", "", f.Kind, f.Agent, f.Note, "", "", ""}})
	}
	for _, f := range ev.Warned {
		rows = append(rows, row{f.At, []string{"dissuasion", ts(f.At), f.CallID, "", "", "", "", "", "", "", f.Kind, f.Agent, f.Note, "", "", ""}})
	}
	for _, d := range ev.Decisions {
		rows = append(rows, row{d.Created, []string{"decision", ts(d.Created), d.CallID, ts(d.Expires), "", "", "", "", "", d.Measure.String(), "", "", "", "", d.ID,
			fmt.Sprintf("%s (%s): rule %s, %d in %s", d.Measure, d.Status, d.Rule, d.Count, d.Window.D())}})
	}
	slices.SortStableFunc(rows, func(a, b row) int { return a.at.Compare(b.at) })
	for _, r := range rows {
		cw.Write(r.rec)
	}
	cw.Flush()
	return cw.Error()
}
