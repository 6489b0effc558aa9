package ari_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/ari"
	"github.com/cq12345/hotline/ari/arifake"
	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/routing"
	"github.com/cq12345/hotline/telemetry"
)

// routerFlow does what the router does with a queued caller: ring the
// agent, wait for the answer, bridge, and after the bridge play the survey
// to a caller still there. The leg and the outcome are reported.
type routed struct {
	leg       routing.Leg
	ringErr   error // RingAgent / DialOut
	legErr    error // leg.Err() of a leg that never answered
	bridgeErr error
	bridged   bool
}

func routerFlow(e **env, dial func(context.Context, *ari.Plane, ivr.Call) (routing.Leg, error), out chan<- routed) ari.HandlerFunc {
	return func(ctx context.Context, c ivr.Call) {
		var r routed
		defer func() { out <- r }()
		if err := c.Answer(ctx); err != nil {
			r.ringErr = err
			return
		}
		p := (*e).plane
		r.leg, r.ringErr = dial(ctx, p, c)
		if r.ringErr != nil {
			return
		}
		select {
		case <-r.leg.Answered():
		case <-r.leg.Done():
			r.legErr = r.leg.Err()
			return
		case <-c.Done():
			return
		}
		r.bridged = true
		r.bridgeErr = p.Bridge(ctx, c, r.leg)
		select {
		case <-c.Done():
			_ = r.leg.Hangup(ctx, "caller gone")
		default:
			_ = c.Play(ctx, []string{"zh-CN/survey"}, false)
			_ = c.Hangup(ctx, "after bridge")
		}
	}
}

func ringAgent(ext string, timeout time.Duration) func(context.Context, *ari.Plane, ivr.Call) (routing.Leg, error) {
	return func(ctx context.Context, p *ari.Plane, c ivr.Call) (routing.Leg, error) {
		return p.RingAgent(ctx, routing.AgentRing{Agent: routing.Agent{ID: "a" + ext, Extension: ext}, Caller: c,
			CaseNumber: "CQ-TEST-1", Queue: "general", Lang: "zh-CN", Timeout: timeout})
	}
}

// wrapped is how hotlined hands calls to the router: inside its own type.
type wrapped struct{ ivr.Call }

func (w wrapped) Unwrap() ivr.Call   { return w.Call }
func (w wrapped) CaseNumber() string { return "CQ-TEST-1" }

func onlyLeg(t *testing.T, f *arifake.Server) *arifake.Call {
	t.Helper()
	var l *arifake.Call
	eventually(t, "one originated leg", func() bool {
		if legs := f.Originated(); len(legs) == 1 {
			l = legs[0]
		}
		return l != nil
	})
	return l
}

func TestRingAgentBridgeAgentHangsUp(t *testing.T) {
	out := make(chan routed, 1)
	var e *env
	e = start(t, routerFlow(&e, func(ctx context.Context, p *ari.Plane, c ivr.Call) (routing.Leg, error) {
		return ringAgent("1001", 5*time.Second)(ctx, p, wrapped{c})
	}, out), func(f *arifake.Server) {
		f.SetEndpoint("PJSIP/1001", arifake.Endpoint{AnswerAfter: 50 * time.Millisecond})
	})
	caller := e.fake.Call(arifake.CallOptions{Caller: "13800138000"})
	agent := onlyLeg(t, e.fake)
	eventually(t, "caller and agent bridged", func() bool {
		return slices.Equal(caller.BridgedWith(), []string{agent.ID()})
	})
	if got := agent.Endpoint(); got != "PJSIP/1001" {
		t.Errorf("agent endpoint %q, want PJSIP/1001", got)
	}
	if got := agent.Var("PJSIP_HEADER(add,X-Hotline-Case)"); got != "CQ-TEST-1" {
		t.Errorf("X-Hotline-Case header variable %q, want the case number", got)
	}
	if got := agent.Var("PJSIP_HEADER(add,X-Hotline-Queue)"); got != "general" {
		t.Errorf("X-Hotline-Queue header variable %q", got)
	}
	// Agents see the caller's number (DESIGN.md).
	if got := agent.CallerNumber(); got != "13800138000" {
		t.Errorf("agent sees caller %q, want the caller's number", telemetry.MaskNumber(got))
	}
	agent.HangUp()
	r := <-out
	if r.bridgeErr != nil || !r.bridged {
		t.Fatalf("bridge: %+v", r)
	}
	select {
	case <-r.leg.Done():
	default:
		t.Error("the agent's leg is not done after the agent hung up")
	}
	if r.leg.Err() != nil {
		t.Errorf("an answered leg has Err %v", r.leg.Err())
	}
	eventually(t, "survey, then hotline hung up", caller.Gone)
	if !containsMedia(e.fake, "sound:hotline/zh-CN/survey") {
		t.Error("caller did not get the survey after the agent left")
	}
	eventually(t, "no bridge left", func() bool { return e.fake.BridgeCount() == 0 })
}

