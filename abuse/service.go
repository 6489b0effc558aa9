package abuse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/sqldb"
)

var (
	// ErrNotFound: no such decision or call.
	ErrNotFound = errors.New("abuse: not found")
	// ErrInvalid: a request the service refuses (unknown flag kind, review
	// action, missing reason).
	ErrInvalid = errors.New("abuse: invalid")
)

// OpenCases tells whether a caller has an open case someone took up: such a
// caller's calls are follow-ups, never repeats. Asked only before a measure
// is taken (rare), never on the ordinary call path.
type OpenCases interface {
	HasOpenCase(ctx context.Context, callerHash string) (bool, error)
}

// Auditor receives the audit trail (the cases store's AppendAudit).
type Auditor interface {
	AppendAudit(ctx context.Context, a cases.AuditEntry) error
}

// Sealer seals flag notes at rest (cases.KeyRing).
type Sealer interface {
	Seal(plain []byte, purpose string) (string, error)
	Open(sealed, purpose string) ([]byte, error)
}

// Config configures a Service.
type Config struct {
	DB     *sqldb.DB
	Policy *Policy // nil: DefaultPolicy
	// Hash is the keyed caller hash (cases.Protector.CallerHash): the
	// service never keeps a raw number.
	Hash func(number string) string
	// Mask masks a number for display (cases.MaskCaller).
	Mask      func(number string) string
	OpenCases OpenCases
	Audit     Auditor
	Sealer    Sealer
	Log       *slog.Logger
	Now       func() time.Time
	// Proc names this process in the event log (default: a random id);
	// events of other processes are applied as they appear.
	Proc string
	// FlushEvery is the write-behind period (default 100 ms); SyncEvery how
	// often the events of other processes are read (default 2 s; negative:
	// never); SweepEvery how often idle callers are dropped (default 10 min;
	// negative: never, for tests that drive a manual clock and sweep
	// themselves).
	FlushEvery, SyncEvery, SweepEvery time.Duration
	// Retention is how long the event log keeps calls and flags (default
	// 180 days: long enough for a review and a referral, no longer —
	// PIPL art. 19, keep personal data only as long as the purpose needs).
	// Decisions are kept.
	Retention time.Duration
}

// Service is the article-26 service: it checks arriving calls, takes the
// ends of calls and the agents' flags, makes decisions and serves their
// review.
type Service struct {
	cfg   Config
	pol   *Policy
	eng   *engine
	st    *dbStore
	log   *slog.Logger
	now   func() time.Time
	allow map[string]bool // hashes of allow-listed numbers

	mu      sync.Mutex
	active  map[string]*activeCall // by call id
	queue   []*event
	dropped int64
	kick    chan struct{}

	flushMu sync.Mutex
	syncMu  sync.Mutex
	lastSeq int64
	seen    map[string]int64 // recently applied event ids (sync overlap)

	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
}

type activeCall struct {
	hash    string
	masked  string
	arrived time.Time
	counted bool
	watch   func(Verdict)
}

// Open migrates the store, rebuilds the state from the event log and starts
// the write-behind, sync and sweep loops. Close stops them.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Hash == nil {
		return nil, errors.New("abuse: DB and Hash are required")
	}
	if cfg.Policy == nil {
		cfg.Policy = DefaultPolicy()
	}
	if cfg.Mask == nil {
		cfg.Mask = cases.MaskCaller
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Proc == "" {
		cfg.Proc = uuid.NewString()[:8]
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 100 * time.Millisecond
	}
	if cfg.SyncEvery == 0 {
		cfg.SyncEvery = 2 * time.Second
	}
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = 10 * time.Minute
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 180 * 24 * time.Hour
	}
	if err := cfg.DB.Migrate(ctx, "abuse", migrations); err != nil {
		return nil, fmt.Errorf("abuse: migrate: %w", err)
	}
	s := &Service{
		cfg: cfg, pol: cfg.Policy, eng: newEngine(cfg.Policy), st: &dbStore{db: cfg.DB},
		log: cfg.Log, now: cfg.Now, allow: map[string]bool{},
		active: map[string]*activeCall{}, kick: make(chan struct{}, 1),
		seen: map[string]int64{}, stop: make(chan struct{}),
	}
	for _, n := range cfg.Policy.Exempt.Allow {
		s.allow[cfg.Hash(n)] = true
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	s.done.Add(2)
	go s.flushLoop()
	go s.syncLoop()
	return s, nil
}

