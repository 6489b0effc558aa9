package sip

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/phone"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/routing"
	"github.com/pion/rtp"
)

// farEnd is a second plane standing for the three parties' phones: each
// call it answers sends its own tone and records what it hears.
type farEnd struct {
	mu    sync.Mutex
	tones []float64
	heard map[int][]int16 // by arrival order
	calls []*call
}

func (f *farEnd) serve(ctx context.Context, c ivr.Call) {
	if err := c.Answer(ctx); err != nil {
		return
	}
	sess := c.(*call).mediaSession()
	codec := c.(*call).codec()
	f.mu.Lock()
	i := len(f.heard)
	f.heard[i] = nil
	f.calls = append(f.calls, c.(*call))
	hz := f.tones[i%len(f.tones)]
	f.mu.Unlock()
	sess.SetSink(func(_ *rtp.Header, p []byte) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, b := range p {
			if codec == prompts.PCMU {
				f.heard[i] = append(f.heard[i], media.DecodeULaw(b))
			} else {
				f.heard[i] = append(f.heard[i], media.DecodeALaw(b))
			}
		}
	})
	sess.Play([][]byte{phone.ToneFrame(codec, hz, 6000)}, media.PlayOptions{Loop: true})
	<-c.Done()
}

// power is the Goertzel power of hz in x (8 kHz), normalised by length.
func power(x []int16, hz float64) float64 {
	k := 2 * math.Cos(2*math.Pi*hz/8000)
	var s1, s2 float64
	for _, v := range x {
		s0 := float64(v) + k*s1 - s2
		s2, s1 = s1, s0
	}
	return (s1*s1 + s2*s2 - k*s1*s2) / float64(len(x)*len(x))
}

// TestConference: three parties, each sending its own tone; each hears the
// other two tones and not its own.
func TestConference(t *testing.T) {
	fe := &farEnd{tones: []float64{600, 1000, 1400}, heard: map[int][]int16{}}
	far := startServer(t, fe.serve)
	hub := startServer(t, func(context.Context, ivr.Call) {})
	trunk := fmt.Sprintf("sip:%s", far.Addr())
	ctx := context.Background()
	var legs []ivr.Call
	for range 3 {
		l, err := hub.DialOut(ctx, routing.Outbound{Number: "12345", Trunk: trunk, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-l.Answered():
		case <-time.After(5 * time.Second):
			t.Fatal("party did not answer")
		}
		legs = append(legs, l)
		waitFor(t, "far end ready", 2*time.Second, func() bool {
			fe.mu.Lock()
			defer fe.mu.Unlock()
			return len(fe.heard) == len(legs)
		})
	}
	cctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	err := hub.Conference(cctx, legs...)
	cancel()
	if err != context.DeadlineExceeded {
		t.Fatalf("conference: %v", err)
	}
	for _, l := range legs {
		_ = l.Hangup(ctx, "test over")
	}
	fe.mu.Lock()
	defer fe.mu.Unlock()
	for i := range 3 {
		x := fe.heard[i]
		if len(x) < 8000/2 {
			t.Fatalf("party %d heard %d samples", i, len(x))
		}
		x = x[len(x)/4:] // skip the start
		own := power(x, fe.tones[i])
		for j, hz := range fe.tones {
			if j == i {
				continue
			}
			p := power(x, hz)
			t.Logf("party %d (%.0f Hz): %.0f Hz power %.0f, own %.0f", i, fe.tones[i], hz, p, own)
			if p < 100*own || p < 1e5 {
				t.Errorf("party %d does not clearly hear %.0f Hz: %.0f vs own %.0f", i, hz, p, own)
			}
		}
	}
}

// since returns what party i heard after sample n.
func (f *farEnd) since(i, n int) []int16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int16(nil), f.heard[i][min(n, len(f.heard[i])):]...)
}

func (f *farEnd) heardLen(i int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.heard[i])
}

func (f *farEnd) call(i int) *call {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.calls) {
		return nil
	}
	return f.calls[i]
}

// hears checks that x carries the tones of the parties in yes and not
// those in no.
func (f *farEnd) hears(t *testing.T, what string, x []int16, yes, no []int) {
	t.Helper()
	if len(x) < 2000 {
		t.Errorf("%s: %d samples", what, len(x))
		return
	}
	for _, j := range yes {
		if p := power(x, f.tones[j]); p < 1e5 {
			t.Errorf("%s: %.0f Hz missing (power %.0f)", what, f.tones[j], p)
		}
	}
	for _, j := range no {
		if p := power(x, f.tones[j]); p > 1e4 {
			t.Errorf("%s: %.0f Hz heard (power %.0f)", what, f.tones[j], p)
		}
	}
}

