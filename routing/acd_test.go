package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/prompts"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func queueDecision(q string) ivr.Decision {
	return ivr.Decision{Kind: ivr.KindQueue, ID: q, Node: "agent", Lang: "zh-CN"}
}

// decideFixture builds a router's ACD state by hand (no goroutines) to
// test the decision itself.
func decideFixture(strategy string, agents ...*Agent) (*Router, *queue) {
	qc := testQueue("general")
	qc.Strategy = strategy
	q := &queue{cfg: qc}
	r := &Router{queues: map[string]*queue{"general": q}, qorder: []*queue{q}, agents: map[string]*Agent{},
		pending: map[string]bool{}, held: map[string]*held{}}
	for _, a := range agents {
		a.Presence = Available
		r.agents[a.ID] = a
	}
	return r, q
}

func addWaiters(r *Router, q *queue, n int, t0 time.Time) []*waiter {
	var ws []*waiter
	for i := 0; i < n; i++ {
		r.seq++
		w := &waiter{seq: r.seq, call: newFakeCall(fmt.Sprint("c", i), ""), joined: t0.Add(time.Duration(i) * time.Millisecond),
			lang: "zh-CN", conn: make(chan connected, 1), done: make(chan struct{})}
		r.enqueueLocked(q, w)
		ws = append(ws, w)
	}
	return ws
}

// serve takes the assignments as answered and finished: the calls leave,
// the agents are free again at end (with one more call).
func serve(r *Router, as []assignment, end time.Time) {
	for _, a := range as {
		r.removeLocked(a.w)
		delete(r.pending, a.agent.ID)
		a.agent.Calls++
		a.agent.IdleSince = end
	}
}

func ids(as []assignment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.w.call.ID()+">"+a.agent.ID)
	}
	return out
}

// TestDecideStrategies: 3 agents and 10 callers, every strategy. The
// calls go in the order they joined; the agents in the strategy's order.
func TestDecideStrategies(t *testing.T) {
	t0 := time.Now()
	mk := func(id string, idle time.Duration, calls int) *Agent {
		return &Agent{ID: id, IdleSince: t0.Add(-idle), Calls: calls}
	}
	tests := []struct {
		strategy string
		agents   []*Agent
		// rounds: each round, the agents are all free; the calls served
		// in order c0, c1, ...
		want [][]string
	}{
		{LongestIdle, []*Agent{mk("1001", 1*time.Minute, 0), mk("1002", 3*time.Minute, 0), mk("1003", 2*time.Minute, 0)},
			// Idle longest first: 1002, 1003, 1001; after a round all end at
			// the same instant and ties go by id.
			[][]string{{"c0>1002", "c1>1003", "c2>1001"}, {"c3>1001", "c4>1002", "c5>1003"}}},
		{RoundRobin, []*Agent{mk("1003", 0, 0), mk("1001", 0, 0), mk("1002", 0, 0)},
			[][]string{{"c0>1001", "c1>1002", "c2>1003"}, {"c3>1001", "c4>1002", "c5>1003"}, {"c6>1001", "c7>1002", "c8>1003"}, {"c9>1001"}}},
		{FewestCalls, []*Agent{mk("1001", 0, 5), mk("1002", 0, 1), mk("1003", 0, 3)},
			[][]string{{"c0>1002", "c1>1003", "c2>1001"}}},
	}
	for _, tc := range tests {
		t.Run(tc.strategy, func(t *testing.T) {
			r, q := decideFixture(tc.strategy, tc.agents...)
			addWaiters(r, q, 10, t0)
			now := t0.Add(time.Second)
			for i, want := range tc.want {
				got := r.decide(now)
				if !slices.Equal(ids(got), want) {
					t.Fatalf("round %d: got %v, want %v", i, ids(got), want)
				}
				now = now.Add(time.Second)
				serve(r, got, now)
			}
		})
	}
}

// TestDecideRoundRobinMemory: round-robin continues after the last agent
// rung, also when that agent is busy.
func TestDecideRoundRobinMemory(t *testing.T) {
	t0 := time.Now()
	r, q := decideFixture(RoundRobin, &Agent{ID: "1001"}, &Agent{ID: "1002"}, &Agent{ID: "1003"})
	q.rrLast = "1002"
	addWaiters(r, q, 2, t0)
	if got := ids(r.decide(t0)); !slices.Equal(got, []string{"c0>1003", "c1>1001"}) {
		t.Fatalf("got %v", got)
	}
}