// Policy returns the policy in force.
func (s *Service) Policy() *Policy { return s.pol }

// Close writes what is queued and stops the loops.
func (s *Service) Close() error {
	s.once.Do(func() { close(s.stop) })
	s.done.Wait()
	return s.flush(context.Background())
}

// horizon is how far back the state needs events.
func (s *Service) horizon() time.Duration {
	return max(s.pol.LadderMemory.D(), s.pol.maxWindow(SignalCalls), s.pol.maxWindow(SignalLongCalls), s.pol.maxWindow(SignalFlags)) + time.Hour
}

// load rebuilds the in-memory state from the event log.
func (s *Service) load(ctx context.Context) error {
	from := s.now().Add(-s.horizon())
	n := 0
	for {
		evs, err := s.st.eventsAfter(ctx, s.lastSeq, from, 10000)
		if err != nil {
			return err
		}
		for _, e := range evs {
			s.apply(e)
			s.lastSeq = e.Seq
			s.seen[e.ID] = e.Seq // Sync re-reads an overlap: never apply twice
		}
		n += len(evs)
		if len(evs) < 10000 {
			break
		}
	}
	s.log.Info("abuse: state loaded", "events", n, "callers", s.eng.size())
	return nil
}

// apply replays one logged event on the in-memory state (start, or an
// event of another process).
func (s *Service) apply(e *event) {
	k := keyOf(e.CallerHash)
	s.eng.with(k, true, func(st *callerState) {
		switch e.Kind {
		case evArrive:
			s.eng.applyArrive(st, sec(e.At), e.Exempt)
		case evEnd:
			if e.FollowUp && !e.Arrived.IsZero() {
				a := sec(e.Arrived)
				for i := len(st.calls) - 1; i >= 0; i-- {
					if st.calls[i] == a {
						st.calls = append(st.calls[:i], st.calls[i+1:]...)
						break
					}
				}
			}
			s.eng.applyEnd(st, sec(e.Ended), e.CutOff, e.Long, e.At)
		case evFlag:
			s.eng.applyFlag(st, sec(e.At), e.Flag, e.ID, e.At)
		case evDecision:
			d := e.Decision
			if d == nil {
				return
			}
			current := st.x != nil && st.x.dec != nil && st.x.dec.ID == d.ID
			switch {
			case e.Review == ActionLift:
				if current {
					s.eng.applyLift(st, d)
				}
			case e.Review != "" || d.Status == StatusSuperseded:
				if current {
					st.x.dec = d
				}
			default:
				s.eng.applyDecision(st, d)
			}
		}
	})
}

// enqueue adds an event to the write-behind queue.
func (s *Service) enqueue(e *event) {
	if e.ID == "" {
		e.ID = cases.NewID()
	}
	e.Proc = s.cfg.Proc
	s.mu.Lock()
	if len(s.queue) >= maxQueue {
		// The store has been down for long: keep memory bounded. The
		// in-memory state is still right; a restart would miss these.
		s.dropped++
		if s.dropped == 1 || s.dropped%100000 == 0 {
			s.log.Error("abuse: store unreachable, event log writes dropped", "dropped", s.dropped)
		}
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, e)
	n := len(s.queue)
	s.mu.Unlock()
	if n >= 4096 {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (s *Service) flushLoop() {
	defer s.done.Done()
	t := time.NewTicker(s.cfg.FlushEvery)
	defer t.Stop()
	var sweepC <-chan time.Time // nil (never) when SweepEvery < 0
	if s.cfg.SweepEvery > 0 {
		sweep := time.NewTicker(s.cfg.SweepEvery)
		defer sweep.Stop()
		sweepC = sweep.C
	}
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kick:
		case <-sweepC:
			s.sweep(context.Background())
			continue
		}
		if err := s.flush(context.Background()); err != nil {
			s.log.Warn("abuse: write-behind failed; retrying", "err", err)
		}
	}
}

