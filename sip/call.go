package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/prompts"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// mediaSession is what a call needs from its RTP session (media.Session).
type mediaSession interface {
	LocalAddr() netip.AddrPort
	SetRemote(netip.AddrPort)
	SetPayloadTypes(audio, dtmf uint8)
	// Play sends the frames paced at 20 ms; onDone tells whether all were
	// sent (false: stopped).
	Play(frames [][]byte, onDone func(completed bool))
	Stop()
	SetHold(bool)
	Close()
	// lastArrival is when the last inbound packet came (zero: none yet).
	lastArrival() time.Time
}

// sessionParams is what the plane tells the media engine about a new call.
type sessionParams struct {
	Remote      netip.AddrPort
	PayloadType uint8
	DTMFType    uint8 // 0: none negotiated
	OnDigit     func(byte)
	OnInactive  func()
}

// mediaEngine creates RTP sessions (media.Engine).
type mediaEngine interface {
	newSession(sessionParams) (mediaSession, error)
}

// maxBufferedDigits bounds a call's digit buffer; older digits are dropped
// first, as a phone keypad buffer would.
const maxBufferedDigits = 64

// call is one inbound SIP call. It implements ivr.Call.
type call struct {
	srv  *Server
	id   string
	info ivr.CallInfo
	dlg  *sipgo.DialogServerSession
	// inviteTx is the initial INVITE's server transaction.
	inviteTx sip.ServerTransaction
	log      *slog.Logger
	span     trace.Span
	ctx      context.Context // handler context: cancelled when the call ends
	stop     context.CancelFunc

	transport string // "UDP" or "TCP"

	mu        sync.Mutex
	offer     *Offer // current negotiated remote description; nil until known
	local     localSDP
	sess      mediaSession
	idle      *idleGuard // with sess: RTP inactivity vs. the far end's hold
	answered  bool
	answering bool
	// lateOffer: the INVITE had no SDP; our offer went in the 200 and the
	// answer comes in the ACK.
	lateOffer bool
	// pendingAck receives the ACK for a 2xx whose CSeq it names (re-INVITE).
	pendingAck     chan *sip.Request
	pendingAckCSeq uint32
	digits         []byte
	digitSignal    chan struct{} // 1-buffered: a digit arrived
	bargeIn        bool          // a Play with barge-in is running
	tap            func(byte)    // set by a bridge: digits go there (bridge.go)
	ended          bool
	hangingUp      bool
	outcome        string

	answerOnce sync.Once
	answerErr  error
	done       chan struct{}
	active     atomic.Bool
}

var _ ivr.Call = (*call)(nil)

func (c *call) ID() string            { return c.id }
func (c *call) Info() ivr.CallInfo    { return c.info }
func (c *call) Done() <-chan struct{} { return c.done }

// Answer sends 200 OK with our SDP and waits for the ACK (RFC 3261
// §13.3.1.4; at most 64*T1 = 32 s, ctx does not shorten it). The RTP
// session exists from then on.
func (c *call) Answer(ctx context.Context) error {
	c.answerOnce.Do(func() { c.answerErr = c.answer(ctx) })
	return c.answerErr
}

// ring sends 180 Ringing and waits d, or until the caller cancels. It
// reports whether the call is still there.
func (c *call) ring(d time.Duration) bool {
	res := sip.NewResponseFromRequest(c.dlg.InviteRequest, 180, "Ringing", nil)
	if err := c.dlg.WriteResponse(res); err != nil {
		c.log.Debug("180 not sent", "err", err)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	case <-c.done:
		return false
	}
}

