package abuse

import (
	"encoding/hex"
	"slices"
	"sync"
	"time"
)

// epoch is the zero of the compact clock: seconds since 2020-01-01 UTC fit
// a uint32 until 2156.
var epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func sec(t time.Time) uint32 {
	d := t.Sub(epoch) / time.Second
	if d < 1 {
		return 1 // 0 means "never"
	}
	return uint32(d)
}

func timeOf(s uint32) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return epoch.Add(time.Duration(s) * time.Second)
}

// keyOf turns a caller hash (hex HMAC-SHA256) into the 64-bit map key of
// the in-memory state. 64 bits of a keyed hash: among a million callers the
// chance that two share a key is about 3e-8.
func keyOf(hash string) uint64 {
	var b [8]byte
	if len(hash) >= 16 {
		if _, err := hex.Decode(b[:], []byte(hash[:16])); err == nil {
			return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
				uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
		}
	}
	// Not hex (tests, odd input): FNV-1a.
	h := uint64(14695981039346656037)
	for i := 0; i < len(hash); i++ {
		h ^= uint64(hash[i])
		h *= 1099511628211
	}
	return h
}

// callerState is one caller's signals. It is kept small because a million
// of them must fit in well under 256 MiB: the common caller (a call or two)
// has a short calls slice and no extra.
type callerState struct {
	calls   []uint32 // arrivals of counted calls since the last measure, ascending
	lastArr uint32   // last arrival, counted or not (idle eviction)
	lastEnd uint32   // end of the last call
	cutOff  bool     // the last call was cut off (abandoned, dropped)
	redials uint8    // exempt redials in a row
	x       *extra   // rare: long calls, flags, measures
}

type flagMark struct {
	at          uint32
	kind        string
	afterWarned bool
	id          string // event id (the note is in the store)
}

type extra struct {
	long   []uint32
	flags  []flagMark
	warned uint32 // last dissuasion (劝阻)
	dec    *Decision
	// ladder is the most severe measure the caller had, at ladderAt; it
	// decides the next step while within the policy's ladder_memory.
	ladder   Measure
	ladderAt uint32
}

const shards = 64

// engine is the in-memory state of every caller: sharded maps keyed by
// the 64-bit digest of the caller hash. It does no I/O.
type engine struct {
	pol *Policy
	sh  [shards]struct {
		sync.Mutex
		m map[uint64]*callerState
	}
	// ring sizes and horizons from the policy
	ringCalls, ringLong int
	winCalls, winLong   uint32
	winFlags, memory    uint32
}

func newEngine(p *Policy) *engine {
	e := &engine{}
	for i := range e.sh {
		e.sh[i].m = make(map[uint64]*callerState)
	}
	e.setPolicy(p)
	return e
}

func (e *engine) setPolicy(p *Policy) {
	e.pol = p
	e.ringCalls = max(p.maxAtLeast(SignalCalls), 1)
	e.ringLong = max(p.maxAtLeast(SignalLongCalls), 1)
	e.winCalls = uint32(p.maxWindow(SignalCalls) / time.Second)
	e.winLong = uint32(p.maxWindow(SignalLongCalls) / time.Second)
	e.winFlags = uint32(p.maxWindow(SignalFlags) / time.Second)
	e.memory = uint32(p.LadderMemory.D() / time.Second)
}

func (e *engine) shard(k uint64) *struct {
	sync.Mutex
	m map[uint64]*callerState
} {
	return &e.sh[k%shards]
}

// with runs f on the caller's state under its shard's lock, creating it
// when create is set (f gets nil otherwise for an unknown caller).
func (e *engine) with(k uint64, create bool, f func(st *callerState)) {
	s := e.shard(k)
	s.Lock()
	st := s.m[k]
	if st == nil && create {
		st = &callerState{}
		s.m[k] = st
	}
	f(st)
	s.Unlock()
}

// prune drops timestamps older than now-win from an ascending slice and
// keeps at most n (the newest).
func prune(ts []uint32, now, win uint32, n int) []uint32 {
	i := 0
	for i < len(ts) && now > win && ts[i] < now-win {
		i++
	}
	if len(ts)-i > n {
		i = len(ts) - n
	}
	if i > 0 {
		ts = append(ts[:0], ts[i:]...)
	}
	return ts
}

// countSince counts timestamps at or after from.
func countSince(ts []uint32, from uint32) int {
	n := 0
	for i := len(ts) - 1; i >= 0 && ts[i] >= from; i-- {
		n++
	}
	return n
}

func (st *callerState) ext() *extra {
	if st.x == nil {
		st.x = &extra{}
	}
	return st.x
}