// sweep drops idle callers from memory, calls whose end never came (a
// plane that lost them) and events past the retention from the log.
func (s *Service) sweep(ctx context.Context) {
	now := s.now()
	if n := s.eng.sweep(now); n > 0 {
		s.log.Debug("abuse: idle callers dropped", "n", n)
	}
	s.mu.Lock()
	for id, ac := range s.active {
		if now.Sub(ac.arrived) > 12*time.Hour {
			delete(s.active, id)
		}
	}
	s.mu.Unlock()
	if err := s.st.prune(ctx, now.Add(-max(s.cfg.Retention, s.horizon()))); err != nil {
		s.log.Warn("abuse: pruning the event log", "err", err)
	}
}

// flush writes the queued events. On failure they stay queued (in order)
// for the next try.
func (s *Service) flush(ctx context.Context) error {
	// One flush at a time: batches must reach the log in queue order.
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	if len(q) == 0 {
		return nil
	}
	for len(q) > 0 {
		n := min(len(q), 2000)
		if err := s.st.writeBatch(ctx, q[:n]); err != nil {
			s.mu.Lock()
			s.queue = append(q, s.queue...)
			s.mu.Unlock()
			return err
		}
		q = q[n:]
	}
	return nil
}

// Flush writes every queued event now (tests, shutdown).
func (s *Service) Flush(ctx context.Context) error { return s.flush(ctx) }

func (s *Service) syncLoop() {
	defer s.done.Done()
	if s.cfg.SyncEvery < 0 {
		<-s.stop
		return
	}
	t := time.NewTicker(s.cfg.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Sync(context.Background()); err != nil {
				s.log.Warn("abuse: sync failed", "err", err)
			}
		}
	}
}

// maxQueue bounds the write-behind queue while the store is down: about
// 13 hours of a busy hotline's events (10,000 calls an hour), ~100 MiB.
const maxQueue = 1 << 18

// syncOverlap re-reads this many sequence numbers back: on PostgreSQL a
// transaction may commit a lower seq after a higher one was read.
const syncOverlap = 1000

// Sync applies the events other processes logged since the last sync.
func (s *Service) Sync(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	from := max(s.lastSeq-syncOverlap, 0)
	evs, err := s.st.eventsAfter(ctx, from, s.now().Add(-s.horizon()), 10000)
	if err != nil {
		return err
	}
	for _, e := range evs {
		s.lastSeq = max(s.lastSeq, e.Seq)
		if e.Proc == s.cfg.Proc {
			continue
		}
		if _, ok := s.seen[e.ID]; ok {
			continue
		}
		s.seen[e.ID] = e.Seq
		s.apply(e)
	}
	for id, seq := range s.seen {
		if seq < s.lastSeq-2*syncOverlap {
			delete(s.seen, id)
		}
	}
	return nil
}

// CallStart is an arriving call.
type CallStart struct {
	CallID string
	Caller string // the number as received; hashed at once, never kept
	At     time.Time
}

// Verdict is what the call path does with a call.
type Verdict struct {
	Measure Measure `json:"measure"`
	// Decision explains the measure (nil for None).
	Decision *Decision `json:"decision,omitempty"`
	// New: the decision was taken at this call.
	New bool `json:"new,omitempty"`
	// Counted: the call counts as a repeat; Exempt says why not.
	Counted bool   `json:"counted"`
	Exempt  string `json:"exempt,omitempty"`
	// MaxCall is the longest the call may last (restricted).
	MaxCall time.Duration `json:"max_call,omitempty"`
	// Remaining is how long the measure still lasts.
	Remaining time.Duration `json:"remaining,omitempty"`
	// Queue is where a restricted caller should be routed.
	Queue string `json:"queue,omitempty"`
}

