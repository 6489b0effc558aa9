package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/routing"
	"github.com/cq12345/hotline/telemetry"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Outbound legs (UAC dialogs) of the B2BUA: the agent's phone (RingAgent:
// one INVITE per registered contact, first 200 wins) and numbers behind a
// trunk (DialOut). A leg is an ivr.Call once answered.

var _ routing.Dialer = (*Server)(nil)
var _ routing.Leg = (*leg)(nil)

// legDTMFDuration is the length of a digit regenerated on a leg.
const legDTMFDuration = 120 * time.Millisecond

type leg struct {
	srv   *Server
	info  ivr.CallInfo
	log   *slog.Logger
	what  string // "agent 1001", "destination 12315"
	span  trace.Span
	agent bool // rung by RingAgent: its keys are read for codes (bridge.go)

	sess  *media.Session
	idle  *idleGuard      // RTP inactivity vs. the agent phone's hold
	ring  context.Context // cancelled: CANCEL every fork still ringing
	stopR context.CancelCauseFunc

	mu        sync.Mutex
	id        string // the winning fork's Call-ID (the first fork's before)
	local     localSDP
	forks     []*fork
	pending   int
	dlg       *sipgo.DialogClientSession // the winner
	offer     *Offer                     // the far end's SDP
	answered  bool
	early     bool // a fork's 183/180 carried SDP: its early media is heard (RFC 3960)
	ended     bool
	hangingUp bool
	err       error
	best      error // best failure so far among the forks
	digits    []byte
	tap       func(byte)
	bargeIn   bool
	peer      ivr.Call // the call bridged to this leg (REFER from the leg)
	// refers carries a REFER's destination id from refer.go to the
	// Bridge the leg is in (cap 1: one transfer at a time).
	refers chan string

	digitSignal chan struct{}
	answeredCh  chan struct{}
	earlyCh     chan struct{} // closed with early
	done        chan struct{}
}

type fork struct {
	dlg    *sipgo.DialogClientSession
	callID string
	cancel context.CancelFunc
	got1xx bool
	auth   sipgo.AnswerOptions // digest credentials for a challenge (trunks only)
	// challenged: the far end asked for digest credentials (401/407).
	challenged bool
}

// RingAgent implements routing.Dialer: an INVITE to every contact the
// registrar holds for the agent's extension, with X-Hotline-Case.
func (s *Server) RingAgent(ctx context.Context, r routing.AgentRing) (routing.Leg, error) {
	ext := r.Agent.Extension
	contacts := s.Contacts(ext)
	if len(contacts) == 0 {
		return nil, fmt.Errorf("sip: ring agent %s: %w: not registered", ext, routing.ErrUnreachable)
	}
	hdrs := []sip.Header{sip.NewHeader("X-Hotline-Case", r.CaseNumber)}
	if r.Queue != "" {
		hdrs = append(hdrs, sip.NewHeader("X-Hotline-Queue", r.Queue))
	}
	if r.Lang != "" {
		hdrs = append(hdrs, sip.NewHeader("X-Hotline-Lang", r.Lang))
	}
	// Agents see full numbers (DESIGN.md): the caller's number is the From
	// display of the agent's INVITE.
	from := ""
	if r.Caller != nil {
		from = r.Caller.Info().Caller
	}
	uris := make([]sip.Uri, len(contacts))
	for i, b := range contacts {
		uris[i] = b.Contact
	}
	l, err := s.dial(ctx, "agent "+ext, ext, from, uris, hdrs, r.Timeout, sipgo.AnswerOptions{})
	if err != nil {
		return nil, err
	}
	l.agent = true
	return l, nil
}

// DialOut implements routing.Dialer: an INVITE to r.Number through r.Trunk
// (or Config.Trunk).
func (s *Server) DialOut(ctx context.Context, r routing.Outbound) (routing.Leg, error) {
	trunk := r.Trunk
	if trunk == "" {
		trunk = s.cfg.Trunk
	}
	what := "destination " + r.Destination
	if r.Destination == "" {
		what = "callback " + telemetry.MaskNumber(r.Number)
	}
	if trunk == "" {
		return nil, fmt.Errorf("sip: dial %s: %w: no trunk", what, routing.ErrUnreachable)
	}
	var uri sip.Uri
	if err := sip.ParseUri(trunk, &uri); err != nil {
		return nil, fmt.Errorf("sip: dial %s: %w: trunk %q: %v", what, routing.ErrUnreachable, trunk, err)
	}
	uri.User = r.Number
	from := ""
	if r.PassCaller && r.Caller != nil {
		from = r.Caller.Info().Caller
	}
	var hdrs []sip.Header
	if r.CaseNumber != "" {
		hdrs = append(hdrs, sip.NewHeader("X-Hotline-Case", r.CaseNumber))
	}
	auth := sipgo.AnswerOptions{Username: s.cfg.TrunkUser, Password: s.cfg.TrunkPassword}
	return s.dial(ctx, what, r.Number, from, []sip.Uri{uri}, hdrs, r.Timeout, auth)
}

