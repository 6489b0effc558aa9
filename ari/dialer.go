package ari

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/routing"
	"github.com/cq12345/hotline/telemetry"
)

// The ari plane is a routing.Dialer, as the sip plane is: the router rings
// agents, dials lines and bridges calls through it without knowing which
// plane carries them. Asterisk does the SIP and the media; hotline
// originates channels into its own Stasis application (appArgs
// "agent,<ref>" or "trunk,<ref>", which tells them from inbound callers,
// see isOriginatedLeg) and puts them in mixing bridges.
var _ routing.Dialer = (*Plane)(nil)

// Flagger receives the agent's flag code (*7) keyed during a bridge
// (article 26; the same contract as the sip plane's).
type Flagger interface {
	Flag(ctx context.Context, callID, agentExt string) error
}

// outbound is what a leg hotline originated has beyond an inbound call.
type outbound struct {
	agent    bool          // RingAgent: the agent's codes are read on it
	answered chan struct{} // closed at its StasisStart (it answered)
	once     sync.Once
	created  time.Time // the originate reply came (zero before)

	mu        sync.Mutex
	err       error // why it ended unanswered
	byHotline bool  // hotline hung it up (ring timeout, caller gone)
}

// markAnswered: the leg entered Stasis, which Asterisk does only once it
// answered (transcripts bridge-to-agent, transfer-12315).
func (c *call) markAnswered() {
	c.mu.Lock()
	c.answered = true
	c.mu.Unlock()
	c.out.once.Do(func() { close(c.out.answered) })
}

func (c *call) isAnswered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answered
}

// noteEnd records why an unanswered leg ended, from the Q.850 cause of the
// event that ended it (ChannelHangupRequest carries one for busy,
// ChannelDestroyed always).
func (c *call) noteEnd(ev Event) {
	if c.isAnswered() {
		return
	}
	cause, text := 0, ""
	switch e := ev.(type) {
	case *ChannelHangupRequest:
		if e.Cause != nil {
			cause = *e.Cause
		}
	case *ChannelDestroyed:
		cause, text = e.Cause, e.CauseTxt
	}
	o := c.out
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return
	}
	if cause == 0 {
		cause, text = 19, "ended before an answer"
	}
	o.err = legFailure(cause, text)
}

// Answered implements routing.Leg.
func (c *call) Answered() <-chan struct{} {
	if c.out == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return c.out.answered
}

// Err implements routing.Leg: why the leg ended without an answer.
func (c *call) Err() error {
	if c.out == nil {
		return nil
	}
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return c.out.err
}

// legFailure maps the hang-up cause of a leg that never answered (Q.850
// cause codes, as Asterisk reports them in ChannelDestroyed) to the ari
// error and the router's.
func legFailure(cause int, text string) error {
	switch cause {
	case 19, 18: // no answer, no user responding (also an unreachable contact: transcript agent-unreachable)
		return fmt.Errorf("%w: %w (cause %d %s)", ErrNoAnswer, routing.ErrNoAnswer, cause, text)
	case 17: // user busy
		return fmt.Errorf("%w: %w (cause %d %s)", ErrBusy, routing.ErrBusy, cause, text)
	case 21: // call rejected
		return fmt.Errorf("%w: %w (cause %d %s)", ErrUnavailable, routing.ErrRejected, cause, text)
	}
	return fmt.Errorf("%w: %w (cause %d %s)", ErrUnavailable, routing.ErrUnreachable, cause, text)
}

// originateSpec is one leg to place.
type originateSpec struct {
	endpoint string
	role     string // "agent" or "trunk"
	ref      string // the call it is for (appArgs), for the record
	callerID string
	timeout  time.Duration
	vars     map[string]string
	info     ivr.CallInfo
	agent    bool
}

