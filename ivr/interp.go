package ivr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/telemetry"
)

// DefaultMaxSteps bounds the nodes one call may visit: validation forbids
// loops that never wait for input, this is the belt to those braces.
const DefaultMaxSteps = 500

// Interpreter runs flows on calls. Its fields are the services the flow's
// nodes use; nil ones are handled as documented on each field. One
// Interpreter serves every call concurrently; it holds no per-call state.
type Interpreter struct {
	// Router carries out transfer and queue decisions. Nil: the decision is
	// logged and traced, then the call is hung up (the state before the
	// routing issue lands).
	Router Router
	// Cases looks up case numbers. Nil: every case is "not found".
	Cases CaseLookup
	// Surveys stores 好差评 ratings. Nil: ratings are only logged.
	Surveys SurveyRecorder
	// Callbacks registers callback requests. Nil: the request is refused
	// (the flow takes on_cancel).
	Callbacks CallbackRequester
	// Recorder records messages. Nil: CallRecorder (the call's plane).
	Recorder Recorder
	// Calendars answers calendar branches. Nil: every calendar is closed.
	Calendars CalendarSet
	// Catalogue resolves prompts per language with fallback to zh-CN. Nil:
	// keys are built for the call's language without checking.
	Catalogue *prompts.Catalogue
	// TracerProvider makes one span per node. Nil: no tracing.
	TracerProvider trace.TracerProvider
	// Logger logs routing decisions (caller numbers masked). Nil: slog.Default.
	Logger *slog.Logger
	// Now is the clock calendars are read with. Nil: time.Now.
	Now func() time.Time
	// MaxSteps bounds the nodes a call visits (0: DefaultMaxSteps).
	MaxSteps int
}

// Step is one node visited by a call.
type Step struct {
	Node string `json:"node"`
	Kind string `json:"kind"`
	// Prompts are the audio keys played ("zh-CN/main-menu"). Digits of the
	// caller's own number appear as one masked entry "say:138****8000".
	Prompts []string `json:"prompts,omitempty"`
	// Digits are the keys the caller pressed at this node, in order; "-"
	// marks an input point where nothing came (timeout).
	Digits string `json:"digits,omitempty"`
	// Branch says which way the node went ("key 1", "no-input", "open
	// edu-bureau", "default", "exhausted", "found" ...).
	Branch string `json:"branch,omitempty"`
	Next   string `json:"next,omitempty"`
	// ElapsedMS is when the node started, in ms after the flow started
	// (on the simulated clock in a simulation).
	ElapsedMS int64     `json:"elapsed_ms"`
	Decision  *Decision `json:"decision,omitempty"`
	Outcome   *Outcome  `json:"outcome,omitempty"`
}

// Call ends (Result.End).
const (
	EndHangup       = "hangup"        // the flow hung up
	EndCallerHangup = "caller-hangup" // the caller hung up
	EndHandedOver   = "handed-over"   // the router took the call over
	EndError        = "error"
)

// Result is what happened on a call: the path through the flow (the cases
// issue stores it with the case), the routing decisions and how it ended.
type Result struct {
	Flow      string            `json:"flow"`
	Lang      string            `json:"lang"`
	Path      []Step            `json:"path"`
	Decisions []Decision        `json:"decisions,omitempty"`
	Final     Action            `json:"final"`
	End       string            `json:"end"`
	Survey    int               `json:"survey,omitempty"`
	Vars      map[string]string `json:"vars,omitempty"`
}

// errStop ends the run without an error (the flow hung up or handed over).
var errStop = errors.New("ivr: stop")

// inputAwaiter is implemented by the simulated call: the interpreter tells
// it when it starts waiting for the caller, so that the simulated caller
// presses the next group of keys then.
type inputAwaiter interface{ awaitInput() }

type run struct {
	in     *Interpreter
	call   Call
	f      *Flow
	lang   string
	vars   map[string]string
	res    *Result
	log    *slog.Logger
	caller string // masked
	other  string // final action besides routing: "callback", "message"
	// ahead is a key typed ahead that a node read but did not use (a
	// language node given a menu key): the next input point takes it.
	ahead  byte
	failed bool // the last routing decision failed
}