// dial sends one INVITE per target (parallel forking) sharing one RTP
// session and one SDP offer, and returns the ringing leg.
// dial sends an INVITE to every target (forks); auth carries the digest
// credentials to answer a challenge with (none for agents' phones).
func (s *Server) dial(ctx context.Context, what, dialled, fromUser string, targets []sip.Uri, hdrs []sip.Header, timeout time.Duration, auth sipgo.AnswerOptions) (*leg, error) {
	// While draining, calls in progress may still reach agents and lines;
	// only a closed plane dials nothing.
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || s.dua == nil {
		return nil, fmt.Errorf("sip: dial %s: %w: plane not running", what, routing.ErrUnreachable)
	}
	l := &leg{
		srv:         s,
		what:        what,
		info:        ivr.CallInfo{Caller: fromUser, Dialled: dialled, Plane: "sip", Started: time.Now()},
		local:       localSDP{sessID: randomUint64(), version: 1, addr: s.cfg.MediaAddr},
		digitSignal: make(chan struct{}, 1),
		answeredCh:  make(chan struct{}),
		earlyCh:     make(chan struct{}),
		refers:      make(chan string, 1),
		done:        make(chan struct{}),
	}
	l.log = s.log.With("leg", what)
	_, l.span = s.tracer.Start(context.WithoutCancel(ctx), "leg", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("leg.what", what), attribute.Int("leg.targets", len(targets))))
	sess, err := s.cfg.Engine.NewSession(media.SessionConfig{
		PayloadType: uint8(prompts.PCMA), DTMFPayloadType: dtmfOfferPT,
		OnDigit: func(d byte) { l.digit(d) }, OnInactive: l.onInactive,
		// The far end's address comes with its SDP answer (SetRemote):
		// ringing legs share pool sockets instead of one socket each.
		AwaitRemote: true,
	})
	if err != nil {
		l.span.End()
		return nil, fmt.Errorf("sip: dial %s: %w", what, err)
	}
	l.sess = sess
	l.mu.Lock() // OnInactive may read it from a pacer
	l.idle = newIdleGuard(func() time.Time { return sess.Stats().LastArrival }, l.hangupIdle)
	l.mu.Unlock()
	l.local.port = sess.LocalAddr().Port()
	body := l.local.offer(SendRecv)
	ring, stopC := context.WithCancelCause(context.Background())
	stopT := context.CancelFunc(func() {})
	if timeout > 0 {
		// The router hangs the leg up at its ring timeout; this is the
		// backstop when nobody does.
		ring, stopT = context.WithTimeoutCause(ring, timeout+2*time.Second, routing.ErrNoAnswer)
	}
	stop := func(err error) { stopC(err); stopT() }
	l.ring, l.stopR = ring, stop
	fromName := s.cfg.HotlineNumber
	if fromName == "" {
		fromName = routing.ServiceNumber
	}
	if fromUser == "" {
		fromUser = fromName
	}
	var firstErr error
	launched := 0
	for _, t := range targets {
		callID := uuid.NewString()
		req := sip.NewRequest(sip.INVITE, t)
		transport := "UDP"
		if tr, ok := t.UriParams.Get("transport"); ok {
			transport = strings.ToUpper(tr)
			req.SetTransport(transport)
		}
		// Our Contact names the transport, so that the far end's
		// in-dialog requests (BYE, re-INVITE) come back the same way.
		req.AppendHeader(s.contact(transport))
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		f := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: fromUser, Host: s.addr.Addr().String(), Port: int(s.addr.Port())}, Params: sip.NewParams()}
		f.Params.Add("tag", sip.GenerateTagN(16))
		req.AppendHeader(f)
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: t.Scheme, User: dialled, Host: t.Host, Port: t.Port}, Params: sip.NewParams()})
		cid := sip.CallIDHeader(callID)
		req.AppendHeader(&cid)
		req.AppendHeader(sip.NewHeader("Allow", allowedMethods))
		for _, h := range hdrs {
			req.AppendHeader(h)
		}
		fctx, cancel := context.WithCancel(ring)
		s.mu.Lock()
		if s.legs == nil {
			s.legs = map[string]*leg{}
		}
		s.legs[callID] = l
		s.callWG.Add(1)
		s.mu.Unlock()
		dlg, err := s.dua.WriteInvite(ctx, req)
		if err != nil {
			cancel()
			s.forgetLeg(callID)
			s.callWG.Done()
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		fk := &fork{dlg: dlg, callID: callID, cancel: cancel, auth: auth}
		l.mu.Lock()
		if l.id == "" {
			l.id = callID
		}
		l.forks = append(l.forks, fk)
		l.pending++
		l.mu.Unlock()
		launched++
		go l.wait(fctx, fk)
	}
	// Counted here, not from l.pending: a fork that is answered (or fails)
	// at once may already have left pending.
	if launched == 0 {
		stop(nil)
		sess.Close()
		l.span.SetAttributes(attribute.String("leg.outcome", "unreachable"))
		l.span.End()
		return nil, fmt.Errorf("sip: dial %s: %w: %v", what, routing.ErrUnreachable, firstErr)
	}
	l.log.Info("leg ringing", "forks", launched)
	return l, nil
}