// originate places a leg into the application and returns it ringing. The
// leg is registered before the request, because Asterisk may send its
// first events (Dial) before the reply.
func (p *Plane) originate(ctx context.Context, s originateSpec) (*call, error) {
	id := uuid.NewString()
	c := newCall(p, Channel{ID: id, State: "Down"}, p.cfg.QueueSize)
	c.info = s.info
	c.info.Plane = "ari"
	c.info.Started = time.Now()
	c.out = &outbound{agent: s.agent, answered: make(chan struct{})}
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		return nil, fmt.Errorf("ari: originate %s: %w: plane stopping", s.endpoint, routing.ErrUnreachable)
	}
	p.calls[id] = c
	p.pumps.Add(1)
	p.mu.Unlock()
	go func() { defer p.pumps.Done(); c.pump() }()
	secs := int((s.timeout + time.Second - 1) / time.Second)
	if secs <= 0 {
		secs = 30
	}
	_, err := p.client.ChannelsOriginate(ctx, ChannelsOriginateParams{
		Endpoint:  s.endpoint,
		App:       p.cfg.App,
		AppArgs:   s.role + "," + s.ref,
		CallerID:  s.callerID,
		Timeout:   secs,
		ChannelID: id,
		Variables: s.vars,
	})
	if err != nil {
		c.out.mu.Lock()
		c.out.err = fmt.Errorf("%w: %w: %w", ErrUnavailable, routing.ErrUnreachable, err)
		c.out.mu.Unlock()
		c.end("originate failed")
		return nil, fmt.Errorf("ari: originate %s: %w", s.endpoint, c.Err())
	}
	p.mu.Lock()
	c.out.created = time.Now()
	p.mu.Unlock()
	return c, nil
}

// RingAgent implements routing.Dialer: it originates the agent's endpoint
// (Config.AgentEndpoint, "PJSIP/{ext}" by default) into the application.
// Asterisk forks to every registered contact itself. The case number goes
// to the phone as the SIP header X-Hotline-Case (PJSIP_HEADER on the
// originated channel), with the queue and language.
func (p *Plane) RingAgent(ctx context.Context, r routing.AgentRing) (routing.Leg, error) {
	ext := r.Agent.Extension
	if ext == "" {
		return nil, fmt.Errorf("ari: ring agent %s: %w: no extension", r.Agent.ID, routing.ErrUnreachable)
	}
	vars := map[string]string{"PJSIP_HEADER(add,X-Hotline-Case)": r.CaseNumber}
	if r.Queue != "" {
		vars["PJSIP_HEADER(add,X-Hotline-Queue)"] = r.Queue
	}
	if r.Lang != "" {
		vars["PJSIP_HEADER(add,X-Hotline-Lang)"] = r.Lang
	}
	// Agents see the caller's number (DESIGN.md); a callback's agent leg
	// shows the hotline's.
	cid, ref := p.hotlineCallerID(), r.CaseNumber
	info := ivr.CallInfo{Dialled: ext, Caller: p.hotlineNumber()}
	if r.Caller != nil {
		if n := r.Caller.Info().Caller; n != "" {
			cid, info.Caller = n, n
		}
		ref = r.Caller.ID()
	}
	return p.originate(ctx, originateSpec{
		endpoint: strings.ReplaceAll(p.agentEndpoint(), "{ext}", ext),
		role:     "agent", ref: ref, callerID: cid, timeout: r.Timeout,
		vars: vars, info: info, agent: true,
	})
}

// DialOut implements routing.Dialer: it originates the number through the
// trunk endpoint (Config.TrunkEndpoint) to the destination's trunk URI
// (r.Trunk, else Config.Trunk), as PJSIP/<endpoint>/sip:<number>@<host>:
// Asterisk sends the INVITE to that URI with the endpoint's settings. No
// trunk URI is unreachable, as on the sip plane.
func (p *Plane) DialOut(ctx context.Context, r routing.Outbound) (routing.Leg, error) {
	what := "destination " + r.Destination
	if r.Destination == "" {
		what = "callback " + telemetry.MaskNumber(r.Number)
	}
	ep, err := p.trunkDialString(r.Number, r.Trunk)
	if err != nil {
		return nil, fmt.Errorf("ari: dial %s: %w", what, err)
	}
	cid := p.hotlineCallerID()
	info := ivr.CallInfo{Dialled: r.Number, Caller: p.hotlineNumber()}
	if r.PassCaller && r.Caller != nil {
		if n := r.Caller.Info().Caller; n != "" {
			cid, info.Caller = n, n
		}
	}
	ref := r.CaseNumber
	if r.Caller != nil {
		ref = r.Caller.ID()
	}
	var vars map[string]string
	if r.CaseNumber != "" {
		vars = map[string]string{"PJSIP_HEADER(add,X-Hotline-Case)": r.CaseNumber}
	}
	l, err := p.originate(ctx, originateSpec{endpoint: ep, role: "trunk", ref: ref, callerID: cid,
		timeout: r.Timeout, vars: vars, info: info})
	if err != nil {
		return nil, fmt.Errorf("ari: dial %s: %w", what, err)
	}
	return l, nil
}

