package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/telemetry"
)

// Store is what the router keeps agents, reservations and callback tasks
// in. SQLStore implements it on SQLite and PostgreSQL.
type Store interface {
	Reserver
	Agents(ctx context.Context) ([]*Agent, error)
	Agent(ctx context.Context, id string) (*Agent, error)
	AddAgent(ctx context.Context, n NewAgent, now time.Time) (*Agent, error)
	RemoveAgent(ctx context.Context, id string, now time.Time) error
	SetPresence(ctx context.Context, id string, p AgentState, reason string, now time.Time) (*Agent, error)
	AddCallback(ctx context.Context, c Callback, now time.Time) (Callback, bool, error)
	Callbacks(ctx context.Context, states ...string) ([]Callback, error)
	TakeCallback(ctx context.Context, id, agentID string, now time.Time) (Callback, error)
	FinishCallback(ctx context.Context, id, state, reason string, now time.Time) error
}

// Options configure a Router.
type Options struct {
	Config *Config // nil: DefaultConfig()
	Store  Store
	Dialer Dialer
	// Calendars tell whether a destination's line is open (nil: always).
	Calendars ivr.CalendarSet
	// Catalogue resolves prompts per language (nil: no fallback check).
	Catalogue *prompts.Catalogue
	// MeterProvider publishes the live figures (nil: none).
	MeterProvider metric.MeterProvider
	Logger        *slog.Logger
	Now           func() time.Time
	// Holder names this process in reservations (default host-pid-random).
	Holder string
	// ReserveTTL is how long a reservation lives without renewal (default
	// 30 s): a crashed process's agents come back after it.
	ReserveTTL time.Duration
	// Refresh is how often agents are re-read from the store, to see other
	// processes' and the API's changes (default 1 s).
	Refresh time.Duration
	// Tick is how often the ACD looks for free agents without being kicked
	// (wrap-up ends, default 200 ms).
	Tick time.Duration
	// TransferTimeout bounds the ringing of a destination (default 30 s).
	TransferTimeout time.Duration
	// CallbackRing bounds the ringing of each callback leg (default 30 s).
	CallbackRing time.Duration
	// CallbackAttempts: a callback is failed after this many (default 3).
	CallbackAttempts int
	// Callbacks, when set, records each callback attempt on its case.
	Callbacks CallbackRecorder
	// Ringback is the audio key played in a loop to whoever waits while a
	// line rings: the caller during a transfer, the agent while a callback
	// rings the citizen (default prompts.Ringback; "-": silence).
	Ringback string
	// HoldMusic is the audio key played in a loop to a caller waiting in a
	// queue between announcements (default prompts.HoldMusic; "-":
	// silence).
	HoldMusic string
}

// Router carries out the flow's routing decisions (it implements
// ivr.Router): queue decisions go to the ACD, transfer decisions to the
// configured destinations. It also serves the API's agents, queues,
// destinations, callbacks and figures.
type Router struct {
	o      Options
	cfg    *Config
	dir    *Directory
	log    *slog.Logger
	queues map[string]*queue
	qorder []*queue

	mu      sync.Mutex
	agents  map[string]*Agent // mirror of the store, refreshed
	pending map[string]bool   // agents assigned locally, not yet reserved
	// unreachable: agents whose phone had no registration (or no route)
	// when rung, left out of decisions until then. Not a missed call: an
	// agent made available before the phone registers is not paused.
	unreachable map[string]time.Time
	held        map[string]*held // agent id -> reservation this process holds
	seq         uint64
	dests       map[string]*destFigures
	cbs         int // callbacks booked
	refused     int // transfers to unconfigured destinations
	subs        map[string]map[chan AgentEvent]struct{}
	// bridged: the calls in a bridge now (by call id), and how to end
	// that bridge with a cause (TransferCall).
	bridged map[string]context.CancelCauseFunc

	kick    chan struct{}
	stop    context.CancelFunc
	ctx     context.Context
	wg      sync.WaitGroup
	metrics metric.Registration
}

type held struct {
	holder   string
	activity AgentState
}