// TestDecidePriorityAndSkills: a free agent takes the higher-priority
// queue's call first even if it joined later; skills and language limit
// who may take a call.
func TestDecidePriorityAndSkills(t *testing.T) {
	t0 := time.Now()
	r, general := decideFixture(LongestIdle, &Agent{ID: "1001", Skills: Skills{Languages: []string{"zh-CN", "en"}}})
	cq := testQueue("complaints")
	cq.Priority = 5
	complaints := &queue{cfg: cq}
	eq := testQueue("education")
	eq.Skills = Skills{Domains: []string{"education"}}
	eq.Priority = 9
	education := &queue{cfg: eq}
	r.queues["complaints"], r.queues["education"] = complaints, education
	r.qorder = append(r.qorder, complaints, education)
	addWaiters(r, general, 1, t0)
	r.seq++
	late := &waiter{seq: r.seq, call: newFakeCall("late", ""), joined: t0.Add(time.Minute), lang: "zh-CN"}
	r.enqueueLocked(complaints, late)
	r.seq++
	edu := &waiter{seq: r.seq, call: newFakeCall("edu", ""), joined: t0, lang: "zh-CN"}
	r.enqueueLocked(education, edu)
	got := ids(r.decide(t0.Add(2 * time.Minute)))
	if !slices.Equal(got, []string{"late>1001"}) {
		t.Fatalf("got %v, want the complaints call (priority 5; the agent lacks the education skill)", got)
	}
	// An English caller needs an agent who speaks English.
	r2, q2 := decideFixture(LongestIdle, &Agent{ID: "1001", IdleSince: t0.Add(-time.Hour)}, &Agent{ID: "1002", Skills: Skills{Languages: []string{"en"}}})
	ws := addWaiters(r2, q2, 1, t0)
	ws[0].lang = "en"
	if got := ids(r2.decide(t0)); !slices.Equal(got, []string{"c0>1002"}) {
		t.Fatalf("english caller: got %v", got)
	}
}

// TestTenCallersThreeAgents: every caller reaches an agent, in the order
// they called; the first three rings follow longest-idle; each caller
// hears the number (工号) of the agent who took the call; agents go to
// wrap-up and back.
func TestTenCallersThreeAgents(t *testing.T) {
	cfg := &Config{Queues: []Queue{testQueue("general")}}
	f := newFixture(t, cfg)
	for _, id := range []string{"1001", "1002", "1003"} {
		f.addAgent(id, Available, Skills{})
		f.dialer.set(id, behaviour{answerAfter: 5 * time.Millisecond, talk: 40 * time.Millisecond})
		time.Sleep(3 * time.Millisecond) // distinct idle times: 1001 idle longest
	}
	ctx := context.Background()
	var results []<-chan result
	for i := 0; i < 10; i++ {
		_, ch := f.routeQueued(ctx, fmt.Sprintf("call-%02d", i), queueDecision("general"))
		results = append(results, ch)
	}
	var answeredBy []string
	for i, ch := range results {
		select {
		case res := <-ch:
			if res.err != nil || res.out.Status != ivr.OutcomeReturned {
				t.Fatalf("call %d: %v %v", i, res.out, res.err)
			}
			// The caller heard "工号 <digits> 为您服务".
			p := strings.Join(res.call.Played(), " ")
			var agent string
			for _, a := range []string{"1001", "1002", "1003"} {
				digits := strings.Join([]string{"zh-CN/digit-" + a[0:1], "zh-CN/digit-" + a[1:2], "zh-CN/digit-" + a[2:3], "zh-CN/digit-" + a[3:4]}, " ")
				if strings.Contains(p, "zh-CN/agent-number-is "+digits+" zh-CN/agent-at-your-service") {
					agent = a
				}
			}
			if agent == "" {
				t.Fatalf("call %d: no 工号 prompt in %q", i, p)
			}
			answeredBy = append(answeredBy, agent)
		case <-time.After(10 * time.Second):
			t.Fatalf("call %d never reached an agent", i)
		}
	}
	rings := f.dialer.ringLog()
	var order []string
	for _, r := range rings {
		order = append(order, r.call)
	}
	// FIFO: the calls were rung in the order they joined.
	if !slices.IsSorted(order) || len(order) != 10 {
		t.Fatalf("ring order %v", order)
	}
	if got := []string{rings[0].agent, rings[1].agent, rings[2].agent}; !slices.Equal(got, []string{"1001", "1002", "1003"}) {
		t.Fatalf("first rings %v, want longest idle first", got)
	}
	for i, r := range rings {
		if r.agent != answeredBy[i] || r.caseNum != fmt.Sprintf("Ccall-%02d", i) {
			t.Fatalf("ring %d: %+v, caller heard %s", i, r, answeredBy[i])
		}
	}
	// Straight after the last call: wrap-up, then available.
	a, _ := f.r.Agent(ctx, rings[9].agent)
	if a.State != WrapUp && a.State != Available {
		t.Fatalf("after the call: %s", a.State)
	}
	waitFor(t, "agents available after wrap-up", 2*time.Second, func() bool {
		l, _ := f.r.Agents(ctx)
		for _, a := range l {
			if a.State != Available || a.Calls == 0 {
				return false
			}
		}
		return true
	})
	fig := f.r.Figures().Queues[0]
	if fig.Answered != 10 || fig.Offered != 10 || fig.ConnectionRate != 1 || fig.AnsweredWithin15 != 10 || fig.AvgHandle <= 0.03 {
		t.Fatalf("figures %+v", fig)
	}
}