func (s *Server) forgetLeg(callID string) {
	s.mu.Lock()
	delete(s.legs, callID)
	s.mu.Unlock()
}

// wait runs one fork until its final answer.
func (l *leg) wait(ctx context.Context, f *fork) {
	defer l.srv.callWG.Done()
	err := f.dlg.WaitAnswer(ctx, sipgo.AnswerOptions{Username: f.auth.Username, Password: f.auth.Password, OnResponse: func(res *sip.Response) error {
		if res.StatusCode == 401 || res.StatusCode == 407 {
			l.mu.Lock()
			f.challenged = true
			l.mu.Unlock()
		}
		if res.IsProvisional() {
			l.mu.Lock()
			f.got1xx = true
			l.mu.Unlock()
			if len(res.Body()) > 0 && res.StatusCode > 100 {
				l.earlyMedia(f, res)
			}
		}
		return nil
	}})
	res := f.dlg.InviteResponse
	if err != nil && res != nil && res.IsSuccess() {
		// A 200 that crossed our CANCEL: the far end answered, so
		// acknowledge and end it (RFC 3261 section 9.1).
		_ = f.dlg.Ack(context.Background())
		l.byeFork(f)
		l.forkFailed(f, ivr.ErrHungUp)
		return
	}
	if err != nil {
		l.forkFailed(f, l.classify(ctx, f, err))
		return
	}
	l.forkAnswered(f)
}

// classify maps a fork's failure to routing's reasons.
func (l *leg) classify(ctx context.Context, f *fork, err error) error {
	var de *sipgo.ErrDialogResponse
	if errors.As(err, &de) && de.Res != nil {
		code := int(de.Res.StatusCode)
		wrap := func(e error) error { return fmt.Errorf("%w: %d %s", e, code, de.Res.Reason) }
		switch {
		case code == 486 || code == 600:
			return wrap(routing.ErrBusy)
		case code == 408 || code == 480 || code == 487:
			return wrap(routing.ErrNoAnswer)
		case code == 404 || code == 604:
			return wrap(routing.ErrUnreachable)
		case code == 401 || code == 407 || code == 403:
			l.mu.Lock()
			challenged := f.challenged
			l.mu.Unlock()
			switch {
			case challenged && f.auth.Password == "":
				l.log.Warn("the trunk asks for digest authentication: set --trunk-user and --trunk-password", "status", code)
			case challenged:
				// Challenged, answered, and refused (403, or a new
				// challenge after sipgo's retries).
				l.log.Warn("the trunk refused the trunk credentials", "status", code, "user", f.auth.Username)
			}
			return wrap(routing.ErrRejected)
		default:
			return wrap(routing.ErrRejected)
		}
	}
	if ctx.Err() != nil {
		if c := context.Cause(ctx); errors.Is(c, routing.ErrNoAnswer) {
			return fmt.Errorf("%w: ring timeout", routing.ErrNoAnswer)
		}
		return fmt.Errorf("%w: cancelled", routing.ErrNoAnswer)
	}
	l.mu.Lock()
	rang := f.got1xx
	l.mu.Unlock()
	if rang {
		return fmt.Errorf("%w: %v", routing.ErrNoAnswer, err)
	}
	return fmt.Errorf("%w: %v", routing.ErrUnreachable, err)
}

