package sip

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/routing"
)

// Bridge (B2BUA media relay): RTP received on one call's session is sent
// on the other's with that session's own SSRC, sequence numbers and
// timestamps (media.Session.RelayTo, on the receive goroutine, no pacer
// delay); DTMF is regenerated as RFC 4733 on the other leg; a held leg
// gets nothing. The agent's flag code *7 (leg b) is caught, not passed on,
// and reported to Config.Flagger.

// Flagger receives an agent's flag of the caller (abuse.Service.Flag
// through a small adapter: see FlaggerFunc).
type Flagger interface {
	Flag(ctx context.Context, callID, agentExt string) error
}

// FlaggerFunc adapts a function to Flagger.
type FlaggerFunc func(ctx context.Context, callID, agentExt string) error

// Flag calls f.
func (f FlaggerFunc) Flag(ctx context.Context, callID, agentExt string) error {
	return f(ctx, callID, agentExt)
}

// flagHold is how long a '*' from the agent is held back waiting for the
// next digit of a code.
const flagHold = 1500 * time.Millisecond

// endpoint is what the bridge and the mixer need from a call of this plane
// (an inbound *call or an outbound *leg).
type endpoint interface {
	ivr.Call
	mediaSession() *media.Session // nil before the answer
	codec() prompts.Codec
	setDigitTap(func(byte)) // nil: digits are buffered again
}

// asEndpoint finds the plane's call under wrappers (hotlined wraps calls
// to attach their case): an Unwrap() ivr.Call method, or an embedded
// ivr.Call field named Call.
func asEndpoint(c ivr.Call) (endpoint, error) {
	for range 8 {
		switch x := c.(type) {
		case endpoint:
			return x, nil
		case interface{ Unwrap() ivr.Call }:
			c = x.Unwrap()
			continue
		}
		v := reflect.ValueOf(c)
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			break
		}
		f := v.FieldByName("Call")
		if !f.IsValid() || !f.CanInterface() {
			break
		}
		inner, ok := f.Interface().(ivr.Call)
		if !ok || inner == nil {
			break
		}
		c = inner
	}
	return nil, fmt.Errorf("sip: %T is not a call of the sip plane", c)
}

func (c *call) mediaSession() *media.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sa, ok := c.sess.(sessionAdapter); ok {
		return sa.Session
	}
	return nil
}

func (c *call) codec() prompts.Codec {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.offer != nil {
		return c.offer.Codec
	}
	return prompts.PCMA
}

func (c *call) setDigitTap(f func(byte)) {
	c.mu.Lock()
	c.tap = f
	c.mu.Unlock()
}

// xlatFor is the G.711 translation from one leg's codec to another's.
func xlatFor(from, to prompts.Codec) *[256]byte {
	switch {
	case from == to:
		return nil
	case from == prompts.PCMA:
		return &media.ALawToULaw
	default:
		return &media.ULawToALaw
	}
}

// errNotAnswered: a call given to Bridge or Conference has no media yet.
var errNotAnswered = errors.New("sip: call not answered")