// live returns the caller's decision in force at now (pending or active,
// not expired), or nil.
func (st *callerState) live(now time.Time) *Decision {
	if st == nil || st.x == nil || st.x.dec == nil {
		return nil
	}
	d := st.x.dec
	if (d.Status == StatusActive || d.Status == StatusPending) && now.Before(d.Expires) {
		return d
	}
	return nil
}

// effective is the measure applied to a call: a block that waits for a
// supervisor's confirmation restricts meanwhile.
func effective(d *Decision) Measure {
	if d == nil {
		return None
	}
	if d.Status == StatusPending && d.Measure == Blocked {
		return Restricted
	}
	return d.Measure
}

// firing is a rule that fired, with what it counted.
type firing struct {
	rule  *Rule
	count int
	times []uint32
	flags []flagMark
}

// evaluate returns the rules of signal s that fire for st at now.
func (e *engine) evaluate(st *callerState, s Signal, now uint32) []firing {
	var out []firing
	for i := range e.pol.Rules {
		r := &e.pol.Rules[i]
		if r.Signal != s {
			continue
		}
		w := uint32(r.Window.D() / time.Second)
		from := uint32(1)
		if now > w {
			from = now - w
		}
		switch s {
		case SignalCalls:
			if n := countSince(st.calls, from); n >= r.AtLeast {
				out = append(out, firing{rule: r, count: n, times: slices.Clone(st.calls[len(st.calls)-n:])})
			}
		case SignalLongCalls:
			if st.x == nil {
				continue
			}
			if n := countSince(st.x.long, from); n >= r.AtLeast {
				out = append(out, firing{rule: r, count: n, times: slices.Clone(st.x.long[len(st.x.long)-n:])})
			}
		case SignalFlags:
			if st.x == nil {
				continue
			}
			var fl []flagMark
			for _, f := range st.x.flags {
				if f.at >= from && slices.Contains(r.Kinds, f.kind) && (!r.AfterWarned || f.afterWarned) {
					fl = append(fl, f)
				}
			}
			if len(fl) >= r.AtLeast {
				out = append(out, firing{rule: r, count: len(fl), flags: fl})
			}
		}
	}
	return out
}

// next is the measure the fired rules lead to: the most severe rule, and
// at least one step above the caller's last measure within ladder_memory.
// The firing returned is the rule that explains it.
func (e *engine) next(st *callerState, fs []firing, now uint32) (Measure, *firing) {
	if len(fs) == 0 {
		return None, nil
	}
	best := &fs[0]
	for i := range fs {
		if fs[i].rule.Measure > best.rule.Measure {
			best = &fs[i]
		}
	}
	m := best.rule.Measure
	if st.x != nil && st.x.ladder > None && now-st.x.ladderAt <= e.memory {
		m = max(m, min(st.x.ladder+1, Blocked))
	}
	return m, best
}

// arrival is what the engine says about an arriving call.
type arrival struct {
	live    *Decision // in force before this call
	counted bool
	exempt  string // why not counted
	want    Measure
	fire    *firing
}

// arrive records an arriving call and evaluates the call rules. It never
// makes a decision itself: when want > the live measure the service asks
// the case store (open case?) and then calls decide or uncount.
func (e *engine) arrive(k uint64, at time.Time, allow bool) arrival {
	var a arrival
	now := sec(at)
	e.with(k, true, func(st *callerState) {
		st.lastArr = now
		a.live = st.live(at)
		switch {
		case effective(a.live) == Blocked:
			a.exempt = ExemptRefused
		case allow:
			a.exempt = ExemptAllow
		case st.cutOff && now-st.lastEnd <= uint32(e.pol.Exempt.RedialWithin.D()/time.Second) && int(st.redials) < e.pol.Exempt.RedialMaxInRow:
			a.exempt = ExemptRedial
		}
		e.applyArrive(st, now, a.exempt)
		if a.exempt != "" {
			return
		}
		a.counted = true
		m, f := e.next(st, e.evaluate(st, SignalCalls, now), now)
		if m > None && (a.live == nil || m > a.live.Measure) {
			a.want, a.fire = m, f
		}
	})
	return a
}

// applyArrive updates the state for an arrival (live and on replay).
func (e *engine) applyArrive(st *callerState, now uint32, exempt string) {
	st.lastArr = max(st.lastArr, now)
	switch exempt {
	case ExemptRedial:
		st.redials++
		st.cutOff = false
	case "":
		st.redials = 0
		st.cutOff = false
		st.calls = insertSorted(st.calls, now)
	}
	st.calls = prune(st.calls, now, e.winCalls, e.ringCalls)
}