func TestRingAgentCallerHangsUp(t *testing.T) {
	out := make(chan routed, 1)
	var e *env
	e = start(t, routerFlow(&e, ringAgent("1001", 5*time.Second), out), func(f *arifake.Server) {
		f.SetEndpoint("PJSIP/1001", arifake.Endpoint{})
	})
	caller := e.fake.Call(arifake.CallOptions{})
	agent := onlyLeg(t, e.fake)
	eventually(t, "bridged", func() bool { return len(caller.BridgedWith()) == 1 })
	caller.HangUp()
	r := <-out
	if r.bridgeErr != nil {
		t.Fatalf("Bridge after the caller hung up: %v, want nil", r.bridgeErr)
	}
	// Asterisk does not propagate the hang-up; the router (here the flow)
	// hangs the agent up.
	eventually(t, "agent hung up", agent.Gone)
	eventually(t, "no bridge left", func() bool { return e.fake.BridgeCount() == 0 })
}

func TestLegNotAnswered(t *testing.T) {
	cases := []struct {
		name string
		ep   *arifake.Endpoint // nil: not configured (the fake answers 400)
		want error
		ring bool // the error comes from RingAgent itself
	}{
		{"no answer", &arifake.Endpoint{NoAnswer: true}, routing.ErrNoAnswer, false},
		{"busy", &arifake.Endpoint{Busy: true}, routing.ErrBusy, false},
		{"unknown endpoint", nil, routing.ErrUnreachable, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := make(chan routed, 1)
			var e *env
			e = start(t, routerFlow(&e, ringAgent("1001", time.Second), out), func(f *arifake.Server) {
				if tc.ep != nil {
					f.SetEndpoint("PJSIP/1001", *tc.ep)
				}
			})
			caller := e.fake.Call(arifake.CallOptions{})
			r := <-out
			got := r.legErr
			if tc.ring {
				got = r.ringErr
			}
			if !errors.Is(got, tc.want) {
				t.Fatalf("got ring %v / leg %v, want %v", r.ringErr, r.legErr, tc.want)
			}
			if r.bridged {
				t.Error("bridged a leg that never answered")
			}
			caller.HangUp()
			eventually(t, "caller gone", caller.Gone)
			if n := len(e.fake.Originated()); n != 0 {
				t.Errorf("%d legs left", n)
			}
		})
	}
}

// A leg the router hangs up while it rings (its ring timeout) was not
// answered: ErrNoAnswer, as on the sip plane.
func TestRingingLegHungUpByRouter(t *testing.T) {
	out := make(chan error, 1)
	var e *env
	e = start(t, ari.HandlerFunc(func(ctx context.Context, c ivr.Call) {
		_ = c.Answer(ctx)
		l, err := ringAgent("1001", 30*time.Second)(ctx, e.plane, c)
		if err != nil {
			out <- err
			return
		}
		time.Sleep(200 * time.Millisecond)
		_ = l.Hangup(ctx, "ring timeout")
		<-l.Done()
		out <- l.Err()
		_ = c.Hangup(ctx, "done")
	}), func(f *arifake.Server) { f.SetEndpoint("PJSIP/1001", arifake.Endpoint{NoAnswer: true}) })
	caller := e.fake.Call(arifake.CallOptions{})
	if err := <-out; !errors.Is(err, routing.ErrNoAnswer) {
		t.Fatalf("leg hung up by the router: Err %v, want ErrNoAnswer", err)
	}
	eventually(t, "caller gone", caller.Gone)
	if n := len(e.fake.Originated()); n != 0 {
		t.Errorf("%d legs left", n)
	}
}

