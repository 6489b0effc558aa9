package routing

import (
	"context"
	"errors"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/cq12345/hotline/ivr"
)

// assignment is one decision of the ACD: ring this agent for this call.
type assignment struct {
	w     *waiter
	agent *Agent
}

// eligible reports whether agent a may take queue q's call in lang.
func eligible(a *Agent, q *queue, lang string) bool {
	if !a.Skills.covers(q.cfg.Skills) {
		return false
	}
	return lang == "" || a.Skills.speaks(lang)
}

// numLess orders digit ids numerically ("9" before "10").
func numLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// better reports whether agent a should be offered q's call before b,
// by the queue's strategy.
func (q *queue) better(a, b *Agent) bool {
	switch q.cfg.Strategy {
	case RoundRobin:
		// Agents after the last one rung come first, in id order.
		aw, bw := !numLess(q.rrLast, a.ID), !numLess(q.rrLast, b.ID)
		if aw != bw {
			return !aw
		}
		return numLess(a.ID, b.ID)
	case FewestCalls:
		if a.Calls != b.Calls {
			return a.Calls < b.Calls
		}
	}
	if !a.IdleSince.Equal(b.IdleSince) {
		return a.IdleSince.Before(b.IdleSince)
	}
	return numLess(a.ID, b.ID)
}

// decide matches free agents with waiting calls: calls in order of queue
// priority, then of the time they joined; each gets the best free agent
// by its queue's strategy who has the skills and the language and has not
// let this call ring out already. It marks what it assigns (the call as
// ringing, the agent as pending) and returns the assignments; the
// reservation in the store comes next, in ring.
func (r *Router) decide(now time.Time) []assignment {
	r.mu.Lock()
	defer r.mu.Unlock()
	var free []*Agent
	for _, a := range r.agents {
		if a.Free(now) && !r.pending[a.ID] && r.held[a.ID] == nil && !now.Before(r.unreachable[a.ID]) {
			free = append(free, a)
		}
	}
	if len(free) == 0 {
		return nil
	}
	// Queues by priority; per queue, the free agents with its skills.
	qs := make([]*queue, 0, len(r.qorder))
	elig := make(map[*queue][]*Agent, len(r.qorder))
	for _, q := range r.qorder {
		if len(q.waiting) == 0 {
			continue
		}
		var l []*Agent
		for _, a := range free {
			if a.Skills.covers(q.cfg.Skills) {
				l = append(l, a)
			}
		}
		if len(l) > 0 {
			// Sorted once by the strategy: each call then takes the first
			// acceptable agent, so a round costs O(F log F + C), not O(F×C).
			sort.Slice(l, func(i, j int) bool { return q.better(l[i], l[j]) })
			qs = append(qs, q)
			elig[q] = l
		}
	}
	cursor := make(map[*queue]int, len(qs))
	sort.SliceStable(qs, func(i, j int) bool { return qs[i].cfg.Priority > qs[j].cfg.Priority })
	taken := map[string]bool{}
	var out []assignment
	pos := make([]int, len(qs))
	for len(taken) < len(free) {
		// Next call: among the queues of the highest priority that still
		// have candidates, the one that joined first.
		bi := -1
		for i, q := range qs {
			for pos[i] < len(q.waiting) && q.waiting[pos[i]].ringing != "" {
				pos[i]++
			}
			if pos[i] >= len(q.waiting) {
				continue
			}
			if bi < 0 {
				bi = i
				continue
			}
			if q.cfg.Priority < qs[bi].cfg.Priority {
				continue
			}
			w, bw := q.waiting[pos[i]], qs[bi].waiting[pos[bi]]
			if w.joined.Before(bw.joined) || (w.joined.Equal(bw.joined) && w.seq < bw.seq) {
				bi = i
			}
		}
		if bi < 0 {
			break
		}
		q := qs[bi]
		w := q.waiting[pos[bi]]
		pos[bi]++
		var best *Agent
		skippedTried := false
		l := elig[q]
		for cursor[q] < len(l) && taken[l[cursor[q]].ID] {
			cursor[q]++
		}
		for _, a := range l[cursor[q]:] {
			if taken[a.ID] || (w.lang != "" && !a.Skills.speaks(w.lang)) {
				continue
			}
			if w.tried[a.ID] {
				skippedTried = true
				continue
			}
			best = a
			break
		}
		if best == nil {
			if skippedTried {
				// Every agent who could take it let it ring out: they may
				// try again (next round), rather than nobody.
				w.tried = nil
			}
			continue
		}
		taken[best.ID] = true
		r.pending[best.ID] = true
		w.ringing = best.ID
		if q.cfg.Strategy == RoundRobin {
			q.rrLast = best.ID
		}
		out = append(out, assignment{w: w, agent: best})
	}
	return out
}