type queue struct {
	cfg     Queue
	waiting []*waiter // by (joined, seq)
	rrLast  string
	fig     queueFigures
}

type waiter struct {
	seq      uint64
	call     ivr.Call
	q        *queue
	joined   time.Time
	lang     string
	vars     map[string]string
	caseNum  string
	ringing  string // agent id being rung
	gone     bool   // left the queue (connected, abandoned, overflowed)
	tried    map[string]bool
	conn     chan connected
	done     chan struct{}
	overflow bool
}

type connected struct {
	agent  *Agent
	leg    Leg
	holder string
	at     time.Time
}

// New returns a router and starts its ACD. Close stops it.
func New(o Options) (*Router, error) {
	if o.Store == nil || o.Dialer == nil {
		return nil, errors.New("routing: a store and a dialer are required")
	}
	if o.Config == nil {
		o.Config = DefaultConfig()
	}
	if err := o.Config.Validate(nil); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		o.Holder = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[:6])
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReserveTTL, 30*time.Second)
	def(&o.Refresh, time.Second)
	def(&o.Tick, 200*time.Millisecond)
	def(&o.TransferTimeout, 30*time.Second)
	def(&o.CallbackRing, 30*time.Second)
	if o.CallbackAttempts <= 0 {
		o.CallbackAttempts = 3
	}
	if o.Ringback == "" {
		o.Ringback = prompts.Ringback
	}
	if o.HoldMusic == "" {
		o.HoldMusic = prompts.HoldMusic
	}
	r := &Router{o: o, cfg: o.Config, log: o.Logger, queues: map[string]*queue{}, agents: map[string]*Agent{},
		pending: map[string]bool{}, held: map[string]*held{}, unreachable: map[string]time.Time{}, bridged: map[string]context.CancelCauseFunc{}, dests: map[string]*destFigures{}, kick: make(chan struct{}, 1)}
	r.dir = NewDirectory(o.Config.Destinations, o.Logger)
	for _, qc := range o.Config.Queues {
		q := &queue{cfg: qc}
		r.queues[qc.ID] = q
		r.qorder = append(r.qorder, q)
	}
	for _, d := range o.Config.Destinations {
		r.dests[d.ID] = &destFigures{failures: map[string]int{}}
	}
	if o.MeterProvider != nil {
		if err := r.registerMetrics(o.MeterProvider); err != nil {
			return nil, err
		}
	}
	r.ctx, r.stop = context.WithCancel(context.Background())
	if err := r.refresh(r.ctx); err != nil {
		r.stop()
		return nil, err
	}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// Close stops the ACD and waits for its goroutines (rings in progress are
// hung up). Calls still in Route return when their contexts end.
func (r *Router) Close() error {
	r.stop()
	r.wg.Wait()
	if r.metrics != nil {
		return r.metrics.Unregister()
	}
	return nil
}

// Directory returns the configured destinations.
func (r *Router) Directory() *Directory { return r.dir }

// Config returns the routing configuration.
func (r *Router) Config() *Config { return r.cfg }

// QueueIDs is the set a flow's queue nodes may name (ivr.Env.Queues).
func (c *Config) QueueIDs() map[string]bool {
	m := map[string]bool{}
	for _, q := range c.Queues {
		m[q.ID] = true
	}
	return m
}

func (r *Router) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run is the ACD's loop: on a kick or a tick it matches free agents with
// waiting calls; it re-reads agents and renews reservations periodically.
func (r *Router) run() {
	defer r.wg.Done()
	tick := time.NewTicker(r.o.Tick)
	defer tick.Stop()
	lastRefresh, lastRenew := r.o.Now(), r.o.Now()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.kick:
		case <-tick.C:
		}
		now := r.o.Now()
		if now.Sub(lastRefresh) >= r.o.Refresh {
			if err := r.refresh(r.ctx); err != nil && r.ctx.Err() == nil {
				r.log.Warn("routing: refresh agents", "err", err)
			}
			lastRefresh = now
		}
		if now.Sub(lastRenew) >= r.o.ReserveTTL/3 {
			r.renew(now)
			lastRenew = now
		}
		for _, a := range r.decide(now) {
			r.ring(a)
		}
	}
}