// reasonName names why a leg was not answered, for its span.
func reasonName(err error) string {
	switch {
	case errors.Is(err, routing.ErrBusy):
		return "busy"
	case errors.Is(err, routing.ErrNoAnswer):
		return "no_answer"
	case errors.Is(err, routing.ErrRejected):
		return "rejected"
	case errors.Is(err, routing.ErrUnreachable):
		return "unreachable"
	}
	return "ended"
}

// rank orders failures for a forked call: the most telling one is kept.
func rank(err error) int {
	switch {
	case errors.Is(err, routing.ErrBusy):
		return 4
	case errors.Is(err, routing.ErrNoAnswer):
		return 3
	case errors.Is(err, routing.ErrRejected):
		return 2
	case errors.Is(err, routing.ErrUnreachable):
		return 1
	}
	return 0
}

func (l *leg) forkFailed(f *fork, err error) {
	l.srv.forgetLeg(f.callID)
	l.mu.Lock()
	l.pending--
	if l.best == nil || rank(err) > rank(l.best) {
		l.best = err
	}
	last := l.pending == 0 && !l.answered
	best := l.best
	l.mu.Unlock()
	if last {
		l.log.Info("leg not answered", "reason", best.Error())
		l.end(best)
	}
}

func (l *leg) forkAnswered(f *fork) {
	l.mu.Lock()
	if l.answered || l.ended {
		l.pending--
		l.mu.Unlock()
		// Another fork won, or the leg was hung up: take this one down.
		_ = f.dlg.Ack(context.Background())
		l.byeFork(f)
		l.srv.forgetLeg(f.callID)
		return
	}
	l.pending--
	o, perr := ParseSDPOffer(f.dlg.InviteResponse.Body())
	l.answered, l.dlg, l.id = true, f.dlg, f.callID
	others := make([]*fork, 0, len(l.forks))
	for _, x := range l.forks {
		if x != f {
			others = append(others, x)
		}
	}
	if perr == nil {
		l.applyRemoteLocked(o)
	}
	l.mu.Unlock()
	if err := f.dlg.Ack(context.Background()); err != nil {
		l.log.Warn("ACK failed", "error", err)
	}
	for _, x := range others {
		x.cancel() // CANCEL (RFC 3261 section 9.1); WaitAnswer sends it
	}
	if perr != nil {
		l.log.Warn("answer without usable SDP", "error", perr)
		_ = l.Hangup(context.Background(), "no SDP answer")
		return
	}
	close(l.answeredCh)
	l.log.Info("leg answered", "call_id", f.callID)
}