// TestWrapUpTiming: an agent in wrap-up is not rung; the next call rings
// only after the wrap-up time.
func TestWrapUpTiming(t *testing.T) {
	q := testQueue("general")
	q.WrapUp = 300 * time.Millisecond
	f := newFixture(t, &Config{Queues: []Queue{q}})
	f.addAgent("1001", Available, Skills{})
	f.dialer.set("1001", behaviour{answerAfter: time.Millisecond, talk: 20 * time.Millisecond})
	ctx := context.Background()
	_, ch1 := f.routeQueued(ctx, "c1", queueDecision("general"))
	_, ch2 := f.routeQueued(ctx, "c2", queueDecision("general"))
	r1 := <-ch1
	st, _ := f.r.Agent(ctx, "1001")
	if st.State != WrapUp || st.WrapUntil.Sub(r1.at) < 200*time.Millisecond {
		t.Fatalf("after the call: %s until %s (call ended %s)", st.State, st.WrapUntil, r1.at)
	}
	<-ch2
	rings := f.dialer.ringLog()
	if len(rings) != 2 {
		t.Fatalf("rings %+v", rings)
	}
	if rings[1].at.Before(st.WrapUntil) {
		t.Fatalf("second call rang at %s, during the wrap-up (until %s)", rings[1].at, st.WrapUntil)
	}
}

// TestRingNoAnswer: an agent who does not answer sends the call back to its
// place (it is still first and goes to the next agent); after two misses in
// a row the agent is paused "no-answer".
func TestRingNoAnswer(t *testing.T) {
	f := newFixture(t, &Config{Queues: []Queue{testQueue("general")}})
	f.addAgent("1002", Available, Skills{}) // idle longest: takes c0
	time.Sleep(3 * time.Millisecond)
	f.addAgent("1001", Available, Skills{})
	f.dialer.set("1001", behaviour{never: true})
	f.dialer.set("1002", behaviour{answerAfter: time.Millisecond, talk: 800 * time.Millisecond})
	ctx := context.Background()
	// c0 occupies 1002.
	_, ch0 := f.route(ctx, "c0", queueDecision("general"))
	waitFor(t, "c0 with 1002", time.Second, func() bool { return f.dialer.ringsOf("1002") == 1 })
	// c1 then c2 join; c1 rings 1001 (the only free agent), who misses it.
	_, ch1 := f.routeQueued(ctx, "c1", queueDecision("general"))
	_, ch2 := f.routeQueued(ctx, "c2", queueDecision("general"))
	waitFor(t, "1001 paused after two misses", 3*time.Second, func() bool {
		a, _ := f.r.Agent(ctx, "1001")
		return a.State == Paused && a.PauseReason == PauseNoAnswer
	})
	<-ch0
	r1, r2 := <-ch1, <-ch2
	if r1.out.Status != ivr.OutcomeReturned || r2.out.Status != ivr.OutcomeReturned {
		t.Fatalf("outcomes %v %v", r1.out, r2.out)
	}
	// Rings of 1001: the first miss was c1; c1 stayed first and went to
	// 1002 before c2.
	var seq []string
	for _, r := range f.dialer.ringLog() {
		seq = append(seq, r.call+">"+r.agent)
	}
	if seq[0] != "c0>1002" || seq[1] != "c1>1001" {
		t.Fatalf("ring sequence %v", seq)
	}
	first1002 := -1
	for i, s := range seq {
		if i > 0 && strings.HasSuffix(s, ">1002") {
			first1002 = i
			break
		}
	}
	if first1002 < 0 || seq[first1002] != "c1>1002" {
		t.Fatalf("after the miss c1 should get 1002 before c2: %v", seq)
	}
	if n := f.dialer.ringsOf("1001"); n != 2 {
		t.Fatalf("1001 rang %d times, want 2 (then paused): %v", n, seq)
	}
	if fig := f.r.Figures().Queues[0]; fig.RingNoAnswer != 2 || fig.Agents["paused:no-answer"] != 1 {
		t.Fatalf("figures %+v", fig)
	}
}

// TestPausedNeverRung: an agent created paused, and one logged in straight
// into a pause, are never rung while calls wait; unpaused, they are.
func TestPausedNeverRung(t *testing.T) {
	f := newFixture(t, &Config{Queues: []Queue{testQueue("general")}})
	ctx := context.Background()
	_, ch := f.route(ctx, "c1", queueDecision("general"))
	time.Sleep(20 * time.Millisecond) // the call waits before the agents exist
	f.addAgent("1001", Paused, Skills{})
	f.addAgent("1002", LoggedOut, Skills{})
	if _, err := f.r.SetAgentState(ctx, "1002", Paused, "meeting", "test"); err != nil {
		t.Fatal(err)
	}
	f.dialer.set("1001", behaviour{answerAfter: time.Millisecond, talk: 10 * time.Millisecond})
	f.dialer.set("1002", behaviour{answerAfter: time.Millisecond, talk: 10 * time.Millisecond})
	time.Sleep(300 * time.Millisecond) // many ACD rounds and refreshes
	if n := len(f.dialer.ringLog()); n != 0 {
		t.Fatalf("a paused agent was rung: %+v", f.dialer.ringLog())
	}
	if _, err := f.r.SetAgentState(ctx, "1002", Available, "", "test"); err != nil {
		t.Fatal(err)
	}
	res := <-ch
	if res.out.Status != ivr.OutcomeReturned || f.dialer.ringsOf("1002") != 1 || f.dialer.ringsOf("1001") != 0 {
		t.Fatalf("%v rings %+v", res.out, f.dialer.ringLog())
	}
}