// Run runs flow f on call until the flow or the caller ends it. A caller
// hanging up is a normal end (Result.End "caller-hangup", nil error); an
// error means the call could not be served (it has been hung up if possible).
func (in *Interpreter) Run(ctx context.Context, call Call, f *Flow) (*Result, error) {
	if f == nil {
		return nil, errors.New("ivr: run: no flow")
	}
	info := call.Info()
	r := &run{
		in: in, call: call, f: f, lang: f.defaultLang,
		vars:   map[string]string{},
		res:    &Result{Flow: f.name},
		caller: telemetry.MaskNumber(info.Caller),
	}
	r.log = in.logger().With("call", call.ID(), "caller", r.caller, "flow", f.name)
	tracer := in.tracerProvider().Tracer("github.com/cq12345/hotline/ivr")
	max := in.MaxSteps
	if max <= 0 {
		max = DefaultMaxSteps
	}
	err := call.Answer(ctx)
	started := in.now()
	id := f.start
	for steps := 0; err == nil && id != ""; steps++ {
		if steps >= max {
			err = fmt.Errorf("ivr: flow %s: more than %d steps", f.name, max)
			break
		}
		n := f.nodes[id]
		if n == nil {
			err = fmt.Errorf("ivr: flow %s: no node %q", f.name, id)
			break
		}
		nctx, span := tracer.Start(ctx, "ivr.node "+n.Kind, trace.WithAttributes(
			attribute.String("ivr.flow", f.name),
			attribute.String("ivr.node", n.ID),
			attribute.String("ivr.kind", n.Kind),
			attribute.String("ivr.lang", r.lang),
		))
		step := Step{Node: n.ID, Kind: n.Kind, ElapsedMS: in.now().Sub(started).Milliseconds()}
		var next string
		next, err = r.exec(nctx, n, &step)
		step.Next = next
		digits := step.Digits
		if n.Kind == KindCollect || n.Kind == KindCallback {
			digits = telemetry.MaskNumber(digits)
		}
		span.SetAttributes(attribute.String("ivr.digits", digits), attribute.String("ivr.branch", step.Branch), attribute.String("ivr.next", next))
		if step.Decision != nil {
			span.SetAttributes(attribute.String("ivr.decision", step.Decision.Kind+":"+step.Decision.ID))
		}
		if err != nil && !errors.Is(err, errStop) && !errors.Is(err, ErrHungUp) {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		r.res.Path = append(r.res.Path, step)
		id = next
	}
	r.res.Lang = r.lang
	r.res.Vars = r.publicVars()
	switch {
	case err == nil || errors.Is(err, errStop):
		if r.res.End == "" {
			// The flow ran off its end (a node without next).
			r.res.End = EndHangup
			if herr := call.Hangup(ctx, "flow ended"); herr != nil && !errors.Is(herr, ErrHungUp) {
				r.log.Warn("ivr: hangup", "err", herr)
			}
		}
		err = nil
	case errors.Is(err, ErrHungUp):
		r.res.End = EndCallerHangup
		err = nil
	default:
		r.res.End = EndError
		if ctx.Err() == nil {
			_ = call.Hangup(context.WithoutCancel(ctx), "ivr error")
		}
	}
	r.res.Final = r.final()
	return r.res, err
}

func (r *run) final() Action {
	if n := len(r.res.Decisions); n > 0 && !(r.failed && r.other != "") {
		d := r.res.Decisions[n-1]
		return Action{Kind: d.Kind, ID: d.ID}
	}
	if r.other != "" {
		return Action{Kind: r.other}
	}
	if r.res.End == EndCallerHangup {
		return Action{Kind: "caller-hangup"}
	}
	return Action{Kind: "hangup"}
}

// maskedVars masks variable values that could be phone numbers (seven or
// more digits) for logs: a flow may collect one.
func maskedVars(vars map[string]string) map[string]string {
	if len(vars) == 0 {
		return nil
	}
	out := make(map[string]string, len(vars))
	for k, v := range vars {
		digits := 0
		for _, c := range v {
			if c >= '0' && c <= '9' {
				digits++
			}
		}
		if digits >= 7 {
			v = telemetry.MaskNumber(v)
		}
		out[k] = v
	}
	return out
}

func (r *run) publicVars() map[string]string {
	if len(r.vars) == 0 {
		return nil
	}
	return maps.Clone(r.vars)
}

func (in *Interpreter) logger() *slog.Logger {
	if in.Logger != nil {
		return in.Logger
	}
	return slog.Default()
}

func (in *Interpreter) tracerProvider() trace.TracerProvider {
	if in.TracerProvider != nil {
		return in.TracerProvider
	}
	return noop.NewTracerProvider()
}

func (in *Interpreter) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

// key resolves a prompt id to an audio key in the call's language, falling
// back to zh-CN when the catalogue lacks it.
func (r *run) key(id string) string {
	lang := r.lang
	if c := r.in.Catalogue; c != nil && !c.Has(id, lang) {
		lang = DefaultLanguage
	}
	return lang + "/" + id
}

func (r *run) play(ctx context.Context, step *Step, ids []string, bargeIn bool) error {
	if len(ids) == 0 {
		return nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.key(id)
	}
	if bargeIn && r.ahead != 0 {
		// The caller already typed ahead: the prompt would be cut at once.
		return nil
	}
	step.Prompts = append(step.Prompts, keys...)
	return r.call.Play(ctx, keys, bargeIn)
}

// digitKeys are the audio keys saying s digit by digit ('-' as dash; other
// characters are skipped).
func (r *run) digitKeys(s string) []string {
	var keys []string
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			keys = append(keys, r.key("digit-"+string(c)))
		case c == '-':
			keys = append(keys, r.key("digit-dash"))
		}
	}
	return keys
}