// ring reserves the agent in the store and rings their phone. It runs in
// the ACD loop, so that phones ring in the order of the decisions; the
// wait for the answer goes on in its own goroutine.
func (r *Router) ring(as assignment) {
	ctx := r.ctx
	w, a := as.w, as.agent
	r.mu.Lock()
	q := w.q
	r.mu.Unlock()
	holder := r.o.Holder + "/" + w.call.ID()
	now := r.o.Now()
	ok, err := r.o.Store.Reserve(ctx, a.ID, holder, Ringing, w.caseNum, now, now.Add(r.o.ReserveTTL))
	r.mu.Lock()
	delete(r.pending, a.ID)
	if ok {
		r.held[a.ID] = &held{holder: holder, activity: Ringing}
		cp := *a
		cp.ReservedBy, cp.ReservedUntil, cp.Activity, cp.Case = holder, now.Add(r.o.ReserveTTL), Ringing, w.caseNum
		r.agents[a.ID] = &cp
	}
	r.mu.Unlock()
	if !ok {
		if err != nil && ctx.Err() == nil {
			r.log.Warn("routing: reserve", "agent", a.ID, "err", err)
		}
		// Someone else (another process, the API) changed the agent: read
		// it again and put the call back.
		if fresh, err := r.o.Store.Agent(ctx, a.ID); err == nil {
			r.setAgent(fresh)
		}
		r.unring(w, "")
		return
	}
	leg, err := r.o.Dialer.RingAgent(ctx, AgentRing{Agent: *a, Caller: w.call, CaseNumber: w.caseNum, Queue: q.cfg.ID,
		Lang: w.lang, Vars: w.vars, Timeout: q.cfg.RingTimeout})
	if err == nil {
		r.emit(r.callEvent("ringing", w, a.ID))
	}
	r.wg.Add(1)
	go r.awaitAnswer(w, q, a, holder, leg, err)
}

// unreachableBackoff is how long an agent whose phone could not be reached
// is left out of decisions.
const unreachableBackoff = 2 * time.Second

// awaitAnswer waits for the agent's answer: the answered leg goes to the
// waiting caller, a miss sends the call back to its place.
func (r *Router) awaitAnswer(w *waiter, q *queue, a *Agent, holder string, leg Leg, err error) {
	defer r.wg.Done()
	ctx := r.ctx
	if err == nil {
		err = waitAnswer(ctx, leg, q.cfg.RingTimeout, w.done, nil, nil)
	}
	if err != nil {
		unreachable := errors.Is(err, ErrUnreachable)
		miss := !errors.Is(err, ivr.ErrHungUp) && ctx.Err() == nil && !unreachable
		if unreachable && ctx.Err() == nil {
			r.mu.Lock()
			r.unreachable[a.ID] = r.o.Now().Add(unreachableBackoff)
			r.mu.Unlock()
			r.log.Info("routing: agent's phone unreachable (not registered?); left out for a while", "agent", a.ID,
				"for", unreachableBackoff.String(), "reason", reasonOf(err))
			r.releaseAgent(a.ID, holder, Release{Now: r.o.Now()})
			r.emit(r.callEvent("unreachable", w, a.ID))
			r.unring(w, a.ID)
			return
		}
		r.releaseAgent(a.ID, holder, Release{Missed: miss, PauseAfter: q.cfg.MaxMisses, Now: r.o.Now()})
		if miss {
			r.mu.Lock()
			q.fig.ringNoAnswer++
			r.mu.Unlock()
			r.emit(r.callEvent("missed", w, a.ID))
			r.log.Info("routing: agent did not answer; call back at its place", "agent", a.ID, "queue", q.cfg.ID, "reason", reasonOf(err))
			r.unring(w, a.ID)
		} else {
			r.unring(w, "")
		}
		return
	}
	at := r.o.Now()
	if err := r.o.Store.Hold(ctx, a.ID, holder, OnCall, at.Add(r.o.ReserveTTL)); err != nil {
		r.log.Warn("routing: hold", "agent", a.ID, "err", err)
	}
	r.mu.Lock()
	if h := r.held[a.ID]; h != nil {
		h.activity = OnCall
	}
	if cur := r.agents[a.ID]; cur != nil {
		cp := *cur
		cp.Activity = OnCall
		r.agents[a.ID] = &cp
	}
	gone := w.gone
	if !gone {
		w.gone = true
		r.removeLocked(w)
		w.conn <- connected{agent: a, leg: leg, holder: holder, at: at}
	}
	r.mu.Unlock()
	if gone {
		leg.Hangup(context.WithoutCancel(ctx), "caller gone")
		r.releaseAgent(a.ID, holder, Release{Answered: true, Now: r.o.Now()})
	}
}