// earlyMedia takes the SDP of a fork's provisional response (183 Session
// Progress, sometimes 180): the far end's audio before it answers — a
// carrier's ringback or 彩铃, or an announcement — is received from then
// on, and EarlyMedia tells the router, which relays it to the caller
// (RelayEarly) instead of playing its own ringback. RFC 3960's gateway
// model: the first fork to send early media is the one heard; the answer's
// SDP replaces it when another fork answers.
func (l *leg) earlyMedia(f *fork, res *sip.Response) {
	o, err := ParseSDPOffer(res.Body())
	if err != nil {
		l.log.Info("early media ignored: unusable SDP", "status", res.StatusCode, "error", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.answered || l.ended || l.early {
		return
	}
	l.applyRemoteLocked(o)
	l.early = true
	close(l.earlyCh)
	l.log.Info("early media", "status", res.StatusCode, "call_id", f.callID)
}

// EarlyMedia implements routing.EarlyMediaLeg.
func (l *leg) EarlyMedia() <-chan struct{} { return l.earlyCh }

// RelayEarly implements routing.EarlyRelayer: the leg's early media goes
// to c (the caller, or the agent of a callback), translated between G.711
// laws when the two differ, until stop. The relay is one way: the far end
// hears nothing before it answers.
func (s *Server) RelayEarly(c ivr.Call, lg routing.Leg) (func(), error) {
	ec, err := asEndpoint(c)
	if err != nil {
		return nil, err
	}
	dst := ec.mediaSession()
	if dst == nil {
		return nil, fmt.Errorf("sip: relay early media to %s: %w", c.ID(), errNotAnswered)
	}
	l, ok := lg.(*leg)
	if !ok {
		return nil, fmt.Errorf("sip: relay early media: %T is not a leg of the sip plane", lg)
	}
	l.mu.Lock()
	src, early := l.sess, l.early
	from := prompts.PCMA
	if l.offer != nil {
		from = l.offer.Codec
	}
	l.mu.Unlock()
	if !early {
		return nil, fmt.Errorf("sip: relay early media from %s: none received", l.what)
	}
	src.RelayTo(dst, xlatFor(from, ec.codec()))
	return func() { src.RelayTo(nil, nil) }, nil
}

func (l *leg) byeFork(f *fork) {
	l.srv.callWG.Add(1)
	go func() {
		defer l.srv.callWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.dlg.Bye(ctx)
	}()
}

func (l *leg) applyRemoteLocked(o *Offer) {
	l.offer = o
	if o.Remote.Addr().IsValid() && !o.Remote.Addr().IsUnspecified() {
		l.sess.SetRemote(o.Remote)
	}
	var dtmf uint8
	if o.HasDTMF {
		dtmf = o.DTMFPayloadType
	}
	l.sess.SetPayloadTypes(o.PayloadType, dtmf)
	l.sess.SetHold(o.Hold())
	l.idle.setHeld(o.Hold())
}

// end marks the leg ended once.
func (l *leg) end(err error) {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	l.ended = true
	if !l.answered {
		l.err = err
	}
	forks := l.forks
	answered := l.answered
	l.mu.Unlock()
	outcome := "completed"
	if !answered {
		outcome = reasonName(err)
	}
	l.span.SetAttributes(attribute.String("leg.outcome", outcome))
	l.span.End()
	l.idle.stop()
	close(l.done)
	l.stopR(nil)
	l.sess.Close()
	for _, f := range forks {
		l.srv.forgetLeg(f.callID)
	}
}

func (l *leg) ID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.id
}
func (l *leg) Info() ivr.CallInfo        { return l.info }
func (l *leg) Done() <-chan struct{}     { return l.done }
func (l *leg) Answered() <-chan struct{} { return l.answeredCh }

// mediaSession is the leg's RTP session once answered (nil before: the
// bridge and the mixer only take answered calls).
func (l *leg) mediaSession() *media.Session {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.answered {
		return nil
	}
	return l.sess
}

// Err says why the leg ended unanswered (nil while ringing or once
// answered).
func (l *leg) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Answer waits for the far end's answer: an outbound leg is answered by
// the far end, not by us.
func (l *leg) Answer(ctx context.Context) error {
	select {
	case <-l.answeredCh:
		return nil
	case <-l.done:
		if err := l.Err(); err != nil {
			return fmt.Errorf("sip: %s: %w", l.what, err)
		}
		return ivr.ErrHungUp
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *leg) codec() prompts.Codec {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.offer != nil {
		return l.offer.Codec
	}
	return prompts.PCMA
}

// Play plays prompts to the far end once answered.
func (l *leg) Play(ctx context.Context, keys []string, bargeIn bool) error {
	if err := l.Answer(ctx); err != nil {
		return err
	}
	codec := l.codec()
	var frames [][]byte
	for _, k := range keys {
		f, ok := l.srv.cfg.Prompts.Frames(k, codec)
		if !ok {
			return fmt.Errorf("sip: play %s: no audio for %q", l.what, k)
		}
		frames = append(frames, f...)
	}
	if len(frames) == 0 {
		return nil
	}
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return ivr.ErrHungUp
	}
	if bargeIn && len(l.digits) > 0 {
		l.mu.Unlock()
		return nil
	}
	l.bargeIn = bargeIn
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.bargeIn = false
		l.mu.Unlock()
	}()
	done := make(chan bool, 1)
	l.sess.Play(frames, media.PlayOptions{OnDone: func(c bool) { done <- c }})
	select {
	case <-done:
		return nil
	case <-l.done:
		return ivr.ErrHungUp
	case <-ctx.Done():
		l.sess.Stop()
		return ctx.Err()
	}
}

// digit buffers a digit from the far end (RFC 4733 or INFO), or hands it
// to the bridge's tap.
func (l *leg) digit(d byte) {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	if tap := l.tap; tap != nil {
		l.mu.Unlock()
		tap(d)
		return
	}
	if len(l.digits) >= maxBufferedDigits {
		l.digits = l.digits[1:]
	}
	l.digits = append(l.digits, d)
	stop := l.bargeIn
	l.mu.Unlock()
	if stop {
		l.sess.Stop()
	}
	select {
	case l.digitSignal <- struct{}{}:
	default:
	}
}