// TestMaxWaitOverflow: with every agent logged out, the maximum wait sends
// the call to the queue's overflow action.
func TestMaxWaitOverflow(t *testing.T) {
	ctx := context.Background()
	t.Run("flow", func(t *testing.T) {
		q := testQueue("general")
		q.MaxWait = 100 * time.Millisecond
		f := newFixture(t, &Config{Queues: []Queue{q}})
		f.addAgent("1001", LoggedOut, Skills{})
		start := time.Now()
		_, ch := f.route(ctx, "c1", queueDecision("general"))
		res := <-ch
		if res.out.Status != ivr.OutcomeFailed || res.out.Reason != "overflow: max wait" || time.Since(start) < 100*time.Millisecond {
			t.Fatalf("%v %v", res.out, res.err)
		}
		if fig := f.r.Figures().Queues[0]; fig.Overflowed != 1 || fig.ConnectionRate != 0 || fig.Agents["logged-out"] != 1 {
			t.Fatalf("figures %+v", fig)
		}
	})
	t.Run("message", func(t *testing.T) {
		q := testQueue("general")
		q.MaxWait, q.Overflow = 50*time.Millisecond, OverflowMessage
		f := newFixture(t, &Config{Queues: []Queue{q}})
		_, ch := f.route(ctx, "c1", queueDecision("general"))
		if res := <-ch; res.out.Status != ivr.OutcomeFailed || res.out.Reason != "overflow: message" {
			t.Fatalf("%v", res.out)
		}
	})
	t.Run("queue", func(t *testing.T) {
		q := testQueue("general")
		q.MaxWait, q.Overflow, q.OverflowTo = 50*time.Millisecond, OverflowQueue, "backup"
		b := testQueue("backup")
		b.Skills = Skills{Domains: []string{"backup"}}
		f := newFixture(t, &Config{Queues: []Queue{q, b}})
		f.addAgent("2001", Available, Skills{Domains: []string{"backup"}})
		f.dialer.set("2001", behaviour{answerAfter: time.Millisecond, talk: 10 * time.Millisecond})
		// The general queue needs no skill, so 2001 could take it: keep
		// 2001 busy-free by pausing, then unpause after the overflow.
		f.r.SetAgentState(ctx, "2001", Paused, "hold", "test")
		_, ch := f.route(ctx, "c1", queueDecision("general"))
		waitFor(t, "overflow to backup", time.Second, func() bool {
			st, _ := f.r.Queue("backup")
			return st.Figures.Waiting == 1
		})
		f.r.SetAgentState(ctx, "2001", Available, "", "test")
		if res := <-ch; res.out.Status != ivr.OutcomeReturned {
			t.Fatalf("%v %v", res.out, res.err)
		}
		if figs := f.r.Figures().Queues; figs[0].Overflowed != 1 || figs[1].Answered != 1 {
			t.Fatalf("figures %+v", figs)
		}
	})
	t.Run("callback", func(t *testing.T) {
		q := testQueue("general")
		q.MaxWait, q.Overflow = 50*time.Millisecond, OverflowCallback
		f := newFixture(t, &Config{Queues: []Queue{q}})
		c, ch := f.route(ctx, "c1", queueDecision("general"))
		res := <-ch
		if res.out.Status != ivr.OutcomeLeft || !isDone(c) || !slices.Contains(c.Played(), "zh-CN/callback-booked") {
			t.Fatalf("%v played %v", res.out, c.Played())
		}
		cbs, _ := f.r.Callbacks(ctx, CallbackOpen)
		if len(cbs) != 1 || cbs[0].Case != "Cc1" || cbs[0].Number != c.caller {
			t.Fatalf("callbacks %+v", cbs)
		}
	})
}