// read waits for one digit at an input point.
func (r *run) read(ctx context.Context, timeout time.Duration) (byte, error) {
	if d := r.ahead; d != 0 {
		r.ahead = 0
		return d, nil
	}
	if a, ok := r.call.(inputAwaiter); ok {
		a.awaitInput()
	}
	return r.call.ReadDigit(ctx, timeout)
}

func (r *run) value(name string) string {
	switch name {
	case "caller":
		return r.call.Info().Caller
	case "dialled":
		return r.call.Info().Dialled
	case "lang":
		return r.lang
	case "case_number_own":
		// The number of the case this call opened, when the media plane's
		// call knows it (hotlined's calls do): "您的工单号是…".
		if c, ok := r.call.(caseNumberer); ok {
			return c.CaseNumber()
		}
		return ""
	}
	return r.vars[name]
}

func (r *run) exec(ctx context.Context, n *Node, step *Step) (string, error) {
	switch n.Kind {
	case KindPlay:
		return n.Next, r.play(ctx, step, n.Prompts, n.BargeIn)
	case KindGoto, KindInclude, KindReturn:
		return n.Next, nil
	case KindSet:
		for _, a := range n.Set {
			r.vars[a.Var] = a.Value
		}
		return n.Next, nil
	case KindMenu:
		return r.menu(ctx, n, step)
	case KindLanguage:
		return r.language(ctx, n, step)
	case KindCollect:
		return r.collect(ctx, n, step)
	case KindBranch:
		return r.branch(n, step), nil
	case KindSay:
		return r.say(ctx, n, step)
	case KindTransfer, KindQueue:
		return r.route(ctx, n, step)
	case KindCaseLookup:
		return r.caseLookup(ctx, n, step)
	case KindCallback:
		return r.callback(ctx, n, step)
	case KindRecord:
		return r.record(ctx, n, step)
	case KindSurvey:
		return r.survey(ctx, n, step)
	case KindHangup:
		if err := r.play(ctx, step, n.Prompts, false); err != nil {
			return "", err
		}
		reason := n.Reason
		if reason == "" {
			reason = "flow hangup at " + n.ID
		}
		r.res.End = EndHangup
		if err := r.call.Hangup(ctx, reason); err != nil && !errors.Is(err, ErrHungUp) {
			return "", fmt.Errorf("ivr: hangup: %w", err)
		}
		return "", errStop
	}
	return "", fmt.Errorf("ivr: node %s: unknown kind %q", n.ID, n.Kind)
}

// menu plays the menu and waits for an option, with retries.
func (r *run) menu(ctx context.Context, n *Node, step *Step) (string, error) {
	var lead []string
	for attempt := 0; attempt <= n.Retries; attempt++ {
		if err := r.play(ctx, step, concat(lead, n.Prompts), n.BargeIn); err != nil {
			return "", err
		}
		d, err := r.read(ctx, n.Timeout)
		if errors.Is(err, ErrTimeout) {
			step.Digits += "-"
			lead = n.NoInputPrompts
			continue
		}
		if err != nil {
			return "", err
		}
		step.Digits += string(d)
		for _, o := range n.Options {
			if o.Key == string(d) {
				step.Branch = "key " + o.Key
				return o.Next, nil
			}
		}
		// Drop what else was typed after a wrong key: the caller starts over.
		r.call.FlushDigits()
		lead = n.InvalidPrompts
	}
	step.Branch = "exhausted"
	return n.OnExhausted, nil
}