// unring puts a call whose ring ended back to waiting (at its place: its
// join time and sequence never changed).
func (r *Router) unring(w *waiter, missedBy string) {
	r.mu.Lock()
	w.ringing = ""
	if missedBy != "" {
		if w.tried == nil {
			w.tried = map[string]bool{}
		}
		w.tried[missedBy] = true
	}
	r.mu.Unlock()
	r.poke()
}

// releaseAgent ends a reservation in the store and the mirror.
func (r *Router) releaseAgent(id, holder string, rel Release) {
	a, err := r.o.Store.Release(context.WithoutCancel(r.ctx), id, holder, rel)
	if err != nil {
		r.log.Warn("routing: release", "agent", id, "err", err)
	}
	r.mu.Lock()
	delete(r.held, id)
	r.mu.Unlock()
	if a != nil {
		r.setAgent(a)
		if rel.Missed && a.Presence == Paused && a.PauseReason == PauseNoAnswer {
			r.log.Warn("routing: agent paused after missed calls", "agent", a.ID, "reason", PauseNoAnswer)
		}
	}
	r.poke()
}

func (r *Router) enqueueLocked(q *queue, w *waiter) {
	w.q = q
	// Keep (joined, seq) order: a call moved here by overflow keeps its age.
	i := sort.Search(len(q.waiting), func(i int) bool {
		x := q.waiting[i]
		return x.joined.After(w.joined) || (x.joined.Equal(w.joined) && x.seq > w.seq)
	})
	q.waiting = append(q.waiting, nil)
	copy(q.waiting[i+1:], q.waiting[i:])
	q.waiting[i] = w
}

func (r *Router) removeLocked(w *waiter) {
	q := w.q
	for i, x := range q.waiting {
		if x == w {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			return
		}
	}
}

// queueCall puts the caller in a queue and blocks until an agent took the
// call and the agent leg ended, the caller hung up, or the queue
// overflowed.
func (r *Router) queueCall(ctx context.Context, call ivr.Call, d ivr.Decision) (ivr.Outcome, error) {
	r.mu.Lock()
	q := r.queues[d.ID]
	if q == nil {
		r.mu.Unlock()
		r.log.Warn("routing: refused: not a configured queue", "queue", truncate(d.ID, 40), "node", d.Node)
		return failed("not a configured queue"), nil
	}
	r.seq++
	w := &waiter{seq: r.seq, call: call, joined: r.o.Now(), lang: d.Lang, vars: d.Vars, caseNum: caseNumberOf(call, d),
		conn: make(chan connected, 1), done: make(chan struct{})}
	r.enqueueLocked(q, w)
	r.mu.Unlock()
	defer close(w.done)
	r.poke()
	r.log.Info("routing: queued", "queue", q.cfg.ID, "call", call.ID(), "case", w.caseNum)

	for {
		pctx, stopPlay := context.WithCancel(ctx)
		played := make(chan struct{})
		go func() { defer close(played); r.announce(pctx, w) }()
		stop := func() { stopPlay(); <-played }
		var maxWait <-chan time.Time
		if q.cfg.MaxWait > 0 {
			t := time.NewTimer(q.cfg.MaxWait - r.o.Now().Sub(w.joined))
			if w.overflow {
				t.Reset(q.cfg.MaxWait)
			}
			defer t.Stop()
			maxWait = t.C
		}
	wait:
		select {
		case c := <-w.conn:
			stop()
			return r.connected(ctx, w, c)
		case <-call.Done():
			stop()
			r.leave(w)
			return r.abandoned(ctx, w)
		case <-ctx.Done():
			stop()
			r.leave(w)
			return ivr.Outcome{}, ctx.Err()
		case <-maxWait:
			r.mu.Lock()
			if w.ringing != "" {
				// Let the ring end first: an answer still wins.
				r.mu.Unlock()
				maxWait = time.After(100 * time.Millisecond)
				goto wait
			}
			r.mu.Unlock()
			stop()
			r.leave(w)
			next, out, err := r.overflow(ctx, w)
			if next == nil {
				return out, err
			}
			q = next
		}
	}
}