// refresh re-reads the agents; reservations this process holds keep their
// local view (the store has them too).
func (r *Router) refresh(ctx context.Context) error {
	list, err := r.o.Store.Agents(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]*Agent, len(list))
	for _, a := range list {
		m[a.ID] = a
	}
	r.mu.Lock()
	r.agents = m
	r.mu.Unlock()
	return nil
}

func (r *Router) setAgent(a *Agent) {
	if a == nil {
		return
	}
	r.mu.Lock()
	r.agents[a.ID] = a
	r.mu.Unlock()
}

func (r *Router) renew(now time.Time) {
	r.mu.Lock()
	hs := make(map[string]held, len(r.held))
	for id, h := range r.held {
		hs[id] = *h
	}
	r.mu.Unlock()
	for id, h := range hs {
		if err := r.o.Store.Hold(r.ctx, id, h.holder, h.activity, now.Add(r.o.ReserveTTL)); err != nil && r.ctx.Err() == nil {
			r.log.Warn("routing: renew reservation", "agent", id, "err", err)
		}
	}
}

// Route implements ivr.Router.
func (r *Router) Route(ctx context.Context, call ivr.Call, d ivr.Decision) (ivr.Outcome, error) {
	switch d.Kind {
	case ivr.KindQueue:
		return r.queueCall(ctx, call, d)
	case ivr.KindTransfer:
		return r.transfer(ctx, call, d, "flow node "+d.Node)
	}
	return ivr.Outcome{Status: ivr.OutcomeFailed, Reason: "unknown decision kind " + d.Kind}, nil
}

func caseNumberOf(call ivr.Call, d ivr.Decision) string {
	if c, ok := call.(CaseNumberer); ok {
		if n := c.CaseNumber(); n != "" {
			return n
		}
	}
	return d.Vars["case_number"]
}

func failed(reason string) ivr.Outcome {
	return ivr.Outcome{Status: ivr.OutcomeFailed, Reason: reason}
}

func isDone(c ivr.Call) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// key resolves a prompt id in lang with the zh-CN fallback.
func (r *Router) key(lang, id string) string {
	if lang == "" {
		lang = ivr.DefaultLanguage
	}
	if c := r.o.Catalogue; c != nil && !c.Has(id, lang) {
		lang = ivr.DefaultLanguage
	}
	return lang + "/" + id
}

func (r *Router) digitKeys(lang, s string) []string {
	var out []string
	for _, c := range s {
		if c >= '0' && c <= '9' {
			out = append(out, r.key(lang, "digit-"+string(c)))
		}
	}
	return out
}

// bridge connects an answered leg to the caller until one of them ends,
// then hangs up the other side if needed. It reports whether the caller is
// gone.
func (r *Router) bridge(ctx context.Context, call ivr.Call, leg Leg) (callerGone bool, err error) {
	// TransferCall ends the bridge by cancelling bctx with a
	// *TransferRequest as its cause; the plane's Bridge then returns.
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.mu.Lock()
	r.bridged[call.ID()] = cancel
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.bridged, call.ID())
		r.mu.Unlock()
	}()
	err = r.o.Dialer.Bridge(bctx, call, leg)
	if tr := (*TransferRequest)(nil); ctx.Err() == nil && errors.As(context.Cause(bctx), &tr) {
		err = tr
	}
	callerGone = isDone(call)
	if !isDone(leg) {
		reason := "caller hung up"
		if !callerGone {
			reason = "bridge ended"
		}
		leg.Hangup(context.WithoutCancel(ctx), reason)
	}
	return callerGone, err
}

// legOutcome turns how a bridged leg ended into the flow's outcome.
func legOutcome(ctx context.Context, callerGone bool, bridgeErr error, who string) (ivr.Outcome, error) {
	switch {
	case ctx.Err() != nil:
		return ivr.Outcome{}, ctx.Err()
	case callerGone:
		return ivr.Outcome{Status: ivr.OutcomeLeft, Reason: "caller hung up during the " + who + " leg"}, nil
	case bridgeErr != nil:
		return failed(who + " bridge: " + bridgeErr.Error()), nil
	}
	return ivr.Outcome{Status: ivr.OutcomeReturned, Reason: who + " hung up"}, nil
}