// TestAnnouncements: position, estimated wait (from handle times) and the
// comfort prompt, first after AnnounceFirst, then every AnnounceEvery.
func TestAnnouncements(t *testing.T) {
	q := testQueue("general")
	q.AnnounceFirst, q.AnnounceEvery = 30*time.Millisecond, 60*time.Millisecond
	f := newFixture(t, &Config{Queues: []Queue{q}})
	f.addAgent("1001", Available, Skills{})
	f.dialer.set("1001", behaviour{answerAfter: time.Millisecond, talk: 500 * time.Millisecond})
	ctx := context.Background()
	_, ch0 := f.route(ctx, "c0", queueDecision("general")) // the agent's call
	waitFor(t, "c0 connected", time.Second, func() bool { return f.dialer.ringsOf("1001") == 1 })
	c1, ch1 := f.routeQueued(ctx, "c1", queueDecision("general"))
	c2, ch2 := f.routeQueued(ctx, "c2", queueDecision("general"))
	time.Sleep(250 * time.Millisecond)
	// Between the announcements: hold music (asserted apart).
	music := func(c *fakeCall) (other []string, holds int) {
		for _, k := range c.Played() {
			if k == prompts.HoldMusic {
				holds++
			} else {
				other = append(other, k)
			}
		}
		return other, holds
	}
	p2, holds := music(c2)
	if holds < 2 || p2[0] == prompts.HoldMusic {
		t.Fatalf("c2 heard hold music %d times: %v", holds, c2.Played())
	}
	if c2.Played()[0] != prompts.HoldMusic {
		t.Fatalf("c2 heard %v first, want the hold music until the first announcement", c2.Played()[0])
	}
	n := 0
	for _, k := range p2 {
		if k == "zh-CN/queue-comfort" {
			n++
		}
	}
	if n < 2 || n > 5 {
		t.Fatalf("c2 heard %d announcements in 250ms (first at 30ms, every 60ms): %v", n, p2)
	}
	// c2 has one caller ahead; the wait estimate with no handle times yet
	// is 2 × 3 min / 1 agent = 6 minutes.
	want := []string{"zh-CN/queue-ahead", "zh-CN/digit-1", "zh-CN/queue-ahead-end", "zh-CN/queue-wait", "zh-CN/digit-6", "zh-CN/queue-wait-minutes", "zh-CN/queue-comfort"}
	if !slices.Equal(p2[:len(want)], want) {
		t.Fatalf("c2 heard %v, want %v", p2[:len(want)], want)
	}
	if p1, _ := music(c1); len(p1) < 2 || p1[1] != "zh-CN/digit-0" {
		t.Fatalf("c1 heard %v", p1)
	}
	<-ch0
	<-ch1
	<-ch2
}

