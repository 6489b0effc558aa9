package ari_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cq12345/hotline/ari"
	"github.com/cq12345/hotline/ari/arifake"
	"github.com/cq12345/hotline/ivr"
)

// agentFlow answers, bridges to the endpoint, and after the bridge plays
// a survey prompt (when the caller is still there) and hangs up.
func agentFlow(endpoint string, ring time.Duration, out chan<- error) ari.HandlerFunc {
	return func(ctx context.Context, c ivr.Call) {
		if err := c.Answer(ctx); err != nil {
			out <- err
			return
		}
		err := ari.BridgeTo(ctx, c, endpoint, ari.BridgeOptions{Role: "agent", RingTimeout: ring, CallerID: `"hotline" <12345>`})
		out <- err
		if err == nil || errors.Is(err, ari.ErrNoAnswer) || errors.Is(err, ari.ErrBusy) {
			_ = c.Play(ctx, []string{"zh-CN/survey"}, false)
			_ = c.Hangup(ctx, "after bridge")
		}
	}
}

func TestBridgeToAgentAgentHangsUp(t *testing.T) {
	out := make(chan error, 1)
	e := start(t, agentFlow("PJSIP/agent1", 5*time.Second, out), func(f *arifake.Server) {
		f.SetEndpoint("PJSIP/agent1", arifake.Endpoint{AnswerAfter: 50 * time.Millisecond})
	})
	caller := e.fake.Call(arifake.CallOptions{})
	var agent *arifake.Call
	eventually(t, "agent bridged", func() bool {
		if legs := e.fake.Originated(); len(legs) == 1 {
			agent = legs[0]
		}
		return agent != nil && agent.Bridged() && caller.Bridged()
	})
	agent.HangUp()
	if err := <-out; err != nil {
		t.Fatalf("BridgeTo after the agent hung up: %v, want nil", err)
	}
	eventually(t, "survey played and caller hung up", caller.Gone)
	if !containsMedia(e.fake, "sound:hotline/zh-CN/survey") {
		t.Error("no survey after the agent hung up: the caller should stay in the IVR")
	}
	if n := e.fake.BridgeCount(); n != 0 {
		t.Errorf("%d bridges left", n)
	}
	var originate string
	for _, r := range e.fake.Requests() {
		if r.Method == "POST" && r.Path == "/ari/channels" {
			originate = r.Query
		}
	}
	for _, want := range []string{"app=hotline", "appArgs=agent%2C" + caller.ID(), "endpoint=PJSIP%2Fagent1", "timeout=5"} {
		if !strings.Contains(originate, want) {
			t.Errorf("originate %q lacks %q", originate, want)
		}
	}
}

func containsMedia(f *arifake.Server, uri string) bool {
	for _, r := range f.Requests() {
		if strings.HasSuffix(r.Path, "/play") && strings.Contains(r.Query, strings.NewReplacer(":", "%3A", "/", "%2F").Replace(uri)) {
			return true
		}
	}
	return false
}

// The caller hanging up is not propagated by Asterisk: hotline hangs up
// the agent itself.
func TestBridgeCallerHangsUp(t *testing.T) {
	out := make(chan error, 1)
	e := start(t, agentFlow("PJSIP/agent1", 5*time.Second, out), func(f *arifake.Server) {
		f.SetEndpoint("PJSIP/agent1", arifake.Endpoint{})
	})
	caller := e.fake.Call(arifake.CallOptions{})
	var agent *arifake.Call
	eventually(t, "agent bridged", func() bool {
		if legs := e.fake.Originated(); len(legs) == 1 {
			agent = legs[0]
		}
		return agent != nil && agent.Bridged()
	})
	caller.HangUp()
	if err := <-out; !errors.Is(err, ivr.ErrHungUp) {
		t.Fatalf("BridgeTo after the caller hung up: %v, want ErrHungUp", err)
	}
	eventually(t, "agent hung up by hotline", agent.Gone)
	eventually(t, "bridge destroyed", func() bool { return e.fake.BridgeCount() == 0 })
}

func TestBridgeNotConnected(t *testing.T) {
	cases := []struct {
		name string
		ep   arifake.Endpoint
		want error
	}{
		{"ring no answer", arifake.Endpoint{NoAnswer: true}, ari.ErrNoAnswer},
		{"busy", arifake.Endpoint{Busy: true}, ari.ErrBusy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := make(chan error, 1)
			e := start(t, agentFlow("PJSIP/agent1", time.Second, out), func(f *arifake.Server) {
				f.SetEndpoint("PJSIP/agent1", tc.ep)
			})
			caller := e.fake.Call(arifake.CallOptions{})
			t0 := time.Now()
			err := <-out
			if !errors.Is(err, tc.want) {
				t.Fatalf("BridgeTo: %v, want %v", err, tc.want)
			}
			if tc.ep.NoAnswer && time.Since(t0) < 900*time.Millisecond {
				t.Errorf("no answer after %v, before the 1 s ring timeout", time.Since(t0))
			}
			eventually(t, "caller served the survey and hung up", caller.Gone)
			if !containsMedia(e.fake, "sound:hotline/zh-CN/survey") {
				t.Error("caller did not go on in the IVR")
			}
			if n := e.fake.BridgeCount(); n != 0 {
				t.Errorf("%d bridges left", n)
			}
		})
	}
}

func TestBridgeUnknownEndpoint(t *testing.T) {
	out := make(chan error, 1)
	e := start(t, agentFlow("PJSIP/nobody", time.Second, out), nil)
	e.fake.Call(arifake.CallOptions{})
	if err := <-out; !errors.Is(err, ari.ErrUnavailable) || !errors.Is(err, ari.ErrBadRequest) {
		t.Fatalf("BridgeTo unknown endpoint: %v", err)
	}
}

// The agent hangs up while the WebSocket is down: Asterisk does not replay
// the events, the resync after the reconnect finds the leg gone, and the
// caller goes on in the IVR.
func TestBridgeAgentGoneDuringGap(t *testing.T) {
	out := make(chan error, 1)
	e := start(t, agentFlow("PJSIP/agent1", 5*time.Second, out), func(f *arifake.Server) {
		f.SetEndpoint("PJSIP/agent1", arifake.Endpoint{})
	})
	caller := e.fake.Call(arifake.CallOptions{})
	var agent *arifake.Call
	eventually(t, "agent bridged", func() bool {
		if legs := e.fake.Originated(); len(legs) == 1 {
			agent = legs[0]
		}
		return agent != nil && agent.Bridged()
	})
	e.fake.Refuse(true)
	e.fake.DropConnections()
	agent.HangUp()
	e.fake.Refuse(false)
	if err := <-out; err != nil {
		t.Fatalf("BridgeTo: %v, want nil after the resync", err)
	}
	eventually(t, "caller served the survey and hung up", caller.Gone)
	if !containsMedia(e.fake, "sound:hotline/zh-CN/survey") {
		t.Error("no survey")
	}
}