// TestBridgeEmergency: during a caller-agent bridge the agent keys *2 (119
// is busy: the two stay bridged), then *1: 110 is dialled and the three
// hear each other; the agent hangs up and the
// caller stays with 110 (hand-over); the caller never hears the code.
func TestBridgeEmergency(t *testing.T) {
	fe := &farEnd{tones: []float64{600, 1000, 1400}, heard: map[int][]int16{}}
	far := startServer(t, fe.serve)
	trunk := fmt.Sprintf("sip:%s", far.Addr())
	busy := newPhone(t)
	answer(t, busy, phone.AnswerConfig{Busy: true})
	dir := routing.NewDirectory([]routing.Destination{
		{ID: "110", Number: "12345", Trunk: trunk, PassCaller: true},
		{ID: "119", Number: "119", Trunk: fmt.Sprintf("sip:%s", busy.SIPAddr("udp"))},
	}, nil)
	hub := startServer(t, func(context.Context, ivr.Call) {}, func(_ *media.Config, c *Config) { c.Destinations = dir })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var legs []routing.Leg
	for i := range 2 {
		l, err := hub.DialOut(ctx, routing.Outbound{Number: "12345", Trunk: trunk, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		<-l.Answered()
		legs = append(legs, l)
		waitFor(t, "far end", 2*time.Second, func() bool { return fe.call(i) != nil })
	}
	caller, agent := legs[0], legs[1]
	// The far end is a plane, not a registered phone: mark the second leg
	// as an agent's, as RingAgent does, so that its codes are read.
	agent.(*leg).agent = true
	bridged := make(chan error, 1)
	go func() { bridged <- hub.Bridge(ctx, caller, agent) }()
	time.Sleep(300 * time.Millisecond)
	n0 := fe.heardLen(0)
	time.Sleep(600 * time.Millisecond)
	fe.hears(t, "caller, bridged", fe.since(0, n0), []int{1}, []int{2})

	agentPhone := fe.call(1).mediaSession()
	// *2: 119 is busy; caller and agent stay bridged.
	agentPhone.SendDTMF('*', 100*time.Millisecond)
	agentPhone.SendDTMF('2', 100*time.Millisecond)
	time.Sleep(700 * time.Millisecond)
	b0 := fe.heardLen(0)
	time.Sleep(500 * time.Millisecond)
	fe.hears(t, "caller, after a busy 119", fe.since(0, b0), []int{1}, []int{2})

	agentPhone.SendDTMF('*', 100*time.Millisecond)
	agentPhone.SendDTMF('1', 100*time.Millisecond)
	waitFor(t, "110 dialled", 5*time.Second, func() bool { return fe.call(2) != nil })
	time.Sleep(400 * time.Millisecond)
	m0, m2 := fe.heardLen(0), fe.heardLen(2)
	time.Sleep(800 * time.Millisecond)
	fe.hears(t, "caller, three-party", fe.since(0, m0), []int{1, 2}, nil)
	fe.hears(t, "110, three-party", fe.since(2, m2), []int{0, 1}, nil)

	// Hand-over: the agent hangs up; the caller stays with 110.
	_ = fe.call(1).Hangup(ctx, "agent leaves")
	time.Sleep(400 * time.Millisecond)
	h0, h2 := fe.heardLen(0), fe.heardLen(2)
	time.Sleep(800 * time.Millisecond)
	fe.hears(t, "caller after hand-over", fe.since(0, h0), []int{2}, []int{1})
	fe.hears(t, "110 after hand-over", fe.since(2, h2), []int{0}, []int{1})
	select {
	case err := <-bridged:
		t.Fatalf("bridge returned at the hand-over: %v", err)
	default:
	}
	if d, err := fe.call(0).ReadDigit(ctx, 0); err == nil {
		t.Errorf("the caller heard the agent's code digit %q", d)
	}
	cancel()
	if err := <-bridged; !errors.Is(err, context.Canceled) {
		t.Errorf("bridge: %v", err)
	}
	select {
	case <-fe.call(2).Done():
	case <-time.After(3 * time.Second):
		t.Error("the 110 leg was not hung up when the bridge ended")
	}
	_ = caller.Hangup(context.Background(), "test over")
}
