package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cq12345/hotline/abuse"
	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/sqldb"
)

// Article 26 on the call path (package abuse): the caller's standing is
// checked when the call arrives, before the IVR, from memory; the IVR then
// runs under the measure; the call's end feeds the signals.

// openAbuse opens the abuse service on the store, with the policy file
// (--abuse-policy) or the embedded default.
func openAbuse(ctx context.Context, cfg *Config, db *sqldb.DB, prot *cases.Protector, store cases.Store, log *slog.Logger) (*abuse.Service, error) {
	pol := abuse.DefaultPolicy()
	if cfg.AbusePolicy != "" {
		b, err := os.ReadFile(cfg.AbusePolicy)
		if err != nil {
			return nil, fmt.Errorf("abuse policy: %w", err)
		}
		if pol, err = abuse.ParsePolicy(b); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.AbusePolicy, err)
		}
	}
	return abuse.Open(ctx, abuse.Config{
		DB: db, Policy: pol, Hash: prot.CallerHash, Mask: cases.MaskCaller,
		OpenCases: openCaseChecker{store}, Audit: store, Sealer: prot.Keys, Log: log,
	})
}

// openCaseChecker answers the abuse service's question "does this caller
// have an open case someone took up?" from the case store. Every call opens
// a case, so a case only in status "opened" (nobody took it up) does not
// make later calls follow-ups — otherwise every repeat caller would be
// exempt through the cases of its own repeats.
type openCaseChecker struct{ store cases.Store }

func (o openCaseChecker) HasOpenCase(ctx context.Context, hash string) (bool, error) {
	l, err := o.store.List(ctx, cases.Filter{CallerHash: hash, OpenOnly: true, Limit: 200})
	if err != nil {
		return false, err
	}
	for _, c := range l {
		if c.Outcome != cases.OutcomeRefusedAbusive && (c.Status != cases.StatusOpened || c.Unit != "") {
			return true, nil
		}
	}
	return false, nil
}

var (
	errTimeLimit = errors.New("article 26: restricted caller's time limit")
	errBlocked   = errors.New("article 26: caller blocked during the call")
)

// abuseGate checks an arriving call. It returns the context the IVR runs
// in (cancelled at a restricted caller's time limit, or when an agent's
// flag blocks the caller mid-call) and whether the call was refused here
// (blocked: the notice was played and the call ended).
func (h *callHandler) abuseGate(ctx context.Context, cc *caseCall, span trace.Span) (context.Context, func(), bool) {
	if h.abuse == nil {
		return ctx, func() {}, false
	}
	info := cc.Info()
	v := h.abuse.Check(ctx, abuse.CallStart{CallID: cc.ID(), Caller: info.Caller, At: info.Started})
	cc.abuseCounted = v.Counted
	span.SetAttributes(attribute.String("abuse.measure", v.Measure.String()), attribute.Bool("abuse.counted", v.Counted),
		attribute.String("abuse.exempt", v.Exempt))
	if v.Decision != nil {
		span.SetAttributes(attribute.String("abuse.decision", v.Decision.ID), attribute.String("abuse.rule", v.Decision.Rule))
		cc.log.Info("article 26 measure", "measure", v.Measure.String(), "decision", v.Decision.ID, "rule", v.Decision.Rule, "new", v.New)
	}
	lang := ivr.DefaultLanguage
	switch v.Measure {
	case abuse.Blocked:
		cc.refused = true
		h.blockNotice(ctx, cc, lang, v.Remaining)
		return ctx, func() {}, true
	case abuse.Warning:
		if err := cc.Answer(ctx); err == nil {
			cc.Play(ctx, []string{lang + "/abuse-warning"}, false)
		}
	case abuse.Restricted:
		// verdictRouter sends the caller's queue decisions to v.Queue (the
		// supervisors); the time limit applies.
		if err := cc.Answer(ctx); err == nil {
			cc.Play(ctx, []string{lang + "/abuse-restricted"}, false)
		}
	}
	// verdictRouter reads the verdict from the context (a restricted
	// caller goes to abuse.SupervisorQueue).
	ictx, cancel := context.WithCancelCause(abuse.WithVerdict(ctx, v))
	stops := []func(){func() { cancel(nil) }}
	if v.MaxCall > 0 {
		t := time.AfterFunc(v.MaxCall, func() { cancel(errTimeLimit) })
		stops = append(stops, func() { t.Stop() })
	}
	// An agent's flag during the call may block the caller: the IVR (or
	// the agent leg) stops and the caller hears the notice.
	stops = append(stops, h.abuse.Watch(cc.ID(), func(w abuse.Verdict) {
		if w.Measure == abuse.Blocked {
			cancel(errBlocked)
		}
	}))
	return ictx, func() {
		for _, f := range stops {
			f()
		}
	}, false
}

// abuseAfterIVR plays the notice when the IVR was stopped by a measure.
func (h *callHandler) abuseAfterIVR(ctx, ictx context.Context, cc *caseCall) {
	lang := ivr.DefaultLanguage
	switch context.Cause(ictx) {
	case errTimeLimit:
		cc.FlushDigits()
		cc.Play(ctx, []string{lang + "/abuse-time-limit", lang + "/emergency-notice"}, false)
		cc.Hangup(ctx, "article 26: time limit")
	case errBlocked:
		cc.refused = true
		var rem time.Duration
		if d := h.abuse.Status(cc.Info().Caller); d != nil {
			rem = time.Until(d.Expires)
		}
		h.blockNotice(ctx, cc, lang, rem)
	}
}

// blockNotice answers, says why, for how long, how to appeal and that
// emergencies go to 110/119/120, then ends the call.
func (h *callHandler) blockNotice(ctx context.Context, cc *caseCall, lang string, remaining time.Duration) {
	if err := cc.Answer(ctx); err != nil {
		cc.Hangup(ctx, "article 26: blocked")
		return
	}
	keys := []string{lang + "/abuse-blocked", lang + "/abuse-blocked-for"}
	unit, n := "/abuse-hours", int((remaining+time.Hour-1)/time.Hour)
	if remaining >= 24*time.Hour {
		unit, n = "/abuse-days", int((remaining+24*time.Hour-1)/(24*time.Hour))
	}
	for _, d := range strconv.Itoa(max(n, 1)) {
		keys = append(keys, lang+"/digit-"+string(d))
	}
	keys = append(keys, lang+unit, lang+"/abuse-appeal", lang+"/emergency-notice")
	cc.Play(ctx, keys, false)
	cc.Hangup(ctx, "article 26: blocked")
}

// abuseEnd feeds the call's end into the signals.
func (h *callHandler) abuseEnd(cc *caseCall, res *ivr.Result, runErr error, outcome cases.Outcome) {
	if h.abuse == nil {
		return
	}
	now := time.Now()
	e := abuse.CallEnd{CallID: cc.ID(), Ended: now, Outcome: string(outcome)}
	cc.mu.Lock()
	answered := cc.answered
	cc.mu.Unlock()
	if !answered.IsZero() {
		e.IVR = now.Sub(answered)
	}
	if res != nil {
		e.FollowUp = res.Vars["case_status"] != ""
		e.Progress = len(res.Decisions) > 0
		for _, st := range res.Path {
			for _, d := range st.Digits {
				if d != '-' {
					e.Progress = true
				}
			}
		}
	}
	e.CutOff = outcome == cases.OutcomeAbandoned || outcome == cases.OutcomeAbandonedBeforeAnswer ||
		(runErr != nil && !errors.Is(runErr, ivr.ErrHungUp))
	if cc.refused {
		e.CutOff = false
	}
	h.abuse.End(context.Background(), e)
}
