package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cq12345/hotline/abuse"
	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/flows"
	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/telemetry"
)

// callHandler serves every call of either plane: it pins the published
// flow, opens the call's case when the call is answered, runs the IVR and
// records how the call went.
type callHandler struct {
	log    *slog.Logger
	live   *flows.Live
	cases  cases.Store
	interp *ivr.Interpreter
	tp     trace.TracerProvider
	// abuse checks each caller before the IVR (article 26); nil: off.
	abuse *abuse.Service
}

func (h *callHandler) ServeCall(ctx context.Context, c ivr.Call) {
	info := c.Info()
	log := h.log.With("call", c.ID(), "caller", telemetry.MaskNumber(info.Caller), "plane", info.Plane)
	ctx, span := h.tp.Tracer("hotline/server").Start(ctx, "call.ivr", trace.WithAttributes(
		attribute.String("call.id", c.ID()),
		attribute.String("call.caller", telemetry.MaskNumber(info.Caller)),
		attribute.String("call.dialled", info.Dialled),
		attribute.String("call.plane", info.Plane),
	))
	defer span.End()

	// The call keeps the flow version it started on to its end, whatever
	// is published meanwhile.
	f, version := h.live.Current(FlowID)
	span.SetAttributes(attribute.String("flow.id", FlowID), attribute.Int("flow.version", version))
	cc := &caseCall{Call: c, h: h, log: log}
	if f == nil {
		log.Error("no published flow: the call is refused", "flow", FlowID)
		c.Hangup(ctx, "no published flow")
		cc.finish(ctx, nil, errors.New("no published flow"))
		return
	}
	// Article 26: warned, restricted or blocked, before the IVR (server/abuse.go).
	ictx, stopAbuse, refused := h.abuseGate(ctx, cc, span)
	defer stopAbuse()
	if refused {
		cc.finish(ctx, nil, nil)
		h.abuseEnd(cc, nil, nil, cc.outcome)
		return
	}
	res, err := h.interp.Run(ictx, cc, f)
	h.abuseAfterIVR(ctx, ictx, cc)
	if err != nil {
		span.RecordError(err)
		log.Warn("ivr ended with an error", "err", err, "flow_version", version)
	}
	if res != nil {
		span.SetAttributes(attribute.String("ivr.end", res.End), attribute.String("ivr.final", res.Final.Kind+" "+res.Final.ID))
		log.Info("ivr ended", "flow", FlowID, "flow_version", version, "end", res.End,
			"final", res.Final.Kind+" "+res.Final.ID, "nodes", len(res.Path))
	}
	cc.finish(ctx, res, err)
	h.abuseEnd(cc, res, err, cc.outcome)
}

// caseCall opens the call's case when the IVR answers: durably, before the
// greeting starts (so before it ends), as issue 5 asks.
type caseCall struct {
	ivr.Call
	h   *callHandler
	log *slog.Logger

	mu       sync.Mutex
	answered time.Time
	// answerFailed: the case was opened but the caller left before the
	// answer completed.
	answerFailed bool
	caseID       string
	number       string

	// article 26 (server/abuse.go)
	refused      bool          // the call got the block notice
	abuseCounted bool          // the call counts as a repeat
	outcome      cases.Outcome // set by finish
}

// CaseNumber is the number of the case the call opened ("" before the
// answer, or while only journaled without a reserved number): the flow
// reads it out as the variable case_number_own.
func (c *caseCall) CaseNumber() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.number
}

func (c *caseCall) Answer(ctx context.Context) error {
	select {
	case <-c.Done():
		// Cancelled while it rang: finish records it as abandoned
		// before answer.
		return ivr.ErrHungUp
	default:
	}
	c.mu.Lock()
	if c.answered.IsZero() {
		// The case is made durable BEFORE the plane answers (200 OK): a
		// crash a moment after the answer must not lose the case of an
		// answered call. Should the answer then fail, finish records the
		// call as abandoned before answer.
		c.answered = time.Now()
		info := c.Info()
		cs, err := c.h.cases.CreateForCall(ctx, cases.NewCall{
			CallID: c.ID(), Caller: info.Caller, Dialled: info.Dialled, Plane: info.Plane,
			Started: info.Started, Answered: c.answered, Language: ivr.DefaultLanguage,
		})
		if err != nil {
			// The Durable store journals when the database is down; an
			// error here means even the journal failed. The caller is
			// still served.
			c.log.Error("case not opened", "err", err)
		} else {
			c.caseID, c.number = cs.ID, cs.Number
			c.log.Info("case opened", "case", cs.Number)
			trace.SpanFromContext(ctx).SetAttributes(attribute.String("case.number", cs.Number))
		}
	}
	c.mu.Unlock()
	if err := c.Call.Answer(ctx); err != nil {
		c.mu.Lock()
		c.answerFailed = true
		c.mu.Unlock()
		return err
	}
	return nil
}