func TestDialOutTrunk(t *testing.T) {
	cases := []struct {
		name       string
		trunk      string
		defTrunk   string
		pass       bool
		endpoint   string
		callerSeen string
		err        error
	}{
		{"destination trunk", "sip:gw@127.0.0.1:5070", "", false, "PJSIP/trunk/sip:12315@127.0.0.1:5070", "12345", nil},
		{"default trunk, caller passed", "", "sip:10.0.0.1", true, "PJSIP/trunk/sip:12315@10.0.0.1", "13800138000", nil},
		{"no trunk", "", "", false, "", "", routing.ErrUnreachable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := make(chan routed, 1)
			var e *env
			e = startCfg(t, routerFlow(&e, func(ctx context.Context, p *ari.Plane, c ivr.Call) (routing.Leg, error) {
				return p.DialOut(ctx, routing.Outbound{Destination: "12315", Number: "12315", Trunk: tc.trunk,
					Caller: c, PassCaller: tc.pass, CaseNumber: "CQ-TEST-2", Timeout: 5 * time.Second})
			}, out), func(f *arifake.Server) {
				if tc.endpoint != "" {
					f.SetEndpoint(tc.endpoint, arifake.Endpoint{AnswerAfter: 20 * time.Millisecond})
				}
			}, func(c *ari.Config) { c.Trunk = tc.defTrunk })
			caller := e.fake.Call(arifake.CallOptions{Caller: "13800138000"})
			if tc.err != nil {
				r := <-out
				if !errors.Is(r.ringErr, tc.err) {
					t.Fatalf("DialOut: %v, want %v", r.ringErr, tc.err)
				}
				eventually(t, "caller gone", caller.Gone)
				return
			}
			line := onlyLeg(t, e.fake)
			eventually(t, "bridged", func() bool { return len(caller.BridgedWith()) == 1 })
			if got := line.Endpoint(); got != tc.endpoint {
				t.Errorf("endpoint %q, want %q", got, tc.endpoint)
			}
			if got := line.CallerNumber(); got != tc.callerSeen {
				t.Errorf("the line sees caller %q, want %q (privacy: the hotline's number unless passed)", telemetry.MaskNumber(got), telemetry.MaskNumber(tc.callerSeen))
			}
			if got := line.Var("PJSIP_HEADER(add,X-Hotline-Case)"); got != "CQ-TEST-2" {
				t.Errorf("case header variable %q", got)
			}
			line.HangUp()
			if r := <-out; r.bridgeErr != nil {
				t.Fatalf("bridge: %v", r.bridgeErr)
			}
			eventually(t, "caller gone", caller.Gone)
		})
	}
}

type destinations map[string]routing.Destination

func (d destinations) Allowed(id, _ string) (routing.Destination, bool) {
	x, ok := d[id]
	return x, ok
}

type flags struct {
	mu  sync.Mutex
	got [][2]string
}

func (f *flags) Flag(_ context.Context, callID, agent string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, [2]string{callID, agent})
	return nil
}