// uncount takes a counted call back (a follow-up found afterwards).
func (e *engine) uncount(k uint64, at uint32) {
	e.with(k, false, func(st *callerState) {
		if st == nil {
			return
		}
		for i := len(st.calls) - 1; i >= 0; i-- {
			if st.calls[i] == at {
				st.calls = slices.Delete(st.calls, i, i+1)
				return
			}
		}
	})
}

// applyEnd records a call's end: cut off or not, long or not. It returns
// the long-call rule firing (if any leads above the live measure).
func (e *engine) applyEnd(st *callerState, end uint32, cutOff, long bool, at time.Time) (Measure, *firing) {
	st.lastEnd = max(st.lastEnd, end)
	st.cutOff = cutOff
	if !cutOff {
		st.redials = 0
	}
	if !long {
		return None, nil
	}
	x := st.ext()
	x.long = prune(insertSorted(x.long, end), end, e.winLong, e.ringLong)
	m, f := e.next(st, e.evaluate(st, SignalLongCalls, end), end)
	if live := st.live(at); m > None && (live == nil || m > live.Measure) {
		return m, f
	}
	return None, nil
}

// applyFlag records an agent flag (or the dissuasion) and evaluates the
// flag rules.
func (e *engine) applyFlag(st *callerState, now uint32, kind, id string, at time.Time) (Measure, *firing) {
	x := st.ext()
	if kind == KindWarned {
		x.warned = now
		return None, nil
	}
	x.flags = append(x.flags, flagMark{at: now, kind: kind, afterWarned: x.warned != 0 && x.warned <= now, id: id})
	// Keep flags within the longest flag window, at most MaxRing.
	i := 0
	for i < len(x.flags) && (now > e.winFlags && x.flags[i].at < now-e.winFlags || len(x.flags)-i > MaxRing) {
		i++
	}
	x.flags = x.flags[i:]
	m, f := e.next(st, e.evaluate(st, SignalFlags, now), now)
	if live := st.live(at); m > None && (live == nil || m > live.Measure) {
		return m, f
	}
	return None, nil
}

// applyDecision makes d the caller's decision: the signals it was based on
// are spent (the next step needs fresh behaviour after this measure).
func (e *engine) applyDecision(st *callerState, d *Decision) {
	x := st.ext()
	x.dec = d
	st.calls = st.calls[:0]
	x.long = x.long[:0]
	x.flags = x.flags[:0]
	if d.Measure >= x.ladder || sec(d.Created)-x.ladderAt > e.memory {
		x.ladder, x.ladderAt = d.Measure, sec(d.Created)
	}
}

// applyLift clears a lifted decision: a lift is a supervisor saying the
// measure was not deserved, so it leaves no step on the ladder and the
// signals before it no longer count.
func (e *engine) applyLift(st *callerState, d *Decision) {
	x := st.ext()
	if x.dec != nil && x.dec.ID == d.ID {
		x.dec = d
	}
	x.ladder, x.ladderAt = None, 0
	st.calls = st.calls[:0]
	x.long = x.long[:0]
	x.flags = x.flags[:0]
	x.warned = 0
}

// sweep drops callers with nothing left to remember at now: no call
// within the calls window, no long call or flag within theirs, no live
// decision, no ladder step or dissuasion within the ladder memory. It
// returns how many went.
func (e *engine) sweep(at time.Time) int {
	now := sec(at)
	within := func(t, w uint32) bool { return t != 0 && now-t <= w }
	redial := uint32(e.pol.Exempt.RedialWithin.D() / time.Second)
	n := 0
	for i := range e.sh {
		s := &e.sh[i]
		s.Lock()
		for k, st := range s.m {
			if within(st.lastArr, e.winCalls) || within(st.lastEnd, redial) {
				continue
			}
			if x := st.x; x != nil {
				if st.live(at) != nil || (x.ladder > None && within(x.ladderAt, e.memory)) || within(x.warned, e.memory) ||
					(len(x.long) > 0 && within(x.long[len(x.long)-1], e.winLong)) ||
					(len(x.flags) > 0 && within(x.flags[len(x.flags)-1].at, e.winFlags)) {
					continue
				}
			}
			delete(s.m, k)
			n++
		}
		s.Unlock()
	}
	return n
}

// size returns the number of callers held.
func (e *engine) size() int {
	n := 0
	for i := range e.sh {
		e.sh[i].Lock()
		n += len(e.sh[i].m)
		e.sh[i].Unlock()
	}
	return n
}

// insertSorted inserts t into an ascending slice (events of another
// process may arrive a little out of order).
func insertSorted(ts []uint32, t uint32) []uint32 {
	i := len(ts)
	for i > 0 && ts[i-1] > t {
		i--
	}
	return slices.Insert(ts, i, t)
}