// TestAbandonBooksCallback: a caller who hangs up while waiting is counted
// as abandoned and gets a callback task linked to the case; an agent takes
// it: the agent's phone rings, then the citizen's, and they are bridged.
func TestAbandonBooksCallback(t *testing.T) {
	cfg := &Config{Queues: []Queue{testQueue("general")}, CallbackTrunk: "sip:gw.example.net"}
	f := newFixture(t, cfg)
	f.addAgent("1001", Paused, Skills{})
	ctx := context.Background()
	c, ch := f.route(ctx, "c1", queueDecision("general"))
	time.Sleep(30 * time.Millisecond)
	c.Hangup(ctx, "caller gave up")
	res := <-ch
	if res.err != ivr.ErrHungUp {
		t.Fatalf("abandon: %v %v", res.out, res.err)
	}
	fig := f.r.Figures()
	if fig.Queues[0].Abandoned != 1 || fig.Queues[0].AbandonRate != 1 || fig.CallbacksBooked != 1 {
		t.Fatalf("figures %+v", fig)
	}
	cbs, err := f.r.Callbacks(ctx, CallbackOpen)
	if err != nil || len(cbs) != 1 || cbs[0].Case != "Cc1" || cbs[0].Queue != "general" {
		t.Fatalf("callbacks %+v %v", cbs, err)
	}
	// The same number abandoning again gets no second task.
	c2 := newFakeCall("c2", c.caller)
	go c2.Hangup(ctx, "again")
	f.r.Route(ctx, c2, queueDecision("general"))
	if cbs2, _ := f.r.Callbacks(ctx); len(cbs2) != 1 {
		t.Fatalf("second task for the same number: %+v", cbs2)
	}

	f.dialer.set("1001", behaviour{answerAfter: time.Millisecond})
	f.dialer.mu.Lock()
	f.dialer.lines[c.caller] = behaviour{answerAfter: 5 * time.Millisecond, talk: 20 * time.Millisecond}
	f.dialer.mu.Unlock()
	if _, err := f.r.TakeCallback(ctx, cbs[0].ID, "1001"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.TakeCallback(ctx, cbs[0].ID, "1001"); err != ErrNoCallback {
		t.Fatalf("taking a taken task: %v", err)
	}
	waitFor(t, "callback done", 2*time.Second, func() bool {
		l, _ := f.r.Callbacks(ctx, CallbackDone)
		return len(l) == 1
	})
	f.dialer.mu.Lock()
	outs, bridged := slices.Clone(f.dialer.outs), slices.Clone(f.dialer.bridged)
	f.dialer.mu.Unlock()
	if len(outs) != 1 || outs[0].Number != c.caller || outs[0].Trunk != "sip:gw.example.net" || outs[0].CaseNumber != "Cc1" {
		t.Fatalf("citizen leg %+v", outs)
	}
	if len(bridged) != 1 || !strings.HasPrefix(bridged[0], "agent-1001") {
		t.Fatalf("bridges %v", bridged)
	}
	waitFor(t, "agent back in its pause after wrap-up", time.Second, func() bool {
		a, _ := f.r.Agent(ctx, "1001")
		return a.State == Paused && a.Calls == 1
	})
}

// TestTransfer: only configured destinations; the line's answer bridges
// the caller; busy is a failure the flow falls back from; max calls caps.
func TestTransfer(t *testing.T) {
	cfg := &Config{Queues: []Queue{testQueue("general")}, Destinations: []Destination{
		{ID: "12315", Number: "12315", Trunk: "sip:127.0.0.1:5099", Fallback: "general", MaxCalls: 1, Names: map[string]string{"zh-CN": "12315"}},
		{ID: "12333", Number: "12333", Trunk: "sip:127.0.0.1:5099", Names: map[string]string{"zh-CN": "12333"}},
		{ID: "notrunk", Number: "12366", Names: map[string]string{"zh-CN": "x"}},
	}}
	f := newFixture(t, cfg)
	f.dialer.lines["12315"] = behaviour{answerAfter: 5 * time.Millisecond, talk: 100 * time.Millisecond}
	f.dialer.lines["12333"] = behaviour{answerAfter: 5 * time.Millisecond, fail: fmt.Errorf("%w: 486", ErrBusy)}
	ctx := context.Background()
	xfer := func(id string) ivr.Decision { return ivr.Decision{Kind: ivr.KindTransfer, ID: id, Node: "n"} }

	_, ch := f.route(ctx, "c1", xfer("12315"))
	waitFor(t, "12315 dialled", time.Second, func() bool { f.dialer.mu.Lock(); defer f.dialer.mu.Unlock(); return len(f.dialer.outs) == 1 })
	// A second call while the line is at its cap fails at once.
	_, chCap := f.route(ctx, "c2", xfer("12315"))
	if res := <-chCap; res.out.Status != ivr.OutcomeFailed || res.out.Reason != "max-calls" {
		t.Fatalf("cap: %v", res.out)
	}
	if res := <-ch; res.out.Status != ivr.OutcomeReturned {
		t.Fatalf("12315: %v %v", res.out, res.err)
	}
	f.dialer.mu.Lock()
	o := f.dialer.outs[0]
	f.dialer.mu.Unlock()
	if o.Number != "12315" || o.Trunk != "sip:127.0.0.1:5099" || o.PassCaller || o.CaseNumber != "Cc1" {
		t.Fatalf("outbound %+v", o)
	}
	for _, tc := range []struct{ id, reason string }{{"12333", "busy"}, {"notrunk", "no-trunk"}, {"110", "not a configured destination"}, {"13800138000", "not a configured destination"}} {
		_, ch := f.route(ctx, "c-"+tc.id, xfer(tc.id))
		if res := <-ch; res.out.Status != ivr.OutcomeFailed || res.out.Reason != tc.reason {
			t.Fatalf("%s: %v", tc.id, res.out)
		}
	}
	fig := f.r.Figures()
	if fig.Refused != 2 || fig.Destinations[0].Transfers != 1 || fig.Destinations[0].Answered != 1 || fig.Destinations[0].Failures["max-calls"] != 1 ||
		fig.Destinations[1].Failures["busy"] != 1 || fig.Destinations[2].Failures["no-trunk"] != 1 {
		t.Fatalf("figures %+v", fig)
	}
	f.dialer.mu.Lock()
	n := len(f.dialer.outs)
	f.dialer.mu.Unlock()
	if n != 2 {
		t.Fatalf("dialled %d times, want 2 (12315, 12333): refused ones never reach the plane", n)
	}
}

// TestAgentEvents: the agent's screen gets the case of the call ringing,
// the answer and the end with the wrap-up time.
func TestAgentEvents(t *testing.T) {
	f := newFixture(t, &Config{Queues: []Queue{testQueue("general")}})
	f.addAgent("1001", Available, Skills{})
	f.dialer.set("1001", behaviour{answerAfter: 2 * time.Millisecond, talk: 10 * time.Millisecond})
	events, cancel := f.r.Subscribe("1001")
	defer cancel()
	others, cancel2 := f.r.Subscribe("1002")
	defer cancel2()
	d := queueDecision("general")
	d.Vars = map[string]string{"appeal": "complaint"}
	c, ch := f.route(context.Background(), "c1", d)
	<-ch
	var kinds []string
	for len(kinds) < 3 {
		select {
		case e := <-events:
			kinds = append(kinds, e.Kind)
			if e.Case != "Cc1" || e.Call != "c1" || e.Queue != "general" || e.Caller == c.caller || e.Caller == "" || e.Vars["appeal"] != "complaint" {
				t.Fatalf("event %+v", e)
			}
			if e.Kind == "ended" && e.WrapUntil.IsZero() {
				t.Fatalf("no wrap-up time: %+v", e)
			}
		case <-time.After(time.Second):
			t.Fatalf("events so far %v", kinds)
		}
	}
	if !slices.Equal(kinds, []string{"ringing", "connected", "ended"}) {
		t.Fatalf("events %v", kinds)
	}
	select {
	case e := <-others:
		t.Fatalf("another agent got %+v", e)
	default:
	}
}

type closedCalendars struct{}

func (closedCalendars) Has(string) bool                        { return true }
func (closedCalendars) IsOpen(string, time.Time) (bool, error) { return false, nil }

// TestTransferClosedLine: a destination whose calendar is closed is not
// dialled; the flow falls back.
func TestTransferClosedLine(t *testing.T) {
	cfg := &Config{Queues: []Queue{testQueue("complaints")}, Destinations: []Destination{
		{ID: "edu-bureau", Number: "02363862437", Trunk: "sip:127.0.0.1:5099", Calendar: "edu-bureau", Fallback: "complaints", Names: map[string]string{"zh-CN": "教育局"}}}}
	f := newFixture(t, cfg, func(o *Options) { o.Calendars = closedCalendars{} })
	f.dialer.lines["02363862437"] = behaviour{answerAfter: time.Millisecond}
	_, ch := f.route(context.Background(), "c1", ivr.Decision{Kind: ivr.KindTransfer, ID: "edu-bureau"})
	if res := <-ch; res.out.Status != ivr.OutcomeFailed || res.out.Reason != "closed" || len(f.dialer.outs) != 0 {
		t.Fatalf("%v, %d dialled", res.out, len(f.dialer.outs))
	}
}

// TestAgentTransfersCaller: the agent's phone sends the caller on to 12315
// (the plane's Bridge returns a TransferRequest): the router hangs the
// agent up, wraps the agent up, and transfers the caller in the same
// Route; the flow gets the transfer's outcome.
func TestAgentTransfersCaller(t *testing.T) {
	cfg := &Config{Queues: []Queue{testQueue("general")}, Destinations: []Destination{
		{ID: "12315", Number: "12315", Trunk: "sip:127.0.0.1:5099", Fallback: "general", Names: map[string]string{"zh-CN": "12315"}},
	}}
	f := newFixture(t, cfg)
	f.addAgent("1001", Available, Skills{})
	f.dialer.set("1001", behaviour{answerAfter: time.Millisecond, talk: 30 * time.Millisecond, refer: "12315"})
	f.dialer.lines["12315"] = behaviour{answerAfter: 5 * time.Millisecond, talk: 50 * time.Millisecond}
	ctx := context.Background()
	_, ch := f.routeQueued(ctx, "c1", queueDecision("general"))
	res := <-ch
	if res.err != nil || res.out.Status != ivr.OutcomeReturned || !strings.Contains(res.out.Reason, "destination") {
		t.Fatalf("outcome %+v %v, want returned after the 12315 leg", res.out, res.err)
	}
	f.dialer.mu.Lock()
	outs, bridged := slices.Clone(f.dialer.outs), slices.Clone(f.dialer.bridged)
	f.dialer.mu.Unlock()
	if len(outs) != 1 || outs[0].Destination != "12315" || outs[0].CaseNumber != "Cc1" {
		t.Fatalf("dialled %+v, want 12315 with the case number", outs)
	}
	if len(bridged) != 2 || !strings.Contains(bridged[0], "agent-1001") || !strings.Contains(bridged[1], "line-12315") {
		t.Fatalf("bridges %v, want the agent, then the 12315 line", bridged)
	}
	st, _ := f.r.Agent(ctx, "1001")
	if st.State != WrapUp && st.State != Available {
		t.Errorf("agent after the transfer: %s, want wrap-up or available", st.State)
	}
	if fig := f.r.Figures(); fig.Destinations[0].Transfers != 1 || fig.Destinations[0].Answered != 1 {
		t.Errorf("destination figures %+v", fig.Destinations[0])
	}
}

// TestTransferCallAPI: a supervisor or the agent's desktop sends a bridged
// caller on (the API): the bridge ends, the router transfers the caller;
// an unconfigured destination is refused and counted, an unknown call is
// ErrNotBridged.
func TestTransferCallAPI(t *testing.T) {
	cfg := &Config{Queues: []Queue{testQueue("general")}, Destinations: []Destination{
		{ID: "12315", Number: "12315", Trunk: "sip:127.0.0.1:5099", Fallback: "general", Names: map[string]string{"zh-CN": "12315"}},
	}}
	f := newFixture(t, cfg)
	f.addAgent("1001", Available, Skills{})
	f.dialer.set("1001", behaviour{answerAfter: time.Millisecond, talk: time.Minute})
	f.dialer.lines["12315"] = behaviour{answerAfter: 5 * time.Millisecond, talk: 50 * time.Millisecond}
	ctx := context.Background()
	_, ch := f.routeQueued(ctx, "c1", queueDecision("general"))
	waitFor(t, "agent bridged", 2*time.Second, func() bool {
		f.dialer.mu.Lock()
		defer f.dialer.mu.Unlock()
		return len(f.dialer.bridged) == 1
	})
	if err := f.r.TransferCall(ctx, "c1", "0085212345678", "supervisor s1"); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("unconfigured: %v", err)
	}
	if err := f.r.TransferCall(ctx, "nobody", "12315", "supervisor s1"); !errors.Is(err, ErrNotBridged) {
		t.Fatalf("unknown call: %v", err)
	}
	if err := f.r.TransferCall(ctx, "c1", "12315", "agent 1001"); err != nil {
		t.Fatal(err)
	}
	res := <-ch
	if res.err != nil || res.out.Status != ivr.OutcomeReturned || !strings.Contains(res.out.Reason, "destination") {
		t.Fatalf("outcome %+v %v, want returned after the 12315 leg", res.out, res.err)
	}
	f.dialer.mu.Lock()
	outs := slices.Clone(f.dialer.outs)
	f.dialer.mu.Unlock()
	if len(outs) != 1 || outs[0].Destination != "12315" {
		t.Fatalf("dialled %+v", outs)
	}
	if fig := f.r.Figures(); fig.Refused != 1 {
		t.Errorf("refused %d, want 1", fig.Refused)
	}
}