func (c *call) answer(ctx context.Context) error {
	_, span := c.srv.tracer.Start(trace.ContextWithSpan(ctx, c.span), "answer")
	defer span.End()
	fail := func(err error) error {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return fail(ivr.ErrHungUp)
	}
	c.answering = true
	offer := c.offer
	p := sessionParams{OnDigit: c.onRTPDigit, OnInactive: c.onInactive}
	if offer != nil {
		p.Remote, p.PayloadType = offer.Remote, offer.PayloadType
		if offer.HasDTMF {
			p.DTMFType = offer.DTMFPayloadType
		}
	} else {
		// Late offer: we offer PCMA first; the ACK's answer may change it.
		p.PayloadType = uint8(prompts.PCMA)
		p.DTMFType = dtmfOfferPT
	}
	sess, err := c.srv.media.newSession(p)
	if err != nil {
		c.mu.Unlock()
		_ = c.rejectLocked(500, "Server Internal Error")
		c.end("media_error")
		return fail(fmt.Errorf("sip: answer %s: %w", c.id, err))
	}
	c.sess = sess
	c.idle = newIdleGuard(sess.lastArrival, c.hangupIdle)
	la := sess.LocalAddr()
	c.local.port = la.Port()
	var body []byte
	if offer != nil {
		sess.SetHold(offer.Hold())
		c.idle.setHeld(offer.Hold())
		body = c.local.answer(offer)
	} else {
		c.lateOffer = true
		body = c.local.offer(SendRecv)
	}
	c.mu.Unlock()

	res := sip.NewSDPResponseFromRequest(c.dlg.InviteRequest, body)
	res.AppendHeader(c.srv.contact(c.transport))
	res.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	if err := c.dlg.WriteResponse(res); err != nil {
		// No ACK within 64*T1, or the transaction died: RFC 3261 §13.3.1.4
		// says end the session with a BYE.
		select {
		case <-c.done:
			return fail(ivr.ErrHungUp) // CANCEL or BYE came first
		default:
		}
		c.byeAndEnd("no_ack")
		return fail(fmt.Errorf("sip: answer %s: %w", c.id, err))
	}
	c.mu.Lock()
	c.answered = true
	late := c.lateOffer && c.offer == nil
	c.mu.Unlock()
	if late {
		c.byeAndEnd("no_sdp_answer")
		return fail(fmt.Errorf("sip: answer %s: ACK carried no usable SDP answer", c.id))
	}
	select {
	case <-c.done:
		return fail(ivr.ErrHungUp)
	default:
	}
	c.log.Info("call answered")
	return nil
}

// Play plays the prompts in order, stopping at the first digit with bargeIn.
func (c *call) Play(ctx context.Context, keys []string, bargeIn bool) error {
	if err := c.Answer(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	codec := prompts.PCMA
	if c.offer != nil {
		codec = c.offer.Codec
	}
	c.mu.Unlock()
	var frames [][]byte
	for _, k := range keys {
		f, ok := c.srv.cfg.Prompts.Frames(k, codec)
		if !ok {
			return fmt.Errorf("sip: play %s: no audio for %q", c.id, k)
		}
		frames = append(frames, f...)
	}
	if len(frames) == 0 {
		return nil
	}
	done := make(chan bool, 1)
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return ivr.ErrHungUp
	}
	if bargeIn && len(c.digits) > 0 {
		// A digit typed ahead already answers this prompt.
		c.mu.Unlock()
		return nil
	}
	c.bargeIn = bargeIn
	sess := c.sess
	c.mu.Unlock()
	sess.Play(frames, func(completed bool) { done <- completed })
	defer func() {
		c.mu.Lock()
		c.bargeIn = false
		c.mu.Unlock()
	}()
	select {
	case <-done:
		return nil
	case <-c.done:
		return ivr.ErrHungUp
	case <-ctx.Done():
		sess.Stop()
		return ctx.Err()
	}
}

// ReadDigit takes the next buffered digit, waiting up to timeout.
func (c *call) ReadDigit(ctx context.Context, timeout time.Duration) (byte, error) {
	return waitDigit(ctx, &c.mu, &c.digits, &c.ended, c.digitSignal, c.done, timeout)
}

// FlushDigits drops the buffered digits.
func (c *call) FlushDigits() {
	c.mu.Lock()
	c.digits = c.digits[:0]
	c.mu.Unlock()
	select {
	case <-c.digitSignal:
	default:
	}
}