// language offers the languages once; no key keeps the current language.
func (r *run) language(ctx context.Context, n *Node, step *Step) (string, error) {
	if err := r.play(ctx, step, n.Prompts, n.BargeIn); err != nil {
		return "", err
	}
	d, err := r.read(ctx, n.Timeout)
	if errors.Is(err, ErrTimeout) {
		step.Digits = "-"
		step.Branch = "no-input: " + r.lang
		return n.Next, nil
	}
	if err != nil {
		return "", err
	}
	step.Digits = string(d)
	if d == '0' && n.Zero != "" {
		step.Branch = "key 0"
		return n.Zero, nil
	}
	for _, o := range n.Options {
		if o.Key == string(d) {
			r.lang = o.Next
			step.Branch = "key " + o.Key + ": " + o.Next
			return n.Next, nil
		}
	}
	// Any other key is a choice typed ahead for the next menu (a caller
	// who knows the menu presses 1 during the greeting): keep it for the
	// next input point instead of throwing it away.
	r.ahead = d
	step.Branch = "other key kept for the next menu: " + r.lang
	return n.Next, nil
}

// collect reads several digits into a variable.
func (r *run) collect(ctx context.Context, n *Node, step *Step) (string, error) {
	var lead []string
	term := byte(0)
	if n.Terminator != "" {
		term = n.Terminator[0]
	}
	for attempt := 0; attempt <= n.Retries; attempt++ {
		if err := r.play(ctx, step, concat(lead, n.Prompts), n.BargeIn); err != nil {
			return "", err
		}
		var got []byte
		timeout := n.Timeout
		for len(got) < n.Max {
			var d byte
			var err error
			if len(got) == 0 {
				d, err = r.read(ctx, timeout)
			} else {
				d, err = r.call.ReadDigit(ctx, timeout)
			}
			if errors.Is(err, ErrTimeout) {
				break
			}
			if err != nil {
				return "", err
			}
			if term != 0 && d == term {
				break
			}
			got = append(got, d)
			timeout = n.InterDigitTimeout
		}
		if len(got) == 0 {
			step.Digits += "-"
			lead = n.NoInputPrompts
			continue
		}
		if attempt > 0 || step.Digits != "" {
			step.Digits += ","
		}
		step.Digits += string(got)
		s := string(got)
		if len(s) >= n.Min && (n.Pattern == nil || n.Pattern.MatchString(s)) {
			r.vars[n.Var] = s
			step.Branch = "collected"
			return n.Next, nil
		}
		r.call.FlushDigits()
		lead = n.InvalidPrompts
	}
	step.Branch = "exhausted"
	return n.OnExhausted, nil
}

func (r *run) branch(n *Node, step *Step) string {
	caller := r.call.Info().Caller
	for _, c := range n.Cases {
		var ok bool
		switch {
		case c.Open != "" || c.Closed != "":
			cal := c.Open + c.Closed
			open := false
			if r.in.Calendars != nil {
				var err error
				open, err = r.in.Calendars.IsOpen(cal, r.in.now())
				if err != nil {
					r.log.Warn("ivr: calendar", "calendar", cal, "err", err, "open", open)
				}
			} else {
				r.log.Warn("ivr: no calendars configured: treating as closed", "calendar", cal)
			}
			ok = open == (c.Open != "")
		case len(c.CallerPrefix) > 0:
			for _, p := range c.CallerPrefix {
				if strings.HasPrefix(caller, p) {
					ok = true
				}
			}
		case c.Equals != nil:
			ok = r.value(c.Var) == *c.Equals
		case c.NotEquals != nil:
			ok = r.value(c.Var) != *c.NotEquals
		case c.In != nil:
			v := r.value(c.Var)
			for _, s := range c.In {
				ok = ok || s == v
			}
		}
		if ok {
			step.Branch = c.Label()
			return c.Next
		}
	}
	step.Branch = "default"
	return n.Default
}

// caseNumberer is implemented by calls that opened a case: the flow can
// read its number out through the variable case_number_own.
type caseNumberer interface{ CaseNumber() string }

