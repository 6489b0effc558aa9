package abuse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"
)

// simCall is one call of the synthetic month.
type simCall struct {
	at     time.Time
	caller string
	dur    time.Duration
	end    CallEnd
	// flags the agent gives during the call, in order
	flags []string
	// expectations
	want      Measure // measure applied at arrival
	wantNew   bool    // the decision is taken at this call's arrival
	wantFlag  Measure // a flag during this call leads to this decision
	wantFlagP bool    // ... pending confirmation
	seq       int     // n-th call of the caller (1-based)
}

type simCaller struct {
	number string
	kind   string
	abuser bool
}

// month builds a synthetic month of calls: ordinary callers, busy ordinary
// callers, follow-ups on open cases, dropped-call redials, callers flagged
// once without dissuasion, and planted abusers of four kinds with the call
// at which each measure is expected.
func month(r *rand.Rand, open *openCases) ([]simCaller, []*simCall) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, t0.Location())
	var callers []simCaller
	var calls []*simCall
	n := 0
	newCaller := func(kind string, abuser bool) string {
		n++
		num := fmt.Sprintf("13%09d", n)
		callers = append(callers, simCaller{number: num, kind: kind, abuser: abuser})
		return num
	}
	add := func(c *simCall) { calls = append(calls, c) }
	day := func(d int, h, m int) time.Time {
		return start.AddDate(0, 0, d).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	}
	randTime := func() time.Time { return day(r.IntN(30), 7+r.IntN(14), r.IntN(60)) }

	// Ordinary: 1-3 calls in the month; some cut off.
	for i := 0; i < 20000; i++ {
		num := newCaller("ordinary", false)
		k := 1 + r.IntN(3)
		var ts []time.Time
		for j := 0; j < k; j++ {
			ts = append(ts, randTime())
		}
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		for j, at := range ts {
			if j > 0 && at.Sub(ts[j-1]) < 40*time.Minute {
				at = ts[j-1].Add(40 * time.Minute)
				ts[j] = at
			}
			c := &simCall{at: at, caller: num, dur: time.Duration(1+r.IntN(20)) * time.Minute}
			c.end.Talk = c.dur / 2
			c.end.Progress = true
			c.end.Outcome = "answered_by_agent"
			if r.IntN(10) == 0 {
				c.end = CallEnd{Outcome: "abandoned", CutOff: true, Progress: true}
				c.dur = time.Minute
			}
			add(c)
		}
	}
	// Busy but ordinary: 6 calls in a day, 90 minutes apart.
	for i := 0; i < 500; i++ {
		num := newCaller("busy", false)
		d := r.IntN(30)
		for j := 0; j < 6; j++ {
			add(&simCall{at: day(d, 8, 0).Add(time.Duration(j) * 90 * time.Minute), caller: num, dur: 5 * time.Minute,
				end: CallEnd{Outcome: "answered_by_agent", Talk: 4 * time.Minute, Progress: true}})
		}
	}
	// Follow-ups: 1000 with an open case someone took up, 12 calls in an
	// hour on two days; 1000 who key their case number, 12 in an hour.
	for i := 0; i < 2000; i++ {
		num := newCaller("follow-up", false)
		keyed := i%2 == 1
		if !keyed {
			open.open[testHash(num)] = true
		}
		for _, d := range []int{r.IntN(15), 15 + r.IntN(15)} {
			for j := 0; j < 12; j++ {
				add(&simCall{at: day(d, 9, 0).Add(time.Duration(j) * 5 * time.Minute), caller: num, dur: 3 * time.Minute,
					end: CallEnd{Outcome: "self_service", Progress: true, FollowUp: keyed}})
			}
		}
	}
	// Dropped-call redials: 3 bursts a day on 3 days; a burst is 3 calls
	// cut off after 30 s and a 4th that gets through, 2 minutes apart.
	for i := 0; i < 1000; i++ {
		num := newCaller("redial", false)
		d0 := r.IntN(27)
		for d := d0; d < d0+3; d++ {
			for _, h := range []int{9, 13, 17} {
				for j := 0; j < 4; j++ {
					c := &simCall{at: day(d, h, 2*j), caller: num, dur: 30 * time.Second, end: CallEnd{Outcome: "abandoned", CutOff: true, Progress: true}}
					if j == 3 {
						c.dur, c.end = 8*time.Minute, CallEnd{Outcome: "answered_by_agent", Talk: 7 * time.Minute, Progress: true}
					}
					add(c)
				}
			}
		}
	}
	// Flagged once, never dissuaded: article 26 asks for dissuasion first.
	for i := 0; i < 100; i++ {
		num := newCaller("flagged-undissuaded", false)
		add(&simCall{at: randTime(), caller: num, dur: 10 * time.Minute, flags: []string{KindInsult},
			end: CallEnd{Outcome: "answered_by_agent", Talk: 9 * time.Minute, Progress: true}})
	}

	// Planted: repeat abusers, 24 calls 6 minutes apart: warned at the
	// 8th, restricted at the 16th, a block asked for at the 24th.
	for i := 0; i < 200; i++ {
		num := newCaller("repeat", true)
		t := day(r.IntN(29), 8, r.IntN(60))
		for j := 1; j <= 24; j++ {
			c := &simCall{at: t.Add(time.Duration(j-1) * 6 * time.Minute), caller: num, dur: time.Minute, seq: j,
				end: CallEnd{Outcome: "self_service", Progress: true}}
			switch {
			case j >= 16:
				c.want = Restricted
			case j >= 8:
				c.want = Warning
			}
			c.wantNew = j == 8 || j == 16 || j == 24
			add(c)
		}
	}
	// Slow repeaters: 7 calls a day, 2 hours apart: the 40th call within a
	// week (day 6) is warned.
	for i := 0; i < 100; i++ {
		num := newCaller("slow-repeat", true)
		d0 := r.IntN(22)
		j := 0
		for d := d0; d < d0+7; d++ {
			for h := 8; h <= 20; h += 2 {
				j++
				c := &simCall{at: day(d, h, 0), caller: num, dur: 2 * time.Minute, seq: j, end: CallEnd{Outcome: "self_service", Progress: true}}
				if j >= 40 && j < 47 {
					c.want = Warning // for 24 h: the 47th call is a day after the 40th
				}
				c.wantNew = j == 40
				add(c)
			}
		}
	}
	// Long occupiers: one call a day holding an agent 45 minutes (or the
	// IVR 12 minutes without a key): the third ends with a warning that
	// the 4th call hears.
	for i := 0; i < 100; i++ {
		num := newCaller("long", true)
		d0 := r.IntN(25)
		for j := 1; j <= 5; j++ {
			c := &simCall{at: day(d0+j-1, 10, 0), caller: num, dur: 50 * time.Minute, seq: j,
				end: CallEnd{Outcome: "answered_by_agent", Talk: 45 * time.Minute, Progress: true}}
			if i%2 == 1 {
				c.dur, c.end = 12*time.Minute, CallEnd{Outcome: "abandoned", IVR: 12 * time.Minute}
			}
			if j == 4 {
				c.want = Warning // the warning of the 3rd call's end lasts 24 h: call 5 is past it
			}
			add(c)
		}
	}
	// Flagged harassers: dissuaded on the 1st call, insult on the 2nd
	// (restricted at once), threat on the 3rd (a block, pending).
	for i := 0; i < 100; i++ {
		num := newCaller("harasser", true)
		d0 := r.IntN(27)
		for j := 1; j <= 3; j++ {
			c := &simCall{at: day(d0+j-1, 15, 0), caller: num, dur: 10 * time.Minute, seq: j,
				end: CallEnd{Outcome: "answered_by_agent", Talk: 9 * time.Minute, Progress: true}}
			switch j {
			case 1:
				c.flags = []string{KindWarned}
			case 2:
				c.flags = []string{KindInsult}
				c.wantFlag = Restricted
			case 3:
				c.flags = []string{KindThreat}
				c.want = Restricted
				c.wantFlag, c.wantFlagP = Blocked, true
			}
			add(c)
		}
	}
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].at.Before(calls[j].at) })
	return callers, calls
}

