package sip

import (
	"context"
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