// TestTransferRingback: the caller hears the ringback tone while the line
// rings, and no more of it once the line answered (the bridge has the
// audio to itself); "-" turns it off.
func TestTransferRingback(t *testing.T) {
	for _, tc := range []struct {
		name, ringback string
		want           int
	}{{"default", "", 1}, {"off", "-", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{Queues: []Queue{testQueue("general")}, Destinations: []Destination{
				{ID: "12315", Number: "12315", Trunk: "sip:127.0.0.1:5099", Fallback: "general", Names: map[string]string{"zh-CN": "12315"}}}}
			f := newFixture(t, cfg, func(o *Options) { o.Ringback = tc.ringback })
			f.dialer.lines["12315"] = behaviour{answerAfter: 50 * time.Millisecond, talk: 300 * time.Millisecond}
			c, ch := f.route(context.Background(), "c1", ivr.Decision{Kind: ivr.KindTransfer, ID: "12315", Node: "n"})
			if res := <-ch; res.out.Status != ivr.OutcomeReturned {
				t.Fatalf("transfer: %v %v", res.out, res.err)
			}
			if got := slices.Index(c.Played(), prompts.Ringback) >= 0; got != (tc.want > 0) {
				t.Fatalf("played %v, want ringback %v", c.Played(), tc.want > 0)
			}
			n := len(c.Played())
			time.Sleep(50 * time.Millisecond)
			if len(c.Played()) != n {
				t.Fatalf("ringback went on after the answer: %v", c.Played())
			}
		})
	}
}

