package ari

import (
	"context"
	"errors"
	"fmt"
	"time"

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
// ("PJSIP/agent1", "PJSIP/trunk/sip:12315@198.51.100.20"): it originates
// the endpoint into the application (appArgs "<role>,<call id>"), and when
// the leg enters Stasis (answered) bridges the two (Plane.Bridge). It
// returns when the conversation ends:
//
//   - the other party hung up: nil. Asterisk does NOT hang up the caller
//     (transcript bridge-to-agent): the caller is back in the IVR, and
//     the flow may go on (a survey, say).
//   - the caller hung up: ivr.ErrHungUp, after hanging up the leg, which
//     Asterisk does not do either (transcript transfer-12315).
//   - the leg was never connected: ErrNoAnswer, ErrBusy or ErrUnavailable.
//
// It is the router's RingAgent or DialOut, then Bridge, in one call, for
// a handler that needs no ACD.
func BridgeTo(ctx context.Context, c ivr.Call, endpoint string, o BridgeOptions) error {
	ac, err := asCall(c)
	if err != nil {
		return fmt.Errorf("ari: bridge: %w", err)
	}
	if ac.ended() {
		return errHungUp("bridge", ac.id)
	}
	if o.Role == "" {
		o.Role = "agent"
	}
	if o.RingTimeout <= 0 {
		o.RingTimeout = 30 * time.Second
	}
	p := ac.p
	l, err := p.originate(ctx, originateSpec{endpoint: endpoint, role: o.Role, ref: ac.id, callerID: o.CallerID,
		timeout: o.RingTimeout, info: ivr.CallInfo{Dialled: endpoint}, agent: o.Role == "agent"})
	if err != nil {
		return fmt.Errorf("ari: bridge %s: %w", ac.id, err)
	}
	// Hanging up runs on a context that outlives ctx: a cancelled flow must
	// not leave a ringing agent behind.
	hangupLeg := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ShutdownTimeout)
		defer cancel()
		if err := l.Hangup(cctx, "bridge over"); err != nil {
			p.log.Warn("ari: hang up leg", "channel", l.id, "err", err)
		}
	}
	// Asterisk ends a ringing leg at the originate timeout; this timer
	// only covers a ChannelDestroyed lost while the WebSocket was down and
	// not found by the resync.
	safety := time.NewTimer(o.RingTimeout + 5*time.Second)
	defer safety.Stop()
	select {
	case <-l.out.answered:
	case <-l.done:
		if !l.isAnswered() {
			if err := l.Err(); err != nil {
				return fmt.Errorf("ari: bridge %s: %w", ac.id, err)
			}
			return fmt.Errorf("ari: bridge %s: %w", ac.id, ErrUnavailable)
		}
	case <-ac.done:
		hangupLeg()
		return errHungUp("bridge", ac.id)
	case <-ctx.Done():
		hangupLeg()
		return ctx.Err()
	case <-safety.C:
		hangupLeg()
		return fmt.Errorf("ari: bridge %s: no event %v after ring timeout: %w", ac.id, 5*time.Second, ErrNoAnswer)
	}
	err = p.Bridge(ctx, ac, l)
	if !l.ended() {
		hangupLeg()
	}
	if ac.ended() {
		return errHungUp("bridge", ac.id)
	}
	return err
}