// TestReplayMonth replays a synthetic month and checks every measure: no
// ordinary or follow-up caller gets any; every planted abuser gets the
// expected one at the expected call. Then a restart rebuilds exactly the
// same state from the store.
func TestReplayMonth(t *testing.T) {
	if testing.Short() {
		t.Skip("replay: not in -short")
	}
	d := dsns(t)["sqlite"](t)
	e := newEnv(t, d, nil)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(26, 12345))
	callers, calls := month(r, e.open)
	kinds := map[string]string{}
	abusers := map[string]bool{}
	for _, c := range callers {
		kinds[c.number] = c.kind
		if c.abuser {
			abusers[c.number] = true
		}
	}
	measured := map[string]bool{} // callers who got any measure
	wrong := map[string]string{}  // planted abusers with a miss: first reason
	miss := func(c *simCall, f string, a ...any) {
		if _, ok := wrong[c.caller]; !ok {
			wrong[c.caller] = fmt.Sprintf("%s call %d at %s: ", kinds[c.caller], c.seq, c.at.Format("01-02 15:04")) + fmt.Sprintf(f, a...)
		}
	}
	start := time.Now()
	for i, c := range calls {
		id := fmt.Sprintf("call-%d", i)
		e.clock.Set(c.at)
		v := e.svc.Check(ctx, CallStart{CallID: id, Caller: c.caller, At: c.at})
		if v.Measure != None {
			measured[c.caller] = true
		}
		if abusers[c.caller] {
			if v.Measure != c.want || v.New != c.wantNew {
				miss(c, "measure %s new=%v, want %s new=%v", v.Measure, v.New, c.want, c.wantNew)
			}
		} else if v.Measure != None {
			miss(c, "ordinary caller got %s (%s)", v.Measure, v.Decision.Rule)
		}
		for _, k := range c.flags {
			e.clock.Set(c.at.Add(c.dur / 2))
			dec, err := e.svc.Flag(ctx, id, "agent-1", k, "note for "+k)
			if err != nil {
				t.Fatal(err)
			}
			if dec != nil {
				measured[c.caller] = true
			}
			switch {
			case c.wantFlag == None && dec != nil:
				miss(c, "flag %s gave %s", k, dec.Measure)
			case c.wantFlag != None && (dec == nil || dec.Measure != c.wantFlag || (dec.Status == StatusPending) != c.wantFlagP):
				miss(c, "flag %s gave %+v, want %s", k, dec, c.wantFlag)
			}
		}
		end := c.end
		end.CallID, end.Ended = id, c.at.Add(c.dur)
		e.clock.Set(end.Ended)
		e.svc.End(ctx, end)
	}
	elapsed := time.Since(start)
	tp, fp, fn := 0, 0, 0
	for _, c := range callers {
		switch {
		case c.abuser && wrong[c.number] == "":
			tp++
		case c.abuser:
			fn++
		case measured[c.number]:
			fp++
		}
	}
	shown := map[string]int{}
	for num, why := range wrong {
		if shown[kinds[num]]++; shown[kinds[num]] <= 3 {
			t.Errorf("%s", why)
		}
	}
	precision := float64(tp) / float64(max(tp+fp, 1))
	recall := float64(tp) / float64(max(tp+fn, 1))
	t.Logf("synthetic month: %d callers (%d planted abusers), %d calls replayed in %s; precision %.4f, recall %.4f (tp %d, fp %d, fn %d)",
		len(callers), len(abusers), len(calls), elapsed.Round(time.Millisecond), precision, recall, tp, fp, fn)
	if fp > 0 || fn > 0 {
		t.Errorf("precision %.4f recall %.4f: want both 1", precision, recall)
	}
	if e.open.asked == 0 {
		t.Error("the open-case check was never asked: the follow-ups did not reach it")
	}

	// Restart: the state rebuilt from the log is the same, caller by caller.
	if err := e.svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before := snapshot(e.svc.eng)
	e2 := newEnv(t, d, e.db)
	after := snapshot(e2.svc.eng)
	if len(before) != len(after) {
		t.Fatalf("restart: %d callers before, %d after", len(before), len(after))
	}
	diff := 0
	for k, v := range before {
		if after[k] != v {
			if diff++; diff <= 5 {
				t.Errorf("restart: caller %x\nbefore %s\nafter  %s", k, v, after[k])
			}
		}
	}
	if diff > 0 {
		t.Errorf("restart: %d of %d callers differ", diff, len(before))
	}
}

// snapshot renders every caller's state for comparison.
func snapshot(e *engine) map[uint64]string {
	out := map[uint64]string{}
	for i := range e.sh {
		s := &e.sh[i]
		s.Lock()
		for k, st := range s.m {
			v := fmt.Sprintf("calls=%v lastEnd=%d cut=%v redials=%d", st.calls, st.lastEnd, st.cutOff, st.redials)
			if x := st.x; x != nil {
				v += fmt.Sprintf(" long=%v flags=%d warned=%d ladder=%s@%d", x.long, len(x.flags), x.warned, x.ladder, x.ladderAt)
				if x.dec != nil {
					v += fmt.Sprintf(" dec=%s/%s/%s/%s", x.dec.ID, x.dec.Measure, x.dec.Status, x.dec.Expires.UTC())
				}
			}
			out[k] = v
		}
		s.Unlock()
	}
	return out
}