func (l *leg) setDigitTap(f func(byte)) {
	l.mu.Lock()
	l.tap = f
	l.mu.Unlock()
}

// ReadDigit takes the next digit, waiting up to timeout.
func (l *leg) ReadDigit(ctx context.Context, timeout time.Duration) (byte, error) {
	return waitDigit(ctx, &l.mu, &l.digits, &l.ended, l.digitSignal, l.done, timeout)
}

// FlushDigits drops buffered digits.
func (l *leg) FlushDigits() {
	l.mu.Lock()
	l.digits = l.digits[:0]
	l.mu.Unlock()
}

// Hangup ends the leg: CANCEL while it rings, BYE once answered.
func (l *leg) Hangup(ctx context.Context, reason string) error {
	l.mu.Lock()
	if l.ended || l.hangingUp {
		l.mu.Unlock()
		return nil
	}
	l.hangingUp = true
	answered, dlg := l.answered, l.dlg
	l.mu.Unlock()
	l.log.Info("leg hangup", "reason", reason, "answered", answered)
	if !answered {
		l.stopR(errors.New(reason)) // every fork sends its CANCEL
		l.end(fmt.Errorf("%w: cancelled (%s)", routing.ErrNoAnswer, reason))
		return nil
	}
	err := dlg.Bye(ctx)
	l.end(nil)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("sip: hangup %s: %w", l.what, err)
	}
	return nil
}

// onInactive is the media engine's callback; the guard ignores it while
// the agent's phone holds the call.
func (l *leg) onInactive() {
	l.mu.Lock()
	g, answered := l.idle, l.answered
	l.mu.Unlock()
	// No RTP while it rings is normal (a destination may ring longer than
	// the inactivity timeout); the ring timeout covers that phase.
	if g != nil && answered {
		g.inactive()
	}
}

func (l *leg) hangupIdle() {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Hangup(ctx, "rtp timeout")
	}()
}

// legOf finds the answered leg a request inside a dialog belongs to.
func (s *Server) legOf(req *sip.Request) *leg {
	cid := req.CallID()
	if cid == nil {
		return nil
	}
	s.mu.Lock()
	l := s.legs[cid.Value()]
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.answered || l.dlg == nil || l.dlg.InviteRequest.CallID().Value() != cid.Value() {
		return nil
	}
	return l
}

// legRequest handles a request inside one of our outbound dialogs (BYE,
// re-INVITE, INFO). It reports false when the request is not for a leg.
func (s *Server) legRequest(req *sip.Request, tx sip.ServerTransaction) bool {
	cid := req.CallID()
	if cid == nil {
		return false
	}
	s.mu.Lock()
	l := s.legs[cid.Value()]
	s.mu.Unlock()
	if l == nil {
		return false
	}
	l.mu.Lock()
	dlg, answered := l.dlg, l.answered
	l.mu.Unlock()
	if dlg == nil || !answered || dlg.InviteRequest.CallID().Value() != cid.Value() {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return true
	}
	switch req.Method {
	case sip.BYE:
		_ = dlg.ReadBye(req, tx)
		l.log.Info("far end hung up")
		l.end(nil)
	case sip.INFO:
		ct := req.ContentType()
		if ct == nil || len(req.Body()) == 0 {
			s.respond(req, tx, 200, "OK")
			return true
		}
		d, _, err := ParseInfoDTMF(ct.Value(), req.Body())
		if err != nil {
			s.respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", ctDTMFRelay+", "+ctDTMF))
			return true
		}
		s.respond(req, tx, 200, "OK")
		l.digit(d)
	case sip.INVITE:
		// Hold, unhold or a new address from the far end (RFC 3264 §8).
		o, err := ParseSDPOffer(req.Body())
		if err != nil {
			s.respond(req, tx, 488, "Not Acceptable Here")
			return true
		}
		l.mu.Lock()
		l.applyRemoteLocked(o)
		body := l.local.answer(o)
		l.mu.Unlock()
		res := sip.NewSDPResponseFromRequest(req, body)
		res.AppendHeader(s.contact(req.Transport()))
		_ = tx.Respond(res)
		l.log.Info("re-INVITE", "hold", o.Hold())
	default:
		s.respond(req, tx, 405, "Method Not Allowed")
	}
	return true
}