func (r *run) say(ctx context.Context, n *Node, step *Step) (string, error) {
	if n.Var == "case_number_own" && r.value(n.Var) == "" {
		// No case number yet (the store and its number reserve were both
		// away): announcing "your case number is" and nothing would confuse.
		step.Branch = "no case number"
		return n.Next, nil
	}
	if err := r.play(ctx, step, n.Prompts, false); err != nil {
		return "", err
	}
	v := r.value(n.Var)
	keys := r.digitKeys(v)
	if len(keys) == 0 {
		return n.Next, nil
	}
	if n.Var == "caller" {
		step.Prompts = append(step.Prompts, "say:"+telemetry.MaskNumber(v))
	} else {
		step.Prompts = append(step.Prompts, keys...)
	}
	return n.Next, r.call.Play(ctx, keys, false)
}

func (r *run) route(ctx context.Context, n *Node, step *Step) (string, error) {
	if err := r.play(ctx, step, n.Prompts, false); err != nil {
		return "", err
	}
	d := Decision{Kind: n.Kind, ID: n.Destination, Node: n.ID, Lang: r.lang, Vars: r.publicVars()}
	if n.Kind == KindQueue {
		d.ID = n.Queue
	}
	step.Decision = &d
	r.res.Decisions = append(r.res.Decisions, d)
	r.log.InfoContext(ctx, "ivr: routing decision", "kind", d.Kind, "id", d.ID, "node", d.Node, "lang", d.Lang, "vars", maskedVars(d.Vars))
	if r.in.Router == nil {
		step.Branch = "no router"
		r.res.End = EndHangup
		if err := r.call.Hangup(ctx, "no router for "+d.Kind+" "+d.ID); err != nil && !errors.Is(err, ErrHungUp) {
			return "", fmt.Errorf("ivr: hangup: %w", err)
		}
		return "", errStop
	}
	rctx, span := trace.SpanFromContext(ctx).TracerProvider().Tracer("github.com/cq12345/hotline/ivr").Start(ctx, "ivr.route",
		trace.WithAttributes(attribute.String("ivr.decision", d.Kind+":"+d.ID), attribute.String("ivr.node", d.Node)))
	out, err := r.in.Router.Route(rctx, r.call, d)
	span.SetAttributes(attribute.String("ivr.outcome", out.Status))
	if err != nil && !errors.Is(err, ErrHungUp) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	if errors.Is(err, ErrHungUp) {
		return "", err
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		r.log.ErrorContext(ctx, "ivr: route", "kind", d.Kind, "id", d.ID, "err", err)
		out = Outcome{Status: OutcomeFailed, Reason: err.Error()}
	}
	step.Outcome = &out
	step.Branch = out.Status
	r.failed = out.Status != OutcomeReturned && out.Status != OutcomeLeft
	r.log.InfoContext(ctx, "ivr: routing outcome", "kind", d.Kind, "id", d.ID, "status", out.Status, "reason", out.Reason)
	switch out.Status {
	case OutcomeReturned:
		return n.Next, nil
	case OutcomeLeft:
		r.res.End = EndHandedOver
		return "", errStop
	default:
		if n.OnFail != "" {
			return n.OnFail, nil
		}
		return n.Next, nil
	}
}

func (r *run) caseLookup(ctx context.Context, n *Node, step *Step) (string, error) {
	number := r.value(n.Var)
	var info CaseInfo
	found := false
	if r.in.Cases != nil && number != "" {
		var err error
		info, found, err = r.in.Cases.LookupCase(ctx, number)
		if err != nil {
			r.log.ErrorContext(ctx, "ivr: case lookup", "err", err)
			found = false
		}
	}
	if !found {
		step.Branch = "not found"
		return n.NotFound, nil
	}
	r.vars["case_status"] = info.Status
	step.Branch = "found: " + info.Status
	if p, ok := n.StatusPrompts[info.Status]; ok {
		if err := r.play(ctx, step, []string{p}, false); err != nil {
			return "", err
		}
	}
	return n.Found, nil
}

