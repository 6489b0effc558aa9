package ivr

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cq12345/hotline/telemetry"
)

// simCall is a Call without a phone: the simulated caller presses the next
// group of keys each time the interpreter starts waiting for input, and the
// clock advances by the time the caller would wait (timeouts). Prompts take
// no simulated time.
type simCall struct {
	mu      sync.Mutex
	info    CallInfo
	now     time.Time
	groups  []string
	buf     []byte
	played  []string
	done    chan struct{}
	ended   bool
	reason  string
	records int
	durOf   func(string) time.Duration
}

func newSimCall(opts SimOptions) *simCall {
	dialled := opts.Dialled
	if dialled == "" {
		dialled = "12345"
	}
	at := opts.At
	if at.IsZero() {
		at = time.Now()
	}
	return &simCall{
		info:   CallInfo{Caller: opts.Caller, Dialled: dialled, Plane: "sim", Started: at},
		now:    at,
		groups: append([]string(nil), opts.Digits...),
		durOf:  opts.PromptDuration,
		done:   make(chan struct{}),
	}
}

func (c *simCall) ID() string                       { return "sim" }
func (c *simCall) Info() CallInfo                   { return c.info }
func (c *simCall) Answer(ctx context.Context) error { return c.alive() }
func (c *simCall) Done() <-chan struct{}            { return c.done }

func (c *simCall) alive() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return ErrHungUp
	}
	return nil
}

func (c *simCall) clock() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simCall) Play(ctx context.Context, keys []string, bargeIn bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return ErrHungUp
	}
	c.played = append(c.played, keys...)
	// The simulated caller listens to the end (digits are pressed after
	// the prompt), except that type-ahead digits cut a barge-in prompt.
	if c.durOf != nil && !(bargeIn && len(c.buf) > 0) {
		for _, k := range keys {
			c.now = c.now.Add(c.durOf(k))
		}
	}
	return nil
}

func (c *simCall) awaitInput() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.groups) > 0 {
		c.buf = append(c.buf, c.groups[0]...)
		c.groups = c.groups[1:]
	}
}

func (c *simCall) ReadDigit(ctx context.Context, timeout time.Duration) (byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return 0, ErrHungUp
	}
	if len(c.buf) > 0 {
		d := c.buf[0]
		c.buf = c.buf[1:]
		return d, nil
	}
	c.now = c.now.Add(timeout)
	return 0, ErrTimeout
}

func (c *simCall) FlushDigits() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = nil
}

func (c *simCall) Hangup(ctx context.Context, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ended {
		c.ended = true
		c.reason = reason
		close(c.done)
	}
	return nil
}

// Record simulates a 10-second message (no plane records yet; the
// simulation shows the path a recording plane would take).
func (c *simCall) Record(ctx context.Context, r RecordRequest) (Recording, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return Recording{}, ErrHungUp
	}
	c.records++
	d := min(10*time.Second, r.MaxDuration)
	c.now = c.now.Add(d)
	return Recording{ID: "sim-message", Duration: d}, nil
}

// simRouter answers every decision with the same outcome.
type simRouter struct{ status string }

func (s simRouter) Route(ctx context.Context, call Call, d Decision) (Outcome, error) {
	return Outcome{Status: s.status, Reason: "simulated"}, nil
}

// allCases finds every case number, in status "processing".
type allCases struct{}

func (allCases) LookupCase(_ context.Context, number string) (CaseInfo, bool, error) {
	return CaseInfo{Number: number, Status: "processing"}, true, nil
}

func simulate(ctx context.Context, f *Flow, env Env, opts SimOptions) (*SimResult, error) {
	call := newSimCall(opts)
	status := opts.RouterOutcome
	if status == "" {
		status = OutcomeReturned
	}
	cases := opts.Cases
	if cases == nil {
		cases = allCases{}
	}
	in := &Interpreter{
		Router:    simRouter{status: status},
		Cases:     cases,
		Surveys:   &MemorySurveys{},
		Callbacks: &MemoryCallbacks{},
		Calendars: env.Calendars,
		Catalogue: env.Catalogue,
		Now:       call.clock,
		Logger:    discardLogger(),
	}
	if opts.Lang != "" {
		f = f.withDefaultLanguage(opts.Lang)
	}
	res, err := in.Run(ctx, call, f)
	if res == nil {
		return nil, err
	}
	out := &SimResult{
		Flow:      f.name,
		Caller:    telemetry.MaskNumber(opts.Caller),
		At:        call.info.Started,
		Lang:      res.Lang,
		Steps:     res.Path,
		Decisions: res.Decisions,
		Final:     res.Final,
		End:       res.End,
		Survey:    res.Survey,
		Ended:     call.clock(),
	}
	for _, s := range res.Path {
		out.Prompts = append(out.Prompts, s.Prompts...)
	}
	return out, err
}

// withDefaultLanguage returns a shallow copy of f starting in lang (when
// the flow offers it).
func (f *Flow) withDefaultLanguage(lang string) *Flow {
	for _, l := range f.languages {
		if l == lang {
			g := *f
			g.defaultLang = lang
			return &g
		}
	}
	return f
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