func (f *flags) list() [][2]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// The agent keys *7 (the caller is flagged), then *1: 110 joins the bridge
// (three-party); the agent hangs up and caller and 110 stay together
// (hand-over) until 110 hangs up.
func TestAgentCodesFlagAndEmergency(t *testing.T) {
	out := make(chan routed, 1)
	fl := &flags{}
	const line110 = "PJSIP/trunk/sip:110@127.0.0.1:5110"
	var e *env
	e = startCfg(t, routerFlow(&e, ringAgent("1001", 5*time.Second), out), func(f *arifake.Server) {
		f.SetEndpoint("PJSIP/1001", arifake.Endpoint{AnswerAfter: 20 * time.Millisecond})
		f.SetEndpoint(line110, arifake.Endpoint{AnswerAfter: 50 * time.Millisecond})
	}, func(c *ari.Config) {
		c.Flagger = fl
		c.Destinations = destinations{"110": {ID: "110", Number: "110", Trunk: "sip:110@127.0.0.1:5110"}}
	})
	caller := e.fake.Call(arifake.CallOptions{Caller: "13800138000"})
	agent := onlyLeg(t, e.fake)
	eventually(t, "bridged", func() bool { return len(caller.BridgedWith()) == 1 })
	agent.Press('*')
	agent.Press('7')
	eventually(t, "caller flagged", func() bool { return len(fl.list()) == 1 })
	if got := fl.list()[0]; got != [2]string{caller.ID(), "1001"} {
		t.Errorf("flag %v, want caller %s by agent 1001", got, caller.ID())
	}
	agent.Press('*')
	agent.Press('1')
	eventually(t, "three-party", func() bool { return len(caller.BridgedWith()) == 2 })
	var emergency *arifake.Call
	for _, l := range e.fake.Originated() {
		if l.Endpoint() == line110 {
			emergency = l
		}
	}
	if emergency == nil {
		t.Fatal("110 not dialled")
	}
	agent.HangUp()
	time.Sleep(100 * time.Millisecond)
	if got := caller.BridgedWith(); !slices.Equal(got, []string{emergency.ID()}) {
		t.Fatalf("after the agent left the caller is bridged with %v, want 110 (%s)", got, emergency.ID())
	}
	select {
	case r := <-out:
		t.Fatalf("Bridge returned while caller and 110 talk: %+v", r)
	default:
	}
	emergency.HangUp()
	if r := <-out; r.bridgeErr != nil {
		t.Fatalf("bridge: %v", r.bridgeErr)
	}
	eventually(t, "caller served and gone", caller.Gone)
	if n := len(e.fake.Originated()); n != 0 {
		t.Errorf("%d legs left", n)
	}
}

// A callback has no inbound call: the router rings the agent (no caller),
// plays the agent a prompt, dials the citizen through the trunk and
// bridges the two legs.
func TestCallbackLegs(t *testing.T) {
	const citizen = "PJSIP/trunk/sip:13800138000@127.0.0.1:5070"
	e := startCfg(t, ari.HandlerFunc(func(context.Context, ivr.Call) {}), func(f *arifake.Server) {
		f.SetEndpoint("PJSIP/1001", arifake.Endpoint{AnswerAfter: 20 * time.Millisecond})
		f.SetEndpoint(citizen, arifake.Endpoint{AnswerAfter: 20 * time.Millisecond})
	}, func(c *ari.Config) { c.Trunk = "sip:127.0.0.1:5070" })
	ctx := context.Background()
	agent, err := e.plane.RingAgent(ctx, routing.AgentRing{Agent: routing.Agent{ID: "a1", Extension: "1001"}, CaseNumber: "CQ-CB-1", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	<-agent.Answered()
	if err := agent.Play(ctx, []string{"zh-CN/callback-agent"}, false); err != nil {
		t.Fatalf("prompt to the agent: %v", err)
	}
	leg, err := e.plane.DialOut(ctx, routing.Outbound{Number: "13800138000", CaseNumber: "CQ-CB-1", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	<-leg.Answered()
	out := make(chan error, 1)
	go func() { out <- e.plane.Bridge(ctx, agent, leg) }()
	var citizenCh *arifake.Call
	eventually(t, "agent and citizen bridged", func() bool {
		for _, l := range e.fake.Originated() {
			if l.Endpoint() == citizen && len(l.BridgedWith()) == 1 {
				citizenCh = l
			}
		}
		return citizenCh != nil
	})
	if got := citizenCh.CallerNumber(); got != "12345" {
		t.Errorf("the citizen sees %q, want the hotline's number", telemetry.MaskNumber(got))
	}
	citizenCh.HangUp()
	if err := <-out; err != nil {
		t.Fatalf("bridge: %v", err)
	}
	_ = agent.Hangup(ctx, "callback over")
	eventually(t, "legs gone", func() bool { return len(e.fake.Originated()) == 0 })
}
