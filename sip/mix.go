package sip

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
	"github.com/pion/rtp"
)

// Three-party calls (issue 4: the agent brings 110, 119 or 120 in and
// stays). Each party's audio is decoded from G.711 to linear PCM on its
// receive goroutine into a short queue; one mixing goroutine per
// conference (not per packet) wakes every 20 ms and sends every party the
// sum of the others, encoded in that party's codec, with that party's own
// RTP identity (media.Session.SendFrame).

// mixQueue bounds the frames kept per party: enough to ride out jitter,
// little enough to add no audible delay (60 ms).
const mixQueue = 3

type mixParty struct {
	ep    endpoint
	sess  *media.Session
	codec prompts.Codec

	mu    sync.Mutex
	queue [][160]int16
}

func (p *mixParty) sink(_ *rtp.Header, payload []byte) {
	if len(payload) != 160 {
		return // 20 ms G.711 only
	}
	var f [160]int16
	if p.codec == prompts.PCMU {
		for i, b := range payload {
			f[i] = media.DecodeULaw(b)
		}
	} else {
		for i, b := range payload {
			f[i] = media.DecodeALaw(b)
		}
	}
	p.mu.Lock()
	if len(p.queue) >= mixQueue {
		p.queue = p.queue[1:]
	}
	p.queue = append(p.queue, f)
	p.mu.Unlock()
}

func (p *mixParty) pop() ([160]int16, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return [160]int16{}, false
	}
	f := p.queue[0]
	p.queue = p.queue[1:]
	return f, true
}

// Conference mixes the calls' audio (each hears the sum of the others)
// until one of them ends or ctx is done. Digits keyed meanwhile are
// dropped. It hangs up nobody: when it returns, the caller decides (e.g.
// Bridge the two that remain: the hand-over, where the agent leaves and
// the caller stays with 110). Bridge also starts a conference by itself
// when the agent keys an escalation code (bridge.go).
func (s *Server) Conference(ctx context.Context, calls ...ivr.Call) error {
	if len(calls) < 2 {
		return fmt.Errorf("sip: conference: %d calls, want 2 or more", len(calls))
	}
	eps := make([]endpoint, len(calls))
	for i, c := range calls {
		ep, err := asEndpoint(c)
		if err != nil {
			return err
		}
		if ep.mediaSession() == nil {
			return fmt.Errorf("sip: conference %s: %w", c.ID(), errNotAnswered)
		}
		eps[i] = ep
	}
	for _, ep := range eps {
		ep.setDigitTap(func(byte) {})
	}
	defer func() {
		for _, ep := range eps {
			ep.setDigitTap(nil)
		}
	}()
	stop := startMix(eps)
	defer stop()
	done := make(chan struct{}, len(calls))
	quit := make(chan struct{})
	defer close(quit)
	for _, c := range calls {
		go func() {
			select {
			case <-c.Done():
				done <- struct{}{}
			case <-quit:
			}
		}()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startMix starts mixing the endpoints' audio; stop ends it and returns
// once the mixing goroutine is gone and the sinks are removed.
func startMix(eps []endpoint) (stop func()) {
	parties := make([]*mixParty, len(eps))
	for i, ep := range eps {
		parties[i] = &mixParty{ep: ep, sess: ep.mediaSession(), codec: ep.codec()}
		parties[i].sess.SetSink(parties[i].sink)
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		mixLoop(parties, quit)
	}()
	return func() {
		close(quit)
		<-done
		for _, p := range parties {
			p.sess.SetSink(nil)
		}
	}
}

func mixLoop(parties []*mixParty, quit <-chan struct{}) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	frames := make([][160]int16, len(parties))
	have := make([]bool, len(parties))
	out := make([]byte, 160)
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		for i, p := range parties {
			frames[i], have[i] = p.pop()
		}
		for j, p := range parties {
			heard := false
			for i := range parties {
				heard = heard || (i != j && have[i])
			}
			if !heard {
				continue
			}
			for k := range 160 {
				var sum int32
				for i := range parties {
					if i != j && have[i] {
						sum += int32(frames[i][k])
					}
				}
				sum = min(max(sum, -32768), 32767)
				if p.codec == prompts.PCMU {
					out[k] = media.EncodeULaw(int16(sum))
				} else {
					out[k] = media.EncodeALaw(int16(sum))
				}
			}
			p.sess.SendFrame(out, false)
		}
	}
}