// Bridge implements routing.Dialer: audio and DTMF both ways between a
// (the caller) and b (the agent or the destination) until one ends or ctx
// is done. It hangs up neither. It returns nil when a call ended and
// ctx.Err() when ctx ended first.
//
// Codes keyed on b (the agent) are caught, never passed to the caller:
//   - *7 flags the caller (Config.Flagger);
//   - *1, *2, *3 bring in 110, 119, 120 (Config.EmergencyCodes: digit to
//     destination id, checked by Config.Destinations): the three talk
//     together (mixer). If the agent then hangs up, the caller stays with
//     the emergency line (hand-over) and Bridge returns only when one of
//     those two ends; the emergency leg is hung up when Bridge returns.
//     If the emergency line hangs up first, caller and agent are bridged
//     again.
func (s *Server) Bridge(ctx context.Context, a, b ivr.Call) error {
	ea, err := asEndpoint(a)
	if err != nil {
		return err
	}
	eb, err := asEndpoint(b)
	if err != nil {
		return err
	}
	// The agent's codes are read on the agent's leg, whichever side it is
	// (a callback bridges the agent's leg first, then the citizen's); with
	// no agent leg (a transfer), digits pass through untouched.
	agent := isAgent(eb)
	if !agent && isAgent(ea) {
		a, b, ea, eb, agent = b, a, eb, ea, true
	}
	sa, sb := ea.mediaSession(), eb.mediaSession()
	if sa == nil || sb == nil {
		return fmt.Errorf("sip: bridge %s/%s: %w", a.ID(), b.ID(), errNotAnswered)
	}
	setPeer(ea, b)
	setPeer(eb, a)
	defer setPeer(ea, nil)
	defer setPeer(eb, nil)
	var bg sync.WaitGroup
	bgctx, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	escalate := make(chan string, 1)
	fd := &flagDetector{
		send:  func(d byte) { sa.SendDTMF(d, legDTMFDuration) },
		codes: s.emergencyCodes(),
		onCode: func(id string) {
			select {
			case escalate <- id:
			default:
			}
		},
		onFlag: func() {
			if s.cfg.Flagger == nil {
				s.log.Info("agent flag code keyed, no flagger configured", "call_id", a.ID())
				return
			}
			bg.Add(1)
			go func() {
				defer bg.Done()
				c, cancel := context.WithTimeout(bgctx, 10*time.Second)
				defer cancel()
				if err := s.cfg.Flagger.Flag(c, a.ID(), b.Info().Dialled); err != nil {
					s.log.Warn("agent flag failed", "call_id", a.ID(), "error", err)
				} else {
					s.log.Info("agent flagged the caller", "call_id", a.ID(), "agent", b.Info().Dialled)
				}
			}()
		},
	}
	relay := func(x, y endpoint) {
		sx, sy := x.mediaSession(), y.mediaSession()
		sx.RelayTo(sy, xlatFor(x.codec(), y.codec()))
		sy.RelayTo(sx, xlatFor(y.codec(), x.codec()))
	}
	unrelay := func(eps ...endpoint) {
		for _, e := range eps {
			if ms := e.mediaSession(); ms != nil {
				ms.RelayTo(nil, nil)
			}
		}
	}
	relay(ea, eb)
	ea.setDigitTap(func(d byte) { sb.SendDTMF(d, legDTMFDuration) })
	if agent {
		eb.setDigitTap(fd.digit)
	} else {
		eb.setDigitTap(fd.send)
	}
	s.log.Debug("bridge up", "a", a.ID(), "b", b.ID(), "agent_codes", agent)

	var third *leg     // the emergency line, once dialled
	var stopMix func() // set while the three are mixed
	agentGone := false // hand-over: the agent left, the caller stays with third
	var thirdAnswered, thirdDone <-chan struct{}
	var bDone = b.Done()
	// A REFER from either party's phone (refer.go) ends the bridge with a
	// transfer request for the router.
	referA, referB := refersOf(ea), refersOf(eb)
	defer func() {
		if stopMix != nil {
			stopMix()
		}
		eps := []endpoint{ea, eb}
		if third != nil {
			eps = append(eps, third)
		}
		unrelay(eps...)
		ea.setDigitTap(nil)
		eb.setDigitTap(nil)
		fd.stop()
		if third != nil {
			hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = third.Hangup(hctx, "bridge over")
			cancel()
		}
		bg.Wait()
		cancelBG()
	}()
	for {
		select {
		case <-a.Done():
			return nil
		case <-bDone:
			if third == nil || stopMix == nil {
				return nil
			}
			// Hand-over: the agent left a three-party call.
			stopMix()
			stopMix = nil
			relay(ea, third)
			ea.setDigitTap(func(d byte) { third.sess.SendDTMF(d, legDTMFDuration) })
			agentGone, bDone = true, nil
			s.log.Info("agent left, caller stays with the emergency line", "call_id", a.ID())
		case <-ctx.Done():
			return ctx.Err()
		case id := <-referA:
			return &routing.TransferRequest{Destination: id, By: whatOf(ea)}
		case id := <-referB:
			return &routing.TransferRequest{Destination: id, By: whatOf(eb)}
		case id := <-escalate:
			if third != nil {
				continue
			}
			l, err := s.dialEmergency(ctx, id, a)
			if err != nil {
				s.log.Warn("emergency line not dialled", "destination", id, "error", err)
				continue
			}
			third, thirdAnswered, thirdDone = l, l.Answered(), l.Done()
		case <-thirdAnswered:
			thirdAnswered = nil
			unrelay(ea, eb)
			stopMix = startMix([]endpoint{ea, eb, third})
			ea.setDigitTap(func(byte) {})
			s.log.Info("three-party call", "call_id", a.ID(), "with", third.what)
		case <-thirdDone:
			if agentGone {
				return nil
			}
			if stopMix != nil {
				stopMix()
				stopMix = nil
			}
			unrelay(third)
			third, thirdAnswered, thirdDone = nil, nil, nil
			relay(ea, eb)
			ea.setDigitTap(func(d byte) { sb.SendDTMF(d, legDTMFDuration) })
		}
	}
}