// SupervisorQueue is the queue restricted callers go to.
const SupervisorQueue = "supervisor"

// Check is called when a call arrives, before the IVR: it counts the call
// and returns the measure to apply. The ordinary path is in memory (a hash
// and a map look-up under a shard lock); only a call that would start a new
// measure asks the case store whether the caller has an open case.
func (s *Service) Check(ctx context.Context, c CallStart) Verdict {
	if c.At.IsZero() {
		c.At = s.now()
	}
	hash := s.cfg.Hash(c.Caller)
	if hash == "" {
		return Verdict{Exempt: "no_caller_id"}
	}
	k := keyOf(hash)
	a := s.eng.arrive(k, c.At, s.allow[hash])
	v := Verdict{Counted: a.counted, Exempt: a.exempt}
	dec := a.live
	var decEvs []*event
	if a.want > None {
		d, exempt, evs := s.escalate(ctx, k, hash, s.cfg.Mask(c.Caller), c.CallID, c.At, a.want, a.fire)
		if exempt != "" {
			s.eng.uncount(k, sec(c.At))
			v.Counted, v.Exempt = false, exempt
		} else if d != nil {
			dec, v.New, decEvs = d, true, evs
		}
	}
	v.fill(dec, s.pol, c.At)
	ev := &event{Kind: evArrive, At: c.At, CallerHash: hash, CallID: c.CallID, Exempt: v.Exempt, Measure: v.Measure}
	if dec != nil {
		ev.Dec = dec.ID
	}
	// The arrival first: replayed, it counts before the decision spends
	// the signals, as it did here.
	s.enqueue(ev)
	for _, e := range decEvs {
		s.enqueue(e)
	}
	if c.CallID != "" {
		s.mu.Lock()
		s.active[c.CallID] = &activeCall{hash: hash, masked: s.cfg.Mask(c.Caller), arrived: c.At, counted: v.Counted}
		s.mu.Unlock()
	}
	return v
}

func (v *Verdict) fill(d *Decision, p *Policy, now time.Time) {
	if d == nil {
		return
	}
	v.Measure = effective(d)
	v.Decision = d.clone()
	v.Remaining = d.Expires.Sub(now)
	if v.Measure == Restricted {
		v.MaxCall = p.Measures.Restricted.MaxCall.D()
		v.Queue = SupervisorQueue
	}
}

// escalate takes a new decision unless the caller turns out to have an
// open case (then the call is a follow-up: exempt "open_case").
func (s *Service) escalate(ctx context.Context, k uint64, hash, masked, callID string, at time.Time, m Measure, f *firing) (*Decision, string, []*event) {
	if s.cfg.OpenCases != nil && f.rule.Signal != SignalFlags {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		open, err := s.cfg.OpenCases.HasOpenCase(cctx, hash)
		cancel()
		if err != nil {
			// Unknown: no new measure (a wrong block costs more than a
			// missed one); the next call asks again.
			s.log.Warn("abuse: open-case check failed; no new measure", "caller", masked, "err", err)
			return nil, ExemptOpenCase, nil
		}
		if open {
			return nil, ExemptOpenCase, nil
		}
	}
	d := &Decision{
		ID: cases.NewID(), CallerHash: hash, Caller: masked, Measure: m, Status: StatusActive,
		Created: at, Rule: f.rule.ID, Why: f.rule.Why, WhyZH: f.rule.WhyZH, Signal: f.rule.Signal, Window: f.rule.Window,
		AtLeast: f.rule.AtLeast, Count: f.count, CallID: callID, Updated: at,
	}
	mp := s.pol.Of(m)
	d.Expires = at.Add(mp.Duration.D())
	if m == Restricted {
		d.MaxCall = mp.MaxCall
	}
	if mp.Confirm {
		d.Status = StatusPending
	}
	for _, t := range f.times {
		d.CallTimes = append(d.CallTimes, timeOf(t))
	}
	for _, fl := range f.flags {
		d.Flags = append(d.Flags, FlagRef{ID: fl.id, At: timeOf(fl.at), Kind: fl.kind})
	}
	var superseded *Decision
	s.eng.with(k, true, func(st *callerState) {
		if st.x != nil {
			if st.x.ladder > None && sec(at)-st.x.ladderAt <= s.eng.memory {
				d.Previous, d.PreviousAt = st.x.ladder, timeOf(st.x.ladderAt)
			}
			d.Warned = timeOf(st.x.warned)
			if old := st.live(at); old != nil {
				superseded = old.clone()
				superseded.Status, superseded.Updated = StatusSuperseded, at
			}
		}
		s.eng.applyDecision(st, d)
	})
	var evs []*event
	if superseded != nil {
		evs = append(evs, &event{Kind: evDecision, At: at, CallerHash: hash, CallID: callID, Decision: superseded})
	}
	evs = append(evs, &event{Kind: evDecision, At: at, CallerHash: hash, CallID: callID, Decision: d.clone()})
	s.log.Info("abuse: decision", "decision", d.ID, "caller", masked, "measure", m.String(), "status", d.Status,
		"rule", d.Rule, "count", d.Count, "window", d.Window.D().String())
	return d, "", evs
}