// finish writes the IVR path and the call's outcome to its case. A call
// that ended before it was answered gets its case here, outcome "abandoned
// before answer" (the connection rate counts it).
func (c *caseCall) finish(ctx context.Context, res *ivr.Result, runErr error) {
	ctx = context.WithoutCancel(ctx)
	c.mu.Lock()
	caseID, answered, answerFailed := c.caseID, c.answered, c.answerFailed
	c.mu.Unlock()
	info := c.Info()
	if answerFailed && caseID != "" {
		end := cases.NewEvent(caseID, cases.EventEnded)
		end.Outcome = cases.OutcomeAbandonedBeforeAnswer
		c.outcome = end.Outcome
		if err := c.h.cases.AppendEvent(ctx, end); err != nil {
			c.log.Error("case end not recorded", "err", err)
		}
		return
	}
	if answered.IsZero() {
		cs, err := c.h.cases.CreateForCall(ctx, cases.NewCall{
			CallID: c.ID(), Caller: info.Caller, Dialled: info.Dialled, Plane: info.Plane, Started: info.Started,
		})
		if err != nil {
			c.log.Error("case of an unanswered call not recorded", "err", err)
			return
		}
		end := cases.NewEvent(cs.ID, cases.EventEnded)
		end.Outcome = cases.OutcomeAbandonedBeforeAnswer
		c.outcome = end.Outcome
		if err := c.h.cases.AppendEvent(ctx, end); err != nil {
			c.log.Error("case end not recorded", "case", cs.Number, "err", err)
		}
		return
	}
	if caseID == "" {
		return
	}
	var evs []cases.Event
	outcome := cases.OutcomeSelfService
	if res != nil {
		for _, st := range res.Path {
			e := cases.NewEvent(caseID, cases.EventPath)
			e.Node, e.Digits = st.Node, st.Digits
			evs = append(evs, e)
		}
		if res.Lang != "" || res.Vars["appeal"] != "" {
			e := cases.NewEvent(caseID, cases.EventClassify)
			e.Language = res.Lang
			e.AppealType = appealOf(res.Vars["appeal"])
			e.Domain = res.Vars["domain"]
			evs = append(evs, e)
		}
		for _, d := range res.Decisions {
			e := cases.NewEvent(caseID, cases.EventRouted)
			if d.Kind == "transfer" {
				e.Destination = d.ID
			} else {
				e.Queue = d.ID
			}
			evs = append(evs, e)
		}
		outcome = outcomeOf(res)
		if res.Survey > 0 {
			e := cases.NewEvent(caseID, cases.EventSurvey)
			// ivr counts 1 = 非常满意; cases store 5 = 非常满意.
			e.Survey = 6 - res.Survey
			evs = append(evs, e)
		}
	}
	if c.refused {
		outcome = cases.OutcomeRefusedAbusive
	}
	c.outcome = outcome
	end := cases.NewEvent(caseID, cases.EventEnded)
	end.Outcome = outcome
	evs = append(evs, end)
	for _, e := range evs {
		if err := c.h.cases.AppendEvent(ctx, e); err != nil {
			c.log.Error("case event not recorded", "kind", string(e.Kind), "err", err)
		}
	}
}

// appealOf maps the flow's appeal variable to the case's appeal type.
func appealOf(v string) cases.AppealType {
	switch v {
	case "consultation-help", "consultation":
		return cases.AppealConsultation
	case "complaint-report", "complaint":
		return cases.AppealComplaint
	case "suggestion":
		return cases.AppealSuggestion
	}
	return ""
}

// outcomeOf says how a call ended for the case and the figures: answered by
// an agent or transferred when a routing decision connected (the leg was
// answered: its outcome is returned or left, not an overflow), abandoned when
// the caller hung up before that, self-service otherwise.
func outcomeOf(res *ivr.Result) cases.Outcome {
	connected := ""
	for _, st := range res.Path {
		if st.Decision == nil || st.Outcome == nil {
			continue
		}
		o := st.Outcome
		if o.Status == ivr.OutcomeReturned || (o.Status == ivr.OutcomeLeft && !strings.HasPrefix(o.Reason, "overflow")) {
			connected = st.Decision.Kind
		}
	}
	switch {
	case connected == ivr.KindQueue:
		return cases.OutcomeAnsweredByAgent
	case connected == ivr.KindTransfer:
		return cases.OutcomeTransferred
	case res.Final.Kind == "callback":
		return cases.OutcomeCallbackRequested
	case res.Final.Kind == "message":
		return cases.OutcomeMessageLeft
	case res.End == "caller-hangup":
		return cases.OutcomeAbandoned
	case res.Final.Kind == ivr.KindQueue || res.Final.Kind == ivr.KindTransfer:
		// Routed but never connected (no agent, line down) and the flow
		// ended the call: the caller did not get what they called for.
		return cases.OutcomeAbandoned
	}
	return cases.OutcomeSelfService
}

// Unwrap returns the plane's call, for planes that bridge it (the sip
// plane finds its own call type behind this wrapper).
func (c *caseCall) Unwrap() ivr.Call { return c.Call }