// leave takes the call out of its queue; an agent leg already handed to it
// is hung up and the agent released.
func (r *Router) leave(w *waiter) {
	r.mu.Lock()
	if !w.gone {
		w.gone = true
		r.removeLocked(w)
	}
	r.mu.Unlock()
	select {
	case c := <-w.conn:
		c.leg.Hangup(context.WithoutCancel(r.ctx), "caller gone")
		r.releaseAgent(c.agent.ID, c.holder, Release{Answered: true, Now: r.o.Now()})
	default:
	}
}

// connected: the agent answered. The caller hears the agent's number
// (工号), then they are bridged; afterwards the agent wraps up.
func (r *Router) connected(ctx context.Context, w *waiter, c connected) (ivr.Outcome, error) {
	r.mu.Lock()
	q := w.q
	wait := c.at.Sub(w.joined)
	q.fig.answer(wait)
	r.mu.Unlock()
	r.log.Info("routing: agent answered", "queue", q.cfg.ID, "agent", c.agent.ID, "call", w.call.ID(), "case", w.caseNum,
		"wait_ms", wait.Milliseconds())
	r.emit(r.callEvent("connected", w, c.agent.ID))
	keys := append([]string{r.key(w.lang, "agent-number-is")}, r.digitKeys(w.lang, c.agent.ID)...)
	keys = append(keys, r.key(w.lang, "agent-at-your-service"))
	var callerGone bool
	var berr error
	// Meanwhile the agent hears a short whisper (a 12345 call, connecting)
	// rather than silence; the case number reached the phone with the
	// INVITE and the agent's events. Both end before the bridge.
	whispered := make(chan struct{})
	go func() {
		defer close(whispered)
		c.leg.Play(ctx, []string{r.key(ivr.DefaultLanguage, "agent-whisper")}, false)
	}()
	err := w.call.Play(ctx, keys, false)
	if err != nil {
		c.leg.Hangup(context.WithoutCancel(ctx), "caller hung up")
	}
	<-whispered
	if err != nil {
		callerGone = true
	} else {
		callerGone, berr = r.bridge(ctx, w.call, c.leg)
	}
	end := r.o.Now()
	r.mu.Lock()
	q.fig.handled(end.Sub(c.at))
	r.mu.Unlock()
	r.releaseAgent(c.agent.ID, c.holder, Release{Answered: true, WrapUntil: end.Add(q.cfg.WrapUp), Now: end})
	ev := r.callEvent("ended", w, c.agent.ID)
	ev.WrapUntil = end.Add(q.cfg.WrapUp)
	r.emit(ev)
	if tr := (*TransferRequest)(nil); !callerGone && errors.As(berr, &tr) {
		// The agent transferred the caller (REFER): the transfer runs here,
		// in the goroutine that owns the call, so the flow only goes on
		// once it is over.
		r.log.Info("routing: agent transferred the caller", "agent", c.agent.ID, "call", w.call.ID(), "destination", tr.Destination)
		return r.transfer(ctx, w.call, ivr.Decision{Kind: ivr.KindTransfer, ID: tr.Destination, Vars: map[string]string{"case_number": w.caseNum}},
			"refer by agent "+c.agent.ID)
	}
	return legOutcome(ctx, callerGone, berr, "agent")
}

// abandoned: the caller hung up while waiting. The abandon is counted and
// a callback task is booked, linked to the case.
func (r *Router) abandoned(ctx context.Context, w *waiter) (ivr.Outcome, error) {
	r.mu.Lock()
	q := w.q
	q.fig.abandoned++
	r.mu.Unlock()
	r.log.Info("routing: caller abandoned the queue", "queue", q.cfg.ID, "call", w.call.ID(), "case", w.caseNum,
		"waited_ms", r.o.Now().Sub(w.joined).Milliseconds())
	r.bookCallback(context.WithoutCancel(ctx), w)
	return ivr.Outcome{}, ivr.ErrHungUp
}

func (r *Router) bookCallback(ctx context.Context, w *waiter) bool {
	num := w.call.Info().Caller
	if num == "" || strings.Trim(strings.TrimPrefix(num, "+"), "0123456789") != "" {
		return false // anonymous or not a number: nobody to call back
	}
	cb, created, err := r.o.Store.AddCallback(ctx, Callback{Case: w.caseNum, CallID: w.call.ID(), Queue: w.q.cfg.ID, Number: num, Lang: w.lang}, r.o.Now())
	if err != nil {
		r.log.Error("routing: callback not booked", "call", w.call.ID(), "err", err)
		return false
	}
	if created {
		r.mu.Lock()
		r.cbs++
		r.mu.Unlock()
	}
	r.log.Info("routing: callback task", "callback", cb.ID, "case", cb.Case, "new", created)
	return true
}