// CallEnd is how a call ended, for the signals.
type CallEnd struct {
	CallID string
	Ended  time.Time
	// Outcome is the case outcome (cases.Outcome*).
	Outcome string
	// IVR is the time in the IVR; Talk the time with an agent.
	IVR, Talk time.Duration
	// Progress: the caller pressed a key or was routed somewhere.
	Progress bool
	// FollowUp: the caller keyed the number of a case (the call is taken
	// back from the counts).
	FollowUp bool
	// CutOff: the call was cut off (abandoned, dropped): a call back soon
	// after is a redial.
	CutOff bool
	// Recording references the call's recording, for the evidence pack.
	Recording string
}

// End records the end of a call. A long call may start a measure for the
// caller's next calls.
func (s *Service) End(ctx context.Context, e CallEnd) {
	if e.Ended.IsZero() {
		e.Ended = s.now()
	}
	s.mu.Lock()
	ac := s.active[e.CallID]
	delete(s.active, e.CallID)
	s.mu.Unlock()
	if ac == nil {
		return
	}
	long := !e.FollowUp && (e.Talk >= s.pol.LongCall.AgentTalk.D() || (!e.Progress && e.IVR >= s.pol.LongCall.IVRIdle.D()))
	k := keyOf(ac.hash)
	if e.FollowUp && ac.counted {
		s.eng.uncount(k, sec(ac.arrived))
	}
	var m Measure
	var f *firing
	s.eng.with(k, true, func(st *callerState) { m, f = s.eng.applyEnd(st, sec(e.Ended), e.CutOff, long, e.Ended) })
	s.enqueue(&event{Kind: evEnd, At: e.Ended, CallerHash: ac.hash, CallID: e.CallID, Ended: e.Ended, Arrived: ac.arrived,
		Outcome: e.Outcome, IVRMS: e.IVR.Milliseconds(), TalkMS: e.Talk.Milliseconds(), FollowUp: e.FollowUp,
		CutOff: e.CutOff, Long: long, Recording: e.Recording})
	if m > None {
		_, _, evs := s.escalate(ctx, k, ac.hash, ac.masked, e.CallID, e.Ended, m, f)
		for _, e := range evs {
			s.enqueue(e)
		}
	}
}

// Watch registers f to hear of a new measure taken during the call (an
// agent's flag): the call path ends a call that becomes blocked. The
// returned func unregisters.
func (s *Service) Watch(callID string, f func(Verdict)) func() {
	s.mu.Lock()
	if ac := s.active[callID]; ac != nil {
		ac.watch = f
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if ac := s.active[callID]; ac != nil {
			ac.watch = nil
		}
		s.mu.Unlock()
	}
}