func (r *run) callback(ctx context.Context, n *Node, step *Step) (string, error) {
	caller := r.call.Info().Caller
	for attempt := 0; attempt <= n.Retries; attempt++ {
		if err := r.play(ctx, step, n.Prompts, true); err != nil {
			return "", err
		}
		if keys := r.digitKeys(caller); len(keys) > 0 {
			step.Prompts = append(step.Prompts, "say:"+telemetry.MaskNumber(caller))
			if err := r.call.Play(ctx, keys, true); err != nil {
				return "", err
			}
		}
		if err := r.play(ctx, step, n.ConfirmPrompts, true); err != nil {
			return "", err
		}
		d, err := r.read(ctx, n.Timeout)
		if errors.Is(err, ErrTimeout) {
			step.Digits += "-"
			continue
		}
		if err != nil {
			return "", err
		}
		step.Digits += string(d)
		if d != '1' {
			step.Branch = "declined"
			return n.OnCancel, nil
		}
		if r.in.Callbacks == nil {
			r.log.WarnContext(ctx, "ivr: no callback service configured")
			step.Branch = "unavailable"
			return n.OnCancel, nil
		}
		req := CallbackRequest{CallID: r.call.ID(), Number: caller, Flow: r.f.name, Node: n.ID, Vars: r.publicVars(), At: r.in.now()}
		if err := r.in.Callbacks.RequestCallback(ctx, req); err != nil {
			r.log.ErrorContext(ctx, "ivr: callback request", "err", err)
			step.Branch = "unavailable"
			return n.OnCancel, nil
		}
		r.log.InfoContext(ctx, "ivr: callback requested", "node", n.ID)
		r.other = "callback"
		step.Branch = "confirmed"
		return n.Next, nil
	}
	step.Branch = "no-input"
	return n.OnCancel, nil
}

func (r *run) record(ctx context.Context, n *Node, step *Step) (string, error) {
	if err := r.play(ctx, step, n.Prompts, false); err != nil {
		return "", err
	}
	rec := r.in.Recorder
	if rec == nil {
		rec = CallRecorder{}
	}
	term := byte('#')
	if n.Terminator != "" {
		term = n.Terminator[0]
	}
	got, err := rec.Record(ctx, r.call, RecordRequest{CallID: r.call.ID(), Flow: r.f.name, Node: n.ID, MaxDuration: n.MaxDuration, Terminator: term})
	if errors.Is(err, ErrHungUp) {
		return "", err
	}
	if err != nil {
		r.log.WarnContext(ctx, "ivr: record", "err", err)
		step.Branch = "failed: " + err.Error()
		if n.OnFail != "" {
			return n.OnFail, nil
		}
		return n.Next, nil
	}
	r.vars["message_id"] = got.ID
	r.other = "message"
	step.Branch = "recorded " + got.Duration.String()
	return n.Next, nil
}

func (r *run) survey(ctx context.Context, n *Node, step *Step) (string, error) {
	var lead []string
	for attempt := 0; attempt <= n.Retries; attempt++ {
		if err := r.play(ctx, step, concat(lead, n.Prompts), n.BargeIn); err != nil {
			return "", err
		}
		d, err := r.read(ctx, n.Timeout)
		if errors.Is(err, ErrTimeout) {
			step.Digits += "-"
			lead = n.NoInputPrompts
			continue
		}
		if err != nil {
			return "", err
		}
		step.Digits += string(d)
		if d == '0' && n.Zero != "" {
			step.Branch = "key 0"
			return n.Zero, nil
		}
		if d >= '1' && d <= '5' {
			level := int(d - '0')
			resp := SurveyResponse{CallID: r.call.ID(), Flow: r.f.name, Node: n.ID, Level: level, Label: SurveyLevels[level-1], At: r.in.now()}
			if k := len(r.res.Decisions); k > 0 {
				last := r.res.Decisions[k-1]
				resp.After = &last
			}
			if r.in.Surveys != nil {
				if err := r.in.Surveys.RecordSurvey(ctx, resp); err != nil {
					r.log.ErrorContext(ctx, "ivr: survey", "err", err)
				}
			}
			r.log.InfoContext(ctx, "ivr: survey", "level", level)
			r.res.Survey = level
			step.Branch = fmt.Sprintf("level %d %s", level, resp.Label)
			return n.Next, nil
		}
		r.call.FlushDigits()
		lead = n.InvalidPrompts
	}
	step.Branch = "exhausted"
	if n.OnExhausted != "" {
		return n.OnExhausted, nil
	}
	return n.Next, nil
}

// concat joins two prompt lists into a new slice: the flow's slices are
// shared by every call and must never be appended to.
func concat(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}
