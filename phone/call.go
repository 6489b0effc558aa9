package phone

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/pion/rtp"
)

// How a call ended, as reported in ended_by.
const (
	EndedLocal  = "local"  // we sent BYE
	EndedRemote = "remote" // the far end sent BYE or rejected the INVITE
	EndedCancel = "cancel" // we sent CANCEL before the answer
	EndedError  = "error"  // transport error, timeout, bad SDP
)

// DTMF modes.
const (
	DTMFRFC4733 = "rfc4733"
	DTMFInfo    = "info"
)

// DialOptions describe an outgoing call.
type DialOptions struct {
	Target    string          // far end, HOST:PORT (port default 5060)
	Transport string          // "udp" (default) or "tcp"
	To        string          // dialled number (user part of the Request-URI)
	From      string          // caller number (user part of From)
	Codecs    []prompts.Codec // offer order (default PCMA, PCMU)
	LateOffer bool            // INVITE without SDP; the offer comes in the 200
	// CancelAfter sends CANCEL when the call is not answered this long
	// after the INVITE (0: never).
	CancelAfter time.Duration
	// SetupTimeout gives up (with CANCEL) when there is no answer this long
	// after the INVITE (default 32 s, Timer B).
	SetupTimeout time.Duration
}

// DTMFSent is one digit we sent.
type DTMFSent struct {
	Digit string    `json:"digit"`
	Mode  string    `json:"mode"`
	At    time.Time `json:"-"`
	AtMS  int64     `json:"at_ms"` // from the answer
	// The first prompt that started after the digit, and how long after.
	NextPrompt   string   `json:"next_prompt,omitempty"`
	NextPromptMS *float64 `json:"next_prompt_ms,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// PromptStart tells that a prompt run started (see Recogniser).
type PromptStart struct {
	Key   string
	Start time.Time
}

// dialog is what a call needs of sipgo's client and server dialogs alike.
type dialog interface {
	Bye(ctx context.Context) error
	Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
	WriteRequest(req *sip.Request) error
	ReadBye(req *sip.Request, tx sip.ServerTransaction) error
	Close() error
}

// Call is one SIP dialog with its RTP session.
type Call struct {
	ID   string // Call-ID
	p    *Phone
	opts DialOptions
	// dlg is the dialog in either role; uac or uas is set by the role.
	dlg     dialog
	uac     *sipgo.DialogClientSession // we called
	uas     *sipgo.DialogServerSession // we answered
	contact *sip.ContactHeader         // ours, for responses in the dialog
	sess    *media.Session
	// Role is "caller" (we sent the INVITE) or "callee".
	Role string

	// Set by Dial before it returns; read-only afterwards.
	Status     int
	Reason     string
	Codec      prompts.Codec
	Remote     MediaDesc
	InviteAt   time.Time
	AnsweredAt time.Time // zero when not answered

	rec          atomic.Pointer[Recogniser]
	tones        atomic.Pointer[ToneDetector] // fed under rxMu
	rxDTMFPT     atomic.Uint32
	promptStarts chan PromptStart

	rxMu      sync.Mutex
	seq       seqCounter
	iat       Histogram
	lastRx    time.Time
	lastSSRC  uint32
	rxDTMF    uint64
	iatCounts bool

	mu          sync.Mutex
	dtmf        []DTMFSent
	reinvites   []ReinviteResult
	referStatus int // final status of our REFER (0: none sent)
	sdpVer      uint64
	ended       chan struct{}
	endedBy     string
	endErr      error
	endAt       time.Time
}

func (p *Phone) newCall(id, role string, o DialOptions) *Call {
	return &Call{ID: id, Role: role, p: p, opts: o, ended: make(chan struct{}), promptStarts: make(chan PromptStart, 16)}
}

// Dial places a call and returns when it is answered or has failed. The
// returned Call is never nil: it carries the SIP status of a failure. The
// error is nil only when the call was answered; then the caller must end
// it with Hangup (or wait for Done) and finally Close it.
func (p *Phone) Dial(ctx context.Context, o DialOptions) (*Call, error) {
	c := p.newCall(uuid.NewString(), "caller", o)
	if len(o.Codecs) == 0 {
		o.Codecs = []prompts.Codec{prompts.PCMA, prompts.PCMU}
		c.opts.Codecs = o.Codecs
	}
	transport := strings.ToLower(o.Transport)
	if transport == "" {
		transport = "udp"
	}
	dua := p.dialogs[transport]
	if dua == nil {
		return c, c.fail(EndedError, fmt.Errorf("phone: dial: unknown transport %q", o.Transport))
	}
	host, port, err := splitTarget(o.Target)
	if err != nil {
		return c, c.fail(EndedError, fmt.Errorf("phone: dial: %w", err))
	}
	c.sess, err = p.engine.NewSession(media.SessionConfig{
		PayloadType:     uint8(o.Codecs[0]),
		DTMFPayloadType: DefaultDTMFPayloadType,
		OnPacket:        c.onPacket,
	})
	if err != nil {
		return c, c.fail(EndedError, fmt.Errorf("phone: dial: %w", err))
	}
	var body []byte
	if !o.LateOffer {
		if body, err = c.sdp(o.Codecs, DefaultDTMFPayloadType, ""); err != nil {
			return c, c.fail(EndedError, err)
		}
	}
	req := c.invite(dua, host, port, transport, body)
	p.register(c)

	c.InviteAt = time.Now()
	setup := o.SetupTimeout
	if setup <= 0 {
		setup = 64 * sip.T1
	}
	// Setup timeout and --cancel-after: CANCEL once a provisional response
	// came (RFC 3261 section 9.1 allows no CANCEL before); without one, give
	// up on the transaction at once rather than wait for Timer B.
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var why atomic.Pointer[error]
	var provisional atomic.Bool
	fire := func(reason error) func() {
		return func() {
			why.CompareAndSwap(nil, &reason)
			if provisional.Load() {
				cancel(reason)
			} else {
				cancel(sipgo.WaitAnswerForceCancelErr)
			}
		}
	}
	setupT := time.AfterFunc(setup, fire(errSetupTimeout))
	defer setupT.Stop()
	if o.CancelAfter > 0 {
		cancelT := time.AfterFunc(o.CancelAfter, fire(errCancelAfter))
		defer cancelT.Stop()
	}
	c.uac, err = dua.WriteInvite(wctx, req)
	if err != nil {
		return c, c.fail(EndedError, fmt.Errorf("phone: invite: %w", err))
	}
	c.dlg = c.uac
	err = c.uac.WaitAnswer(wctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		if res.IsProvisional() {
			provisional.Store(true)
		}
		return nil
	}})
	if res := c.uac.InviteResponse; res != nil {
		c.Status, c.Reason = res.StatusCode, res.Reason
	}
	if err != nil {
		var rejected *sipgo.ErrDialogResponse
		switch {
		case errors.As(err, &rejected):
			return c, c.fail(EndedRemote, fmt.Errorf("phone: call rejected: %d %s", c.Status, c.Reason))
		case c.Status >= 200 && c.Status < 300:
			// The answer crossed our CANCEL: take the call, then end it.
			if aerr := c.answered(); aerr != nil {
				return c, c.fail(EndedError, aerr)
			}
			_ = c.Hangup(context.WithoutCancel(ctx))
			c.setEnd(EndedCancel, nil)
			return c, fmt.Errorf("phone: answered while cancelling")
		case why.Load() != nil && *why.Load() == errCancelAfter:
			if c.Status < 200 {
				c.Status, c.Reason = 0, "no response before cancel-after"
			}
			return c, c.fail(EndedCancel, fmt.Errorf("phone: cancelled after %v: %d %s", o.CancelAfter, c.Status, c.Reason))
		case why.Load() != nil && *why.Load() == errSetupTimeout:
			if c.Status < 200 {
				c.Status, c.Reason = sip.StatusRequestTimeout, "Request Timeout (no answer)"
			}
			return c, c.fail(EndedError, fmt.Errorf("phone: no answer within %v", setup))
		case ctx.Err() != nil:
			return c, c.fail(EndedCancel, fmt.Errorf("phone: dial interrupted: %w", ctx.Err()))
		default:
			if c.Status < 200 {
				c.Status, c.Reason = sip.StatusRequestTimeout, "Request Timeout"
			}
			return c, c.fail(EndedError, fmt.Errorf("phone: invite: %w", err))
		}
	}
	if err := c.answered(); err != nil {
		_ = c.Hangup(context.WithoutCancel(ctx))
		c.setEnd(EndedError, err)
		return c, err
	}
	return c, nil
}

var (
	errCancelAfter  = errors.New("cancel-after elapsed")
	errSetupTimeout = errors.New("setup timeout")
)

func (c *Call) invite(dua *sipgo.DialogUA, host string, port int, transport string, body []byte) *sip.Request {
	recipient := sip.Uri{Scheme: "sip", User: c.opts.To, Host: host, Port: port}
	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetTransport(strings.ToUpper(transport))
	local := c.p.addrs[transport]
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: c.opts.From, Host: local.Addr().String()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: c.opts.To, Host: host, Port: port}, Params: sip.NewParams()}
	callID := sip.CallIDHeader(c.ID)
	contact := dua.ContactHDR.Clone()
	contact.Address.User = c.opts.From
	c.contact = contact.Clone()
	if transport == "tcp" {
		// The Contact of a TCP call is our outgoing connection (sipgo fills
		// it from the Via), which the far end reuses for its BYE.
		contact.Address.Host, contact.Address.Port = "", 0
	}
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(contact)
	req.AppendHeader(sip.NewHeader("User-Agent", c.p.cfg.UserAgent))
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"))
	if body != nil {
		ct := sip.ContentTypeHeader("application/sdp")
		req.AppendHeader(&ct)
	}
	req.SetBody(body)
	return req
}

// answered completes the offer/answer after a 2xx, ACKs and starts media.
func (c *Call) answered() error {
	c.AnsweredAt = time.Now()
	res := c.uac.InviteResponse
	md, err := ParseSDP(res.Body())
	if err != nil {
		_ = c.ack(nil) // the dialog exists: ACK it so that we can BYE it
		return fmt.Errorf("phone: answer of %s: %w", c.opts.Target, err)
	}
	var ackBody []byte
	if c.opts.LateOffer {
		// The 200 carries the offer: answer with the first offered codec we allow.
		codec, ok := firstCommon(md.Codecs, c.opts.Codecs)
		if !ok {
			_ = c.ack(nil)
			return fmt.Errorf("phone: late offer of %s has none of our codecs", c.opts.Target)
		}
		md.Codecs = []prompts.Codec{codec}
		var dtmf uint8
		if md.DTMF != 0 {
			dtmf = md.DTMF
		}
		if ackBody, err = c.sdp(md.Codecs, dtmf, answerDirection(md.Direction)); err != nil {
			return err
		}
	} else if _, ok := firstCommon(md.Codecs, c.opts.Codecs); !ok {
		_ = c.ack(nil)
		return fmt.Errorf("phone: answer of %s chose a codec we did not offer", c.opts.Target)
	}
	c.Remote = md
	c.Codec = md.Codecs[0]
	dtmfPT := md.DTMF // 0 when the answer refused telephone-event
	c.rxDTMFPT.Store(uint32(dtmfPT))
	c.recognise()
	c.sess.SetPayloadTypes(uint8(c.Codec), dtmfPT)
	c.sess.SetRemote(md.Addr)
	return c.ack(ackBody)
}

func (c *Call) ack(body []byte) error {
	if body == nil {
		if err := c.uac.Ack(context.Background()); err != nil {
			return fmt.Errorf("phone: ACK: %w", err)
		}
		return nil
	}
	// sipgo's Ack carries no body; build the ACK of a late offer as RFC 3261
	// section 13.2.2.4 says: to the Contact of the 2xx, same CSeq number.
	res := c.uac.InviteResponse
	recipient := c.uac.InviteRequest.Recipient
	if ct := res.Contact(); ct != nil {
		recipient = ct.Address
	}
	ack := sip.NewRequest(sip.ACK, *recipient.Clone())
	ack.AppendHeader(sip.HeaderClone(c.uac.InviteRequest.From()))
	ack.AppendHeader(sip.HeaderClone(res.To()))
	ack.AppendHeader(sip.HeaderClone(c.uac.InviteRequest.CallID()))
	cseq := sip.CSeqHeader{SeqNo: c.uac.InviteRequest.CSeq().SeqNo, MethodName: sip.ACK}
	ack.AppendHeader(&cseq)
	ct := sip.ContentTypeHeader("application/sdp")
	ack.AppendHeader(&ct)
	ack.SetBody(body)
	ack.SetTransport(c.uac.InviteRequest.Transport())
	if err := c.uac.WriteAck(context.Background(), ack); err != nil {
		return fmt.Errorf("phone: ACK: %w", err)
	}
	return nil
}

func firstCommon(offered, allowed []prompts.Codec) (prompts.Codec, bool) {
	for _, o := range offered {
		for _, a := range allowed {
			if o == a {
				return o, true
			}
		}
	}
	return 0, false
}

// answerDirection is the direction that answers an offered one (RFC 3264
// section 6.1).
func answerDirection(offered string) string {
	switch offered {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	case "inactive":
		return "inactive"
	}
	return "sendrecv"
}

// sdp builds our SDP; each new body gets a higher o= version (RFC 3264 8).
func (c *Call) sdp(codecs []prompts.Codec, dtmf uint8, direction string) ([]byte, error) {
	c.mu.Lock()
	c.sdpVer++
	v := c.sdpVer
	c.mu.Unlock()
	local := c.sess.LocalAddr()
	if !local.Addr().IsValid() || local.Addr().IsUnspecified() {
		local = netip.AddrPortFrom(c.p.cfg.MediaIP, local.Port())
	}
	b, err := BuildSDP(uint64(time.Now().UnixNano()&0x7fffffff), v, local, codecs, dtmf, direction)
	if err != nil {
		return nil, fmt.Errorf("phone: %w", err)
	}
	return b, nil
}

// reinvite answers a re-INVITE: new remote address, hold (sendonly /
// inactive: we stop sending) or unhold, and a 200 with our SDP.
func (c *Call) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	codecs := []prompts.Codec{c.Codec}
	dtmf := c.Remote.DTMF
	direction := "sendrecv"
	if body := req.Body(); len(body) > 0 {
		md, err := ParseSDP(body)
		if err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
			return
		}
		if _, ok := firstCommon(md.Codecs, codecs); !ok {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
			return
		}
		direction = answerDirection(md.Direction)
		c.sess.SetRemote(md.Addr)
		c.sess.SetHold(direction == "recvonly" || direction == "inactive")
	}
	body, err := c.sdp(codecs, dtmf, direction)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil))
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", body)
	ct := sip.ContentTypeHeader("application/sdp")
	res.AppendHeader(&ct)
	res.AppendHeader(c.contact.Clone())
	_ = tx.Respond(res)
}

// onPacket runs on the media engine's receive goroutine for every packet.
func (c *Call) onPacket(h *rtp.Header, payload []byte, at time.Time) {
	if pt := c.rxDTMFPT.Load(); pt != 0 && uint32(h.PayloadType) == pt {
		c.rxMu.Lock()
		c.rxDTMF++
		c.rxMu.Unlock()
		return
	}
	c.rxMu.Lock()
	c.seq.add(h.SSRC, h.SequenceNumber)
	// Interarrival within a talkspurt: the interval ending in a marker
	// packet (a talkspurt's first, RFC 3551 section 4.1) or in a new SSRC is
	// a pause of the sender, not jitter, and is not counted.
	if c.iatCounts && !h.Marker && h.SSRC == c.lastSSRC {
		c.iat.Add(at.Sub(c.lastRx))
	}
	c.lastRx, c.lastSSRC, c.iatCounts = at, h.SSRC, true
	if d := c.tones.Load(); d != nil {
		d.Feed(payload)
	}
	c.rxMu.Unlock()
	if rec := c.rec.Load(); rec != nil {
		rec.Feed(h.SequenceNumber, payload, at)
	}
}

// Play sends frames (looped when loop) to the far end.
func (c *Call) Play(frames [][]byte, loop bool) {
	c.sess.Play(frames, media.PlayOptions{Loop: loop})
}

// PromptStarts delivers the start of each prompt run as it is recognised
// (best effort: a slow reader misses some).
func (c *Call) PromptStarts() <-chan PromptStart { return c.promptStarts }

// SendDTMF sends one digit by RFC 4733 (lasting dur) or by SIP INFO
// (application/dtmf-relay) and records it.
func (c *Call) SendDTMF(ctx context.Context, digit byte, mode string, dur time.Duration) error {
	ev := DTMFSent{Digit: string(digit), Mode: mode, At: time.Now()}
	var err error
	switch mode {
	case DTMFRFC4733, "":
		ev.Mode = DTMFRFC4733
		if c.Remote.DTMF == 0 {
			err = errors.New("phone: the far end did not accept telephone-event")
		} else {
			c.sess.SendDTMF(digit, dur)
		}
	case DTMFInfo:
		err = c.sendInfo(ctx, digit, dur)
	default:
		err = fmt.Errorf("phone: unknown DTMF mode %q", mode)
	}
	if err != nil {
		ev.Error = err.Error()
	}
	c.mu.Lock()
	c.dtmf = append(c.dtmf, ev)
	c.mu.Unlock()
	return err
}

// sendInfo sends a digit as SIP INFO with application/dtmf-relay (the
// format Cisco and Asterisk use: "Signal=" and "Duration=" in ms).
func (c *Call) sendInfo(ctx context.Context, digit byte, dur time.Duration) error {
	req := sip.NewRequest(sip.INFO, c.remoteTarget())
	ct := sip.ContentTypeHeader("application/dtmf-relay")
	req.AppendHeader(&ct)
	req.SetBody(fmt.Appendf(nil, "Signal=%c\r\nDuration=%d\r\n", digit, dur.Milliseconds()))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("phone: INFO: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("phone: INFO: %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

// Refer sends a blind transfer in the dialog (RFC 3515): REFER with
// Refer-To: <target>. It records the final status (Report.ReferStatus)
// and does not wait for the NOTIFYs.
func (c *Call) Refer(ctx context.Context, target string) error {
	req := sip.NewRequest(sip.REFER, c.remoteTarget())
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+target+">"))
	req.AppendHeader(c.contact.Clone())
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("phone: REFER: %w", err)
	}
	c.mu.Lock()
	c.referStatus = res.StatusCode
	c.mu.Unlock()
	if !res.IsSuccess() {
		return fmt.Errorf("phone: REFER: %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

// ReinviteResult is one re-INVITE we sent.
type ReinviteResult struct {
	Direction string    `json:"direction"`
	Status    int       `json:"status"`
	At        time.Time `json:"-"`
	AtMS      int64     `json:"at_ms"`
	Error     string    `json:"error,omitempty"`
}

// Reinvite sends a re-INVITE with our SDP in the given direction: sendonly
// puts the far end on hold (RFC 3264 section 8.4; we keep sending),
// sendrecv takes it off hold or just refreshes the session. It waits for
// the final response and ACKs a 2xx.
func (c *Call) Reinvite(ctx context.Context, direction string) error {
	res := ReinviteResult{Direction: direction, At: time.Now()}
	err := c.reinviteOut(ctx, direction, &res.Status)
	if err != nil {
		res.Error = err.Error()
	}
	c.mu.Lock()
	c.reinvites = append(c.reinvites, res)
	c.mu.Unlock()
	return err
}

func (c *Call) reinviteOut(ctx context.Context, direction string, status *int) error {
	body, err := c.sdp([]prompts.Codec{c.Codec}, uint8(c.rxDTMFPT.Load()), direction)
	if err != nil {
		return err
	}
	req := sip.NewRequest(sip.INVITE, c.remoteTarget())
	ct := sip.ContentTypeHeader("application/sdp")
	req.AppendHeader(&ct)
	req.AppendHeader(c.contact.Clone())
	req.SetBody(body)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("phone: re-INVITE: %w", err)
	}
	*status = res.StatusCode
	if !res.IsSuccess() {
		return fmt.Errorf("phone: re-INVITE: %d %s", res.StatusCode, res.Reason)
	}
	// The ACK of a re-INVITE's 2xx: same CSeq number, method ACK (RFC 3261
	// 13.2.2.4); the dialog fills From, To, Call-ID and CSeq.
	ack := sip.NewRequest(sip.ACK, c.remoteTarget())
	ack.AppendHeader(c.contact.Clone())
	if err := c.dlg.WriteRequest(ack); err != nil {
		return fmt.Errorf("phone: ACK of re-INVITE: %w", err)
	}
	if md, err := ParseSDP(res.Body()); err == nil && md.Addr != c.Remote.Addr {
		c.sess.SetRemote(md.Addr)
	}
	return nil
}

// remoteTarget is the far end's Contact: where requests in the dialog go.
func (c *Call) remoteTarget() sip.Uri {
	if c.uac != nil {
		if ct := c.uac.InviteResponse.Contact(); ct != nil {
			return *ct.Address.Clone()
		}
		return c.uac.InviteRequest.Recipient
	}
	if ct := c.uas.InviteRequest.Contact(); ct != nil {
		return *ct.Address.Clone()
	}
	return sip.Uri{}
}

// recognise starts prompt recognition in the negotiated codec.
func (c *Call) recognise() {
	idx := c.p.index(c.Codec)
	if idx == nil {
		return
	}
	rec := NewRecogniser(idx, c.AnsweredAt)
	rec.OnRunStart(func(key string, start time.Time) {
		select {
		case c.promptStarts <- PromptStart{Key: key, Start: start}:
		default:
		}
	})
	c.rec.Store(rec)
}

// Hangup sends BYE (the call ends "local" unless it had ended already).
func (c *Call) Hangup(ctx context.Context) error {
	if c.dlg == nil {
		return nil
	}
	c.sess.Stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := c.dlg.Bye(ctx)
	if err != nil {
		err = fmt.Errorf("phone: BYE: %w", err)
		c.end(EndedError, err)
		return err
	}
	c.end(EndedLocal, nil)
	return nil
}

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.ended }

// EndedBy tells who ended the call, and the error if any.
func (c *Call) EndedBy() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endedBy, c.endErr
}

// end records the first ending.
func (c *Call) end(by string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endedBy != "" {
		return
	}
	c.endedBy, c.endErr, c.endAt = by, err, time.Now()
	close(c.ended)
}

// setEnd overrides how the call ended (an answer that crossed our CANCEL).
func (c *Call) setEnd(by string, err error) {
	c.end(by, err)
	c.mu.Lock()
	c.endedBy, c.endErr = by, err
	c.mu.Unlock()
}

// fail ends a call that was not answered and releases it.
func (c *Call) fail(by string, err error) error {
	c.end(by, err)
	c.Close()
	return err
}

// Close releases the call's RTP session and dialog. Call it after the end,
// once the statistics are read... or let Report do both.
func (c *Call) Close() {
	if c.sess != nil {
		c.sess.Close()
	}
	if c.dlg != nil {
		_ = c.dlg.Close()
	}
	c.p.unregister(c)
}

// RxStats are the receive counters of a call.
type RxStats struct {
	Received, Lost uint64
	DTMFReceived   uint64
}

// RxStats returns the receive counters so far.
func (c *Call) RxStats() RxStats {
	c.rxMu.Lock()
	defer c.rxMu.Unlock()
	rec, lost := c.seq.totals()
	return RxStats{Received: rec, Lost: lost, DTMFReceived: c.rxDTMF}
}

// TonesReceived returns, per watched frequency (Script.DetectTones), the
// received frames that carried it; nil when none is watched.
func (c *Call) TonesReceived() map[string]uint64 {
	d := c.tones.Load()
	if d == nil {
		return nil
	}
	c.rxMu.Lock()
	defer c.rxMu.Unlock()
	return d.Counts()
}

// TonesLongestRun returns, per watched frequency, the longest run of
// consecutive received frames that carried it; nil when none is watched.
func (c *Call) TonesLongestRun() map[string]uint64 {
	d := c.tones.Load()
	if d == nil {
		return nil
	}
	c.rxMu.Lock()
	defer c.rxMu.Unlock()
	return d.LongestRuns()
}

// Interarrival returns a copy of the interarrival histogram.
func (c *Call) Interarrival() *Histogram {
	c.rxMu.Lock()
	defer c.rxMu.Unlock()
	h := c.iat
	return &h
}

// Runs returns the prompt runs recognised so far (nil without prompts).
func (c *Call) Runs() []PromptRun {
	if rec := c.rec.Load(); rec != nil {
		return rec.Runs()
	}
	return nil
}

// DTMF returns the digits sent so far.
func (c *Call) DTMF() []DTMFSent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]DTMFSent(nil), c.dtmf...)
}

// Sent is the number of RTP packets sent.
func (c *Call) Sent() uint64 {
	if c.sess == nil {
		return 0
	}
	return c.sess.Stats().PacketsSent
}