// Flag records an agent's flag on a call — harassment, insult or threat
// with a note, or "warned" when the agent dissuaded the caller (劝阻) — and
// re-checks the caller at once. It works during the call and after it.
// The SIP plane calls it when an agent keys *7; the API when an agent
// flags from the desk. It returns the decision taken, if any.
func (s *Service) Flag(ctx context.Context, callID, agent, kind, note string) (*Decision, error) {
	if !validKind(kind) {
		return nil, fmt.Errorf("%w: flag kind %q (harassment, insult, threat, warned)", ErrInvalid, kind)
	}
	if callID == "" {
		return nil, fmt.Errorf("%w: a flag needs the call id", ErrInvalid)
	}
	now := s.now()
	s.mu.Lock()
	ac := s.active[callID]
	var hash, masked string
	var watch func(Verdict)
	if ac != nil {
		hash, masked, watch = ac.hash, ac.masked, ac.watch
	}
	s.mu.Unlock()
	if ac == nil {
		// After the call: find it in the log (written behind: flush first).
		if err := s.flush(ctx); err != nil {
			return nil, err
		}
		h, _, err := s.st.callerOfCall(ctx, callID)
		if err != nil {
			return nil, err
		}
		hash = h
		s.eng.with(keyOf(h), false, func(st *callerState) {
			if st != nil && st.x != nil && st.x.dec != nil {
				masked = st.x.dec.Caller
			}
		})
	}
	e := &event{ID: cases.NewID(), Kind: evFlag, At: now, CallerHash: hash, CallID: callID, Agent: agent, Flag: kind}
	if note != "" {
		if s.cfg.Sealer != nil {
			sealed, err := s.cfg.Sealer.Seal([]byte(note), "abuse-note/"+e.ID)
			if err != nil {
				return nil, fmt.Errorf("abuse: seal note: %w", err)
			}
			e.NoteSealed = sealed
		} else {
			e.NoteSealed = "clear:" + note
		}
	}
	k := keyOf(hash)
	var m Measure
	var f *firing
	s.eng.with(k, true, func(st *callerState) { m, f = s.eng.applyFlag(st, sec(now), kind, e.ID, now) })
	s.enqueue(e)
	if m == None {
		return nil, s.flush(ctx)
	}
	d, _, evs := s.escalate(ctx, k, hash, masked, callID, now, m, f)
	for _, x := range append(evs, &event{Decision: d}) {
		if x.Decision == nil || d == nil || x.Decision.ID != d.ID {
			continue
		}
		for i := range x.Decision.Flags {
			if x.Decision.Flags[i].ID == e.ID {
				x.Decision.Flags[i].Agent, x.Decision.Flags[i].CallID = agent, callID
			}
		}
	}
	for _, e := range evs {
		s.enqueue(e)
	}
	if err := s.flush(ctx); err != nil {
		return d, err
	}
	if d != nil && watch != nil {
		var v Verdict
		v.fill(d, s.pol, now)
		v.New, v.Counted = true, true
		watch(v)
	}
	return d, nil
}

func validKind(k string) bool {
	for _, x := range FlagKinds {
		if x == k {
			return true
		}
	}
	return false
}

// Status returns the decision in force for a caller number (nil: none),
// from memory.
func (s *Service) Status(number string) *Decision {
	var d *Decision
	s.eng.with(keyOf(s.cfg.Hash(number)), false, func(st *callerState) { d = st.live(s.now()).clone() })
	return d
}

// Callers returns how many callers the in-memory state holds.
func (s *Service) Callers() int { return s.eng.size() }

type verdictKey struct{}

// WithVerdict returns ctx carrying the call's verdict, so that the parts
// of the call path after the check (the router: a restricted caller goes
// to Verdict.Queue) can read it.
func WithVerdict(ctx context.Context, v Verdict) context.Context {
	return context.WithValue(ctx, verdictKey{}, v)
}

// VerdictFrom returns the verdict WithVerdict put in ctx.
func VerdictFrom(ctx context.Context) (Verdict, bool) {
	v, ok := ctx.Value(verdictKey{}).(Verdict)
	return v, ok
}