// refersOf is the REFER channel of an outbound leg (nil otherwise: a
// REFER from the inbound caller's phone is not a bridge matter).
func refersOf(e endpoint) <-chan string {
	if l, ok := e.(*leg); ok {
		return l.refers
	}
	return nil
}

func whatOf(e endpoint) string {
	if l, ok := e.(*leg); ok {
		return l.what
	}
	return "caller"
}

// isAgent reports whether e is an agent's leg (RingAgent).
func isAgent(e endpoint) bool {
	l, ok := e.(*leg)
	return ok && l.agent
}

// emergencyCodes maps the digit after '*' to a destination id.
func (s *Server) emergencyCodes() map[byte]string {
	if s.cfg.EmergencyCodes != nil {
		return s.cfg.EmergencyCodes
	}
	return routing.DefaultEmergencyCodes()
}

// dialEmergency calls a configured destination for a three-party call.
func (s *Server) dialEmergency(ctx context.Context, id string, caller ivr.Call) (*leg, error) {
	r, err := routing.EmergencyOutbound(s.cfg.Destinations, id, caller)
	if err != nil {
		return nil, err
	}
	l, err := s.DialOut(ctx, r)
	if err != nil {
		return nil, err
	}
	return l.(*leg), nil
}

// setPeer tells an outbound leg which call it is bridged to.
func setPeer(e endpoint, peer ivr.Call) {
	if l, ok := e.(*leg); ok {
		l.mu.Lock()
		l.peer = peer
		l.mu.Unlock()
	}
}

// flagDetector passes the agent's digits on, except the flag code *7: a
// '*' waits up to flagHold for the next digit.
type flagDetector struct {
	send   func(byte)
	onFlag func()
	codes  map[byte]string // digit after '*' -> destination id
	onCode func(id string)

	mu      sync.Mutex
	star    bool
	gen     int
	timer   *time.Timer
	stopped bool
}

func (f *flagDetector) digit(d byte) {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return
	}
	if f.star {
		f.star = false
		f.timer.Stop()
		f.mu.Unlock()
		if d == '7' {
			f.onFlag()
			return
		}
		if id, ok := f.codes[d]; ok && f.onCode != nil {
			f.onCode(id)
			return
		}
		f.send('*')
		f.digit(d) // d may itself be a '*'
		return
	}
	if d == '*' {
		f.star = true
		f.gen++
		gen := f.gen
		f.timer = time.AfterFunc(flagHold, func() {
			f.mu.Lock()
			release := f.star && f.gen == gen && !f.stopped
			if release {
				f.star = false
			}
			f.mu.Unlock()
			if release {
				f.send('*')
			}
		})
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.send(d)
}

func (f *flagDetector) stop() {
	f.mu.Lock()
	f.stopped = true
	if f.timer != nil {
		f.timer.Stop()
	}
	f.mu.Unlock()
}