// minLoopPlay: a looped Play that returns sooner played nothing.
const minLoopPlay = 100 * time.Millisecond

// playLoop plays key to c again and again until ctx is done ("-": silence).
// When the call ends, the plane cannot play the key, or plays nothing, it
// waits for ctx in silence rather than spin.
func (r *Router) playLoop(ctx context.Context, c ivr.Call, key, what string) {
	for key != "-" && ctx.Err() == nil {
		began := time.Now()
		if err := c.Play(ctx, []string{key}, false); err != nil {
			if ctx.Err() == nil && !errors.Is(err, ivr.ErrHungUp) {
				r.log.Warn("routing: "+what, "call", c.ID(), "err", err)
			}
			break
		}
		if time.Since(began) < minLoopPlay {
			break
		}
	}
	<-ctx.Done()
}

// ringback plays the ringback tone to c in a loop until stop is called.
// stop returns once the tone has stopped, so that the bridge which follows
// has the call's audio to itself.
func (r *Router) ringback(ctx context.Context, c ivr.Call) (stop func()) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.playLoop(rctx, c, r.o.Ringback, "ringback")
	}()
	return func() { cancel(); <-done }
}

// ringWait waits for leg's answer (waitAnswer) while c, who waits for
// it, hears the ringback, or the leg's early media once it sends some and
// the plane can relay it. The audio has stopped when it returns.
func (r *Router) ringWait(ctx context.Context, c ivr.Call, leg Leg, timeout time.Duration, gone <-chan struct{}) error {
	stopAudio := r.ringback(ctx, c)
	defer func() { stopAudio() }()
	var early <-chan struct{}
	rel, canRelay := r.o.Dialer.(EarlyRelayer)
	if em, ok := leg.(EarlyMediaLeg); ok && canRelay {
		early = em.EarlyMedia()
	}
	return waitAnswer(ctx, leg, timeout, gone, early, func() {
		stopAudio()
		stop, err := rel.RelayEarly(c, leg)
		if err != nil {
			r.log.Warn("routing: early media not relayed", "call", c.ID(), "leg", leg.ID(), "err", err)
			stopAudio = r.ringback(ctx, c)
			return
		}
		r.log.Info("routing: relaying early media", "call", c.ID(), "leg", leg.ID())
		stopAudio = stop
	})
}

// waitAnswer waits for a leg's answer; it hangs the leg up unless
// answered. gone, when closed, means the call it was for is gone. onEarly,
// when early is closed first, is called once (early media began).
func waitAnswer(ctx context.Context, leg Leg, timeout time.Duration, gone <-chan struct{}, early <-chan struct{}, onEarly func()) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	hang := func(reason string) { leg.Hangup(context.WithoutCancel(ctx), reason) }
	for {
		select {
		case <-early:
			early = nil // once
			onEarly()
		case <-leg.Answered():
			return nil
		case <-leg.Done():
			// Answered and Done may both be ready: an answer wins.
			select {
			case <-leg.Answered():
				return nil
			default:
			}
			if err := leg.Err(); err != nil {
				return err
			}
			return ErrRejected
		case <-t.C:
			hang("ring timeout")
			return fmt.Errorf("%w: ring timeout after %s", ErrNoAnswer, timeout)
		case <-gone:
			hang("caller hung up")
			return ivr.ErrHungUp
		case <-ctx.Done():
			hang("shutting down")
			return ctx.Err()
		}
	}
}

// reasonOf names a failure for figures.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrBusy):
		return "busy"
	case errors.Is(err, ErrNoAnswer):
		return "no-answer"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrUnreachable):
		return "unreachable"
	case errors.Is(err, ivr.ErrHungUp):
		return "caller-hangup"
	}
	return "error"
}

// ErrNotBridged: TransferCall names a call that is in no bridge now.
var ErrNotBridged = errors.New("routing: no such call in a bridge")