// Hangup ends the call: BYE when answered, a final error response before.
func (c *call) Hangup(ctx context.Context, reason string) error {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return nil
	}
	if c.hangingUp {
		// Another goroutine (drain, RTP timeout, the handler) is already
		// hanging up: wait for it rather than send a second BYE.
		c.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
		}
		return nil
	}
	c.hangingUp = true
	answering := c.answering
	c.mu.Unlock()
	c.log.Info("call hangup", "reason", reason)
	if !answering {
		err := c.reject(480, "Temporarily Unavailable")
		c.end("abandoned")
		return err
	}
	err := c.dlg.Bye(ctx)
	c.end(outcomeOf(reason))
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("sip: hangup %s: %w", c.id, err)
	}
	return nil
}

func outcomeOf(reason string) string {
	switch reason {
	case "rtp timeout":
		return "rtp_timeout"
	case "drain":
		return "drained"
	}
	return "completed"
}

// byeAndEnd sends a BYE in the background and ends the call at once.
func (c *call) byeAndEnd(outcome string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.dlg.Bye(ctx)
	}()
	c.end(outcome)
}

func (c *call) reject(status int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rejectLocked(status, reason)
}

// rejectLocked sends a final non-2xx to the INVITE through its transaction,
// which takes care of retransmissions and the ACK (RFC 3261 §17.2.1). It
// does not block.
func (c *call) rejectLocked(status int, reason string) error {
	res := sip.NewResponseFromRequest(c.dlg.InviteRequest, status, reason, nil)
	res.AppendHeader(c.srv.contact(c.transport))
	if err := c.inviteTx.Respond(res); err != nil {
		return fmt.Errorf("sip: reject %s: %w", c.id, err)
	}
	return nil
}

// onRTPDigit is called by the media engine on the first packet of an RFC
// 4733 event.
func (c *call) onRTPDigit(d byte) { c.digit(d, "rfc4733") }

// digit buffers one digit and, during a barge-in prompt, stops it at once.
func (c *call) digit(d byte, mode string) {
	c.srv.metrics.dtmf.Add(context.Background(), 1, metricOpt(attribute.String("mode", mode)))
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	if tap := c.tap; tap != nil {
		c.mu.Unlock()
		tap(d)
		return
	}
	if len(c.digits) >= maxBufferedDigits {
		c.digits = c.digits[1:]
	}
	c.digits = append(c.digits, d)
	stop := c.bargeIn && c.sess != nil
	sess := c.sess
	c.mu.Unlock()
	if stop {
		sess.Stop()
	}
	select {
	case c.digitSignal <- struct{}{}:
	default:
	}
	c.span.AddEvent("dtmf", trace.WithAttributes(attribute.String("mode", mode)))
}

// onInactive is the media engine's callback: no inbound RTP for its
// InactivityTimeout. The guard ignores it while the far end holds the call.
func (c *call) onInactive() {
	c.mu.Lock()
	g := c.idle
	c.mu.Unlock()
	if g != nil {
		g.inactive()
	}
}

// hangupIdle ends a call whose RTP stopped; it does not block the caller
// (a media pacer or a timer).
func (c *call) hangupIdle() {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Hangup(ctx, "rtp timeout")
	}()
}

// applyRemoteLocked makes a newly negotiated remote description current.
func (c *call) applyRemoteLocked(o *Offer) {
	c.offer = o
	if c.sess == nil {
		return
	}
	if o.Remote.Addr().IsValid() && !o.Remote.Addr().IsUnspecified() {
		c.sess.SetRemote(o.Remote)
	}
	var dtmf uint8
	if o.HasDTMF {
		dtmf = o.DTMFPayloadType
	}
	c.sess.SetPayloadTypes(o.PayloadType, dtmf)
	c.sess.SetHold(o.Hold())
	c.idle.setHeld(o.Hold())
}

// end marks the call ended once, whoever ended it, and releases it.
func (c *call) end(outcome string) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	c.outcome = outcome
	sess, idle := c.sess, c.idle
	c.mu.Unlock()
	if idle != nil {
		idle.stop()
	}
	close(c.done)
	c.stop()
	if sess != nil {
		sess.Close()
	}
	c.srv.release(c, outcome)
}