// trunkDialString builds the PJSIP dial string for number through trunk.
func (p *Plane) trunkDialString(number, trunk string) (string, error) {
	if trunk == "" {
		trunk = p.cfg.Trunk
	}
	if trunk == "" {
		return "", fmt.Errorf("%w: no trunk", routing.ErrUnreachable)
	}
	u, err := url.Parse(trunk)
	if err != nil || (u.Scheme != "sip" && u.Scheme != "sips") || u.Opaque == "" {
		return "", fmt.Errorf("%w: trunk %q: want sip:host[:port]", routing.ErrUnreachable, trunk)
	}
	host := u.Opaque
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	return "PJSIP/" + p.trunkEndpoint() + "/" + u.Scheme + ":" + number + "@" + host, nil
}

func (p *Plane) agentEndpoint() string {
	if p.cfg.AgentEndpoint != "" {
		return p.cfg.AgentEndpoint
	}
	return "PJSIP/{ext}"
}

func (p *Plane) trunkEndpoint() string {
	if p.cfg.TrunkEndpoint != "" {
		return p.cfg.TrunkEndpoint
	}
	return "trunk"
}

func (p *Plane) hotlineNumber() string {
	if p.cfg.HotlineNumber != "" {
		return p.cfg.HotlineNumber
	}
	return routing.ServiceNumber
}

func (p *Plane) hotlineCallerID() string {
	return `"hotline" <` + p.hotlineNumber() + `>`
}

// asCall finds the ari call under hotlined's wrappers (Unwrap).
func asCall(c ivr.Call) (*call, error) {
	for range 8 {
		switch x := c.(type) {
		case *call:
			return x, nil
		case interface{ Unwrap() ivr.Call }:
			c = x.Unwrap()
			continue
		}
		break
	}
	return nil, fmt.Errorf("ari: %T is not a call of the ari plane", c)
}

