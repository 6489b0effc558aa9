package ari

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cq12345/hotline/ivr"
)

// Outcomes of BridgeTo when the other party was not connected.
var (
	// ErrNoAnswer: the leg rang until the ring timeout (cause 19, "User
	// alerting, no answer"). Asterisk reports an unreachable registered
	// contact the same way (transcript agent-unreachable).
	ErrNoAnswer = errors.New("ari: no answer")
	// ErrBusy: the other party was busy (cause 17, SIP 486).
	ErrBusy = errors.New("ari: busy")
	// ErrUnavailable: the leg could not be placed or failed otherwise.
	ErrUnavailable = errors.New("ari: destination unavailable")
)

// BridgeOptions tune BridgeTo.
type BridgeOptions struct {
	// Role goes into the leg's Stasis args ("agent" or "trunk"), which tells
	// it from an inbound caller. Default "agent".
	Role string
	// RingTimeout is the originate timeout (default 30 s): after it
	// Asterisk destroys the leg with cause 19 and BridgeTo returns ErrNoAnswer.
	RingTimeout time.Duration
	// CallerID presented to the other party, e.g. `"hotline" <12345>`.
	// Never the citizen's number unless the routing policy says so.
	CallerID string
}

// BridgeTo connects c (a call of the ari plane) with a new leg to endpoint
// ("PJSIP/agent1", "PJSIP/12315@trunk12315"): it creates a mixing bridge,
// originates the endpoint into the application (appArgs "<role>,<call id>"),
// and when the leg enters Stasis (answered) puts both channels in the
// bridge. It returns when the conversation ends:
//
//   - the other party hung up: nil. Asterisk does NOT hang up the caller
//     (transcript bridge-to-agent): the caller is back in the IVR, and
//     the flow may go on (a survey, say).
//   - the caller hung up: ivr.ErrHungUp, after hanging up the leg, which
//     Asterisk does not do either (transcript transfer-12315).
//   - the leg was never connected: ErrNoAnswer, ErrBusy or ErrUnavailable.
//
// The bridge is destroyed in every case.
func BridgeTo(ctx context.Context, c ivr.Call, endpoint string, o BridgeOptions) error {
	ac, ok := c.(*call)
	if !ok {
		return fmt.Errorf("ari: bridge: %T is not an ari call", c)
	}
	return ac.bridge(ctx, endpoint, o)
}

// leg is a channel hotline originated; its events come through q.
type leg struct {
	id string
	q  chan Event
	// created is when the originate reply came (zero before): a resync
	// may only conclude "gone" from a channel list taken after it.
	created time.Time
}

func (l *leg) deliver(p *Plane, ev Event) {
	select {
	case l.q <- ev:
	default:
		p.log.Warn("ari: leg event queue full: event dropped", "channel", l.id, "type", ev.EventType())
	}
}

func (p *Plane) addLeg(id string) *leg {
	l := &leg{id: id, q: make(chan Event, p.cfg.QueueSize)}
	p.mu.Lock()
	if p.legs == nil {
		p.legs = map[string]*leg{}
	}
	p.legs[id] = l
	p.mu.Unlock()
	return l
}

func (p *Plane) removeLeg(id string) {
	p.mu.Lock()
	delete(p.legs, id)
	p.mu.Unlock()
}

func (p *Plane) legOf(id string) *leg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.legs[id]
}

func (c *call) bridge(ctx context.Context, endpoint string, o BridgeOptions) error {
	if c.ended() {
		return errHungUp("bridge", c.id)
	}
	if o.Role == "" {
		o.Role = "agent"
	}
	if o.RingTimeout <= 0 {
		o.RingTimeout = 30 * time.Second
	}
	cl := c.p.client
	br, err := cl.BridgesCreate(ctx, BridgesCreateParams{Type: "mixing", Name: "call-" + c.id})
	if err != nil {
		return fmt.Errorf("ari: bridge %s: create: %w", c.id, err)
	}
	// Cleanup runs on a context that outlives ctx: a cancelled flow must
	// not leave a bridge or a ringing agent behind.
	cleanupCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), c.p.cfg.ShutdownTimeout)
	}
	var once sync.Once
	destroy := func() {
		once.Do(func() {
			cctx, cancel := cleanupCtx()
			defer cancel()
			if err := cl.BridgesDestroy(cctx, br.ID); err != nil && !errors.Is(err, ErrNotFound) {
				c.p.log.Warn("ari: destroy bridge", "bridge", br.ID, "err", err)
			}
		})
	}
	defer destroy()
	legID := uuid.NewString()
	l := c.p.addLeg(legID)
	defer c.p.removeLeg(legID)
	hangupLeg := func() {
		cctx, cancel := cleanupCtx()
		defer cancel()
		if err := cl.ChannelsHangup(cctx, legID, ChannelsHangupParams{Reason: "normal"}); err != nil && !errors.Is(err, ErrNotFound) {
			c.p.log.Warn("ari: hang up leg", "channel", legID, "err", err)
		}
	}
	_, err = cl.ChannelsOriginate(ctx, ChannelsOriginateParams{
		Endpoint:  endpoint,
		App:       c.p.cfg.App,
		AppArgs:   o.Role + "," + c.id,
		CallerID:  o.CallerID,
		Timeout:   int((o.RingTimeout + time.Second - 1) / time.Second),
		ChannelID: legID,
	})
	if err != nil {
		return fmt.Errorf("ari: bridge %s: originate: %w: %w", c.id, ErrUnavailable, err)
	}
	c.p.mu.Lock()
	l.created = time.Now()
	c.p.mu.Unlock()
	// Asterisk ends a ringing leg at the originate timeout; this timer
	// only covers a ChannelDestroyed lost while the WebSocket was down.
	safety := time.NewTimer(o.RingTimeout + 5*time.Second)
	defer safety.Stop()
	bridged := false
	for {
		select {
		case ev := <-l.q:
			switch e := ev.(type) {
			case *StasisStart:
				if err := cl.BridgesAddChannel(ctx, br.ID, BridgesAddChannelParams{Channel: []string{c.id, legID}}); err != nil {
					hangupLeg()
					if errors.Is(err, ErrNotFound) || c.ended() {
						return errHungUp("bridge", c.id)
					}
					return fmt.Errorf("ari: bridge %s: add channels: %w", c.id, err)
				}
				bridged = true
				safety.Stop()
			case *ChannelDestroyed:
				if bridged {
					return nil
				}
				return legFailure(e.Cause, e.CauseTxt)
			case *ChannelHangupRequest, *StasisEnd:
				if bridged {
					// The other party hung up. The caller stays up, alone in
					// the bridge; destroying the bridge hands it back.
					return nil
				}
			}
		case <-c.done:
			hangupLeg()
			return errHungUp("bridge", c.id)
		case <-ctx.Done():
			hangupLeg()
			return ctx.Err()
		case <-safety.C:
			hangupLeg()
			return fmt.Errorf("ari: bridge %s: no event %v after ring timeout: %w", c.id, 5*time.Second, ErrNoAnswer)
		}
	}
}

// legFailure maps the hang-up cause of a leg that never answered (Q.850
// cause codes, as Asterisk reports them in ChannelDestroyed).
func legFailure(cause int, text string) error {
	switch cause {
	case 19, 18: // no answer, no user responding
		return fmt.Errorf("%w (cause %d %s)", ErrNoAnswer, cause, text)
	case 17: // user busy
		return fmt.Errorf("%w (cause %d %s)", ErrBusy, cause, text)
	}
	return fmt.Errorf("%w (cause %s %s)", ErrUnavailable, strconv.Itoa(cause), text)
}