// ErrNotConfigured: a transfer names something that is not a configured
// destination (refused and logged: toll-fraud guard).
var ErrNotConfigured = errors.New("routing: not a configured destination")

// TransferCall sends a caller who is talking with an agent or a line on to
// a configured destination (an agent's desktop, a supervisor: the API).
// The bridge ends, the agent or line is hung up, and the router that owns
// the call transfers it, as for a REFER. Anything but a configured
// destination is refused and logged.
func (r *Router) TransferCall(ctx context.Context, callID, destination, by string) error {
	if _, ok := r.dir.Allowed(destination, "api by "+by); !ok {
		r.mu.Lock()
		r.refused++
		r.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNotConfigured, truncate(destination, 40))
	}
	r.mu.Lock()
	cancel, ok := r.bridged[callID]
	r.mu.Unlock()
	if !ok {
		return ErrNotBridged
	}
	r.log.Info("routing: transfer requested", "call", callID, "destination", destination, "by", by)
	cancel(&TransferRequest{Destination: destination, By: by})
	return nil
}

// transfer sends the call to a configured destination and bridges it.
// Anything not configured is refused (toll-fraud guard). On failure the
// flow goes on at on_fail: the destination's fallback path.
func (r *Router) transfer(ctx context.Context, call ivr.Call, d ivr.Decision, source string) (ivr.Outcome, error) {
	dest, ok := r.dir.Allowed(d.ID, source)
	if !ok {
		r.mu.Lock()
		r.refused++
		r.mu.Unlock()
		return failed("not a configured destination"), nil
	}
	now := r.o.Now()
	fig := r.dests[dest.ID]
	fail := func(reason string) (ivr.Outcome, error) {
		r.mu.Lock()
		fig.failures[reason]++
		r.mu.Unlock()
		r.log.Info("routing: transfer failed", "destination", dest.ID, "reason", reason, "fallback", dest.Fallback)
		return failed(reason), nil
	}
	if dest.Calendar != "" && r.o.Calendars != nil {
		if open, _ := r.o.Calendars.IsOpen(dest.Calendar, now); !open {
			return fail("closed")
		}
	}
	if dest.Trunk == "" {
		return fail("no-trunk")
	}
	r.mu.Lock()
	if dest.MaxCalls > 0 && fig.active >= dest.MaxCalls {
		r.mu.Unlock()
		return fail("max-calls")
	}
	fig.active++
	fig.transfers++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		fig.active--
		r.mu.Unlock()
	}()
	leg, err := r.o.Dialer.DialOut(ctx, Outbound{Destination: dest.ID, Number: dest.Number, Trunk: dest.Trunk, Caller: call,
		PassCaller: dest.PassCaller, CaseNumber: caseNumberOf(call, d), Timeout: r.o.TransferTimeout})
	if err != nil {
		return fail(reasonOf(err))
	}
	err = r.ringWait(ctx, call, leg, r.o.TransferTimeout, call.Done())
	if err != nil {
		if errors.Is(err, ivr.ErrHungUp) {
			return ivr.Outcome{}, ivr.ErrHungUp
		}
		if ctx.Err() != nil {
			return ivr.Outcome{}, ctx.Err()
		}
		return fail(reasonOf(err))
	}
	r.mu.Lock()
	fig.answered++
	r.mu.Unlock()
	callerGone, berr := r.bridge(ctx, call, leg)
	if tr := (*TransferRequest)(nil); !callerGone && errors.As(berr, &tr) && tr.Destination != dest.ID {
		// The line sent the caller on (REFER) to another configured line.
		r.log.Info("routing: line transferred the caller", "from", dest.ID, "destination", tr.Destination)
		return r.transfer(ctx, call, ivr.Decision{Kind: ivr.KindTransfer, ID: tr.Destination, Vars: d.Vars}, "refer by line "+dest.ID)
	}
	return legOutcome(ctx, callerGone, berr, "destination")
}

// masked is a caller number fit for the API.
func masked(c ivr.Call) string { return telemetry.MaskNumber(c.Info().Caller) }

func itoa(i int) string { return strconv.Itoa(i) }