// Bridge implements routing.Dialer: a and b (the caller and the agent or
// line) talk in a mixing bridge until one of them ends or ctx is done. It
// hangs up neither: Asterisk does not propagate a hang-up across a bridge
// either (transcripts bridge-to-agent, transfer-12315), and destroying the
// bridge leaves the one still there in the application, where the flow
// goes on (the survey).
//
// Asterisk passes DTMF between bridged channels itself; ARI also reports
// each digit (ChannelDtmfReceived), and the agent's are read here for the
// codes the sip plane knows: *7 flags the caller (Config.Flagger); *1, *2,
// *3 bring 110, 119, 120 into the bridge (Config.EmergencyCodes, checked by
// Config.Destinations), a three-party call Asterisk mixes. If the agent
// then hangs up, caller and emergency line stay together (hand-over) until
// one of them ends; the emergency leg is hung up when Bridge returns.
// Unlike the sip plane, the caller hears the code's tones: Asterisk has
// passed them on before hotline sees them.
func (p *Plane) Bridge(ctx context.Context, a, b ivr.Call) error {
	ca, err := asCall(a)
	if err != nil {
		return err
	}
	cb, err := asCall(b)
	if err != nil {
		return err
	}
	if ca.ended() || cb.ended() {
		return nil
	}
	// The agent's codes are read on the agent's leg, whichever side it is.
	agent := cb
	if !(cb.out != nil && cb.out.agent) {
		agent = nil
		if ca.out != nil && ca.out.agent {
			agent = ca
		}
	}
	cl := p.client
	br, err := cl.BridgesCreate(ctx, BridgesCreateParams{Type: "mixing", Name: "call-" + ca.id})
	if err != nil {
		return fmt.Errorf("ari: bridge %s/%s: create: %w", ca.id, cb.id, err)
	}
	cleanup := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ShutdownTimeout)
	}
	var third *call
	var bg sync.WaitGroup
	defer func() {
		cctx, cancel := cleanup()
		defer cancel()
		if third != nil {
			_ = third.Hangup(cctx, "bridge over")
		}
		if err := cl.BridgesDestroy(cctx, br.ID); err != nil && !errors.Is(err, ErrNotFound) {
			p.log.Warn("ari: destroy bridge", "bridge", br.ID, "err", err)
		}
		bg.Wait()
		// Digits keyed while bridged reached the other party through
		// Asterisk; they are not answers to the next prompt.
		ca.FlushDigits()
		cb.FlushDigits()
	}()
	if err := cl.BridgesAddChannel(ctx, br.ID, BridgesAddChannelParams{Channel: []string{ca.id, cb.id}}); err != nil {
		if errors.Is(err, ErrNotFound) || ca.ended() || cb.ended() {
			return nil
		}
		return fmt.Errorf("ari: bridge %s/%s: add channels: %w", ca.id, cb.id, err)
	}
	ca.FlushDigits()
	cb.FlushDigits()
	p.log.Debug("ari: bridge up", "a", ca.id, "b", cb.id, "bridge", br.ID)

	var digits <-chan struct{}
	if agent != nil {
		digits = agent.digitSig
	}
	star := false
	aDone, bDone := ca.done, cb.done
	var thirdAnswered, thirdDone <-chan struct{}
	agentGone := false
	for {
		select {
		case <-aDone:
			return nil
		case <-bDone:
			if third == nil || thirdAnswered != nil {
				return nil
			}
			// Hand-over: the agent left a three-party call; the caller and
			// the emergency line stay in the bridge.
			p.log.Info("ari: agent left, caller stays with the emergency line", "call", ca.id)
			bDone, digits, agentGone = nil, nil, true
		case <-ctx.Done():
			return ctx.Err()
		case <-thirdAnswered:
			thirdAnswered = nil
			if err := cl.BridgesAddChannel(ctx, br.ID, BridgesAddChannelParams{Channel: []string{third.id}}); err != nil {
				p.log.Warn("ari: emergency line not added to the bridge", "call", ca.id, "err", err)
				continue
			}
			p.log.Info("ari: three-party call", "call", ca.id, "with", third.info.Dialled)
		case <-thirdDone:
			if agentGone {
				return nil
			}
			third, thirdAnswered, thirdDone = nil, nil, nil
		case <-digits:
			for {
				d, ok := agent.popDigit()
				if !ok {
					break
				}
				if !star {
					star = d == '*'
					continue
				}
				star = false
				switch {
				case d == '7':
					bg.Add(1)
					go func() {
						defer bg.Done()
						p.flag(ctx, ca, agent)
					}()
				case p.emergencyCodes()[d] != "" && third == nil:
					id := p.emergencyCodes()[d]
					l, err := p.dialEmergency(ctx, id, a)
					if err != nil {
						p.log.Warn("ari: emergency line not dialled", "call", ca.id, "err", err)
						continue
					}
					third, thirdAnswered, thirdDone = l, l.Answered(), l.done
				}
			}
		}
	}
}

// cancelled records that hotline hung up a leg still ringing (the
// router's ring timeout, the caller gone): no answer, as on the sip plane.
func (c *call) cancelled(reason string) {
	if c.out == nil || c.isAnswered() {
		return
	}
	c.out.mu.Lock()
	if c.out.err == nil {
		c.out.err = fmt.Errorf("%w: %w: cancelled (%s)", ErrNoAnswer, routing.ErrNoAnswer, reason)
	}
	c.out.mu.Unlock()
}

// flag reports the agent's *7 on the caller.
func (p *Plane) flag(ctx context.Context, caller, agent *call) {
	if p.cfg.Flagger == nil {
		p.log.Info("ari: agent flag code keyed, no flagger configured", "call", caller.id)
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := p.cfg.Flagger.Flag(fctx, caller.id, agent.info.Dialled); err != nil {
		p.log.Warn("ari: agent flag failed", "call", caller.id, "err", err)
		return
	}
	p.log.Info("ari: agent flagged the caller", "call", caller.id, "agent", agent.info.Dialled)
}

// emergencyCodes maps the digit after '*' to a destination id.
func (p *Plane) emergencyCodes() map[byte]string {
	if p.cfg.EmergencyCodes != nil {
		return p.cfg.EmergencyCodes
	}
	return routing.DefaultEmergencyCodes()
}

// dialEmergency calls a configured destination for a three-party call.
func (p *Plane) dialEmergency(ctx context.Context, id string, caller ivr.Call) (*call, error) {
	r, err := routing.EmergencyOutbound(p.cfg.Destinations, id, caller)
	if err != nil {
		return nil, err
	}
	l, err := p.DialOut(ctx, r)
	if err != nil {
		return nil, err
	}
	return l.(*call), nil
}