// overflow carries out the queue's action at maximum wait. It returns the
// next queue when the call moves on to one.
func (r *Router) overflow(ctx context.Context, w *waiter) (*queue, ivr.Outcome, error) {
	r.mu.Lock()
	q := w.q
	q.fig.overflowed++
	r.mu.Unlock()
	r.log.Info("routing: queue overflow", "queue", q.cfg.ID, "action", q.cfg.Overflow, "to", q.cfg.OverflowTo, "call", w.call.ID())
	switch q.cfg.Overflow {
	case OverflowQueue:
		r.mu.Lock()
		next := r.queues[q.cfg.OverflowTo]
		w.gone, w.overflow, w.tried = false, true, nil
		r.enqueueLocked(next, w)
		r.mu.Unlock()
		r.poke()
		return next, ivr.Outcome{}, nil
	case OverflowCallback:
		if r.bookCallback(context.WithoutCancel(ctx), w) {
			err := w.call.Play(ctx, []string{r.key(w.lang, "callback-booked"), r.key(w.lang, "goodbye")}, false)
			if errors.Is(err, ivr.ErrHungUp) {
				return nil, ivr.Outcome{}, err
			}
			w.call.Hangup(ctx, "queue overflow: callback booked")
			return nil, ivr.Outcome{Status: ivr.OutcomeLeft, Reason: "overflow: callback booked"}, nil
		}
		return nil, failed("overflow: max wait (no number to call back)"), nil
	case OverflowMessage:
		return nil, failed("overflow: message"), nil
	}
	return nil, failed("overflow: max wait"), nil
}

// announce plays the caller's position and estimated wait, then the
// comfort prompt, first after AnnounceFirst and then every AnnounceEvery,
// with hold music in between.
func (r *Router) announce(ctx context.Context, w *waiter) {
	r.mu.Lock()
	first, every := w.q.cfg.AnnounceFirst, w.q.cfg.AnnounceEvery
	r.mu.Unlock()
	wait := first
	for r.hold(ctx, w.call, wait) {
		if err := w.call.Play(ctx, r.announcement(w), false); err != nil {
			return
		}
		wait = every
	}
}

// hold plays the hold music to c in a loop for d (or waits in silence when
// there is none, or it cannot be played); it reports false once ctx is
// done.
func (r *Router) hold(ctx context.Context, c ivr.Call, d time.Duration) bool {
	hctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	r.playLoop(hctx, c, r.o.HoldMusic, "hold music")
	return ctx.Err() == nil
}

// announcement builds the position/estimated-wait/comfort prompt keys.
func (r *Router) announcement(w *waiter) []string {
	ahead, ewt := r.position(w)
	l := w.lang
	keys := []string{r.key(l, "queue-ahead")}
	keys = append(keys, r.digitKeys(l, itoa(ahead))...)
	keys = append(keys, r.key(l, "queue-ahead-end"))
	if ewt > 0 {
		mins := int(math.Ceil(ewt.Minutes()))
		if mins <= 1 {
			keys = append(keys, r.key(l, "queue-wait-under-minute"))
		} else {
			keys = append(keys, r.key(l, "queue-wait"))
			keys = append(keys, r.digitKeys(l, itoa(mins))...)
			keys = append(keys, r.key(l, "queue-wait-minutes"))
		}
	}
	return append(keys, r.key(l, "queue-comfort"))
}

// DefaultHandleTime is the handle time estimates use before any call was
// handled.
const DefaultHandleTime = 3 * time.Minute

// position returns the callers ahead of w in its queue and the estimated
// wait: (ahead+1) × the mean of recent handle times ÷ the agents staffing
// the queue (logged in, not paused). Zero when nobody staffs it.
func (r *Router) position(w *waiter) (int, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := w.q
	ahead := 0
	for _, x := range q.waiting {
		if x == w {
			break
		}
		ahead++
	}
	staffed := 0
	now := r.o.Now()
	for _, a := range r.agents {
		if a.Presence == Available && eligible(a, q, w.lang) {
			staffed++
		}
		_ = now
	}
	if staffed == 0 {
		return ahead, 0
	}
	return ahead, time.Duration(float64(ahead+1) * float64(q.fig.meanHandle()) / float64(staffed))
}