// TestTransferEarlyMedia: a line that sends early media (183 with SDP) is
// heard instead of the ringback; the relay stops before the bridge.
func TestTransferEarlyMedia(t *testing.T) {
	cfg := &Config{Queues: []Queue{testQueue("general")}, Destinations: []Destination{
		{ID: "12315", Number: "12315", Trunk: "sip:127.0.0.1:5099", Fallback: "general", Names: map[string]string{"zh-CN": "12315"}}}}
	f := newFixture(t, cfg)
	f.dialer.lines["12315"] = behaviour{earlyAfter: 20 * time.Millisecond, answerAfter: 200 * time.Millisecond, talk: 50 * time.Millisecond}
	c, ch := f.route(context.Background(), "c1", ivr.Decision{Kind: ivr.KindTransfer, ID: "12315", Node: "n"})
	if res := <-ch; res.out.Status != ivr.OutcomeReturned {
		t.Fatalf("transfer: %v %v", res.out, res.err)
	}
	f.dialer.mu.Lock()
	audio := slices.Clone(f.dialer.audio)
	f.dialer.mu.Unlock()
	if len(audio) != 3 || !strings.HasPrefix(audio[0], "early line-12315") || audio[1] != "early stopped" || audio[2] != "bridge" {
		t.Fatalf("audio %v; want early media, stopped, then the bridge", audio)
	}
	// The ringback played until the early media came, and not after.
	if n := strings.Count(strings.Join(c.Played(), ","), prompts.Ringback); n != 1 {
		t.Fatalf("played %v; want the ringback once, before the early media", c.Played())
	}
}

// TestHoldMusicOff: "-" keeps the waits between announcements silent.
func TestHoldMusicOff(t *testing.T) {
	q := testQueue("general")
	q.AnnounceFirst, q.AnnounceEvery = 20*time.Millisecond, 40*time.Millisecond
	f := newFixture(t, &Config{Queues: []Queue{q}}, func(o *Options) { o.HoldMusic = "-" })
	ctx, cancel := context.WithCancel(context.Background())
	c, ch := f.routeQueued(ctx, "c1", queueDecision("general"))
	time.Sleep(150 * time.Millisecond)
	c.Hangup(ctx, "test over")
	<-ch
	cancel()
	if slices.Contains(c.Played(), prompts.HoldMusic) || !slices.Contains(c.Played(), "zh-CN/queue-comfort") {
		t.Fatalf("played %v; want announcements and no hold music", c.Played())
	}
}
