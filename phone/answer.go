package phone

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/telemetry"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/icholy/digest"
)

// The answering roles: `callsim line` (a specialised line such as 12315
// that hotline transfers calls to) and `callsim agent` (an agent's phone,
// which also registers). Both take INVITEs through Phone.Answer.

// AnswerConfig describes how the phone answers calls.
type AnswerConfig struct {
	// Numbers are the dialled user parts accepted (404 otherwise); empty:
	// any.
	Numbers []string
	// RingFor sends 180 Ringing and waits this long before the answer.
	RingFor time.Duration
	// NoAnswer rings until the caller gives up (ring-no-answer tests).
	NoAnswer bool
	// EarlyMediaHz > 0: while ringing, send 183 Session Progress with the
	// SDP instead of 180, and a tone of this frequency (early media, RFC
	// 3960: what a carrier's ringback or 彩铃 looks like to hotline).
	EarlyMediaHz float64
	// Busy answers 486 Busy Here to every call.
	Busy bool
	// AuthUser and AuthPassword, when the password is set, make the phone
	// act as a carrier trunk that authenticates: an INVITE without valid
	// digest credentials gets 407 Proxy Authentication Required (RFC 3261
	// section 22.3), wrong ones 403. Neither ends up in a report: the
	// authenticated retry is the call.
	AuthUser, AuthPassword string
	// MaxCalls answers 486 beyond this many calls in progress (0: no limit).
	MaxCalls int
	// Codecs accepted, in our preference order (default PCMA, PCMU). An
	// offer without any gets 488.
	Codecs []prompts.Codec
	// Script runs once a call is answered: Play, Send, DTMF, and
	// HangupAfter as the talk time (0: until the caller hangs up).
	Script Script
	// OnReport receives each call's report when it ends (also for calls
	// rejected or cancelled before the answer).
	OnReport func(Report)
}

// Answer takes calls to this phone as cfg says until ctx is done; then it
// hangs up the calls in progress and returns when they have ended.
func (p *Phone) Answer(ctx context.Context, cfg AnswerConfig) error {
	if len(cfg.Codecs) == 0 {
		cfg.Codecs = []prompts.Codec{prompts.PCMA, prompts.PCMU}
	}
	a := &answerer{p: p, cfg: cfg, ctx: ctx, nonce: uuid.NewString()}
	if !p.answer.CompareAndSwap(nil, a) {
		return fmt.Errorf("phone: already answering")
	}
	<-ctx.Done()
	p.answer.CompareAndSwap(a, nil)
	a.wg.Wait()
	return nil
}

type answerer struct {
	p     *Phone
	cfg   AnswerConfig
	ctx   context.Context
	wg    sync.WaitGroup
	nonce string // of the digest challenge (AuthPassword)

	mu     sync.Mutex
	active int
}

// authorize checks an INVITE's Proxy-Authorization against the answerer's
// credentials: 0 when it is good, else the status to answer with (407 and
// a challenge, or 403).
func (a *answerer) authorize(req *sip.Request) (int, sip.Header) {
	chal := &digest.Challenge{Realm: "callsim", Nonce: a.nonce, Algorithm: "MD5", QOP: []string{"auth"}}
	h := req.GetHeader("Proxy-Authorization")
	if h == nil {
		return sip.StatusProxyAuthRequired, sip.NewHeader("Proxy-Authenticate", chal.String())
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil || cred.Nonce != a.nonce {
		return sip.StatusProxyAuthRequired, sip.NewHeader("Proxy-Authenticate", chal.String())
	}
	want, err := digest.Digest(chal, digest.Options{Method: "INVITE", URI: cred.URI, Username: a.cfg.AuthUser,
		Password: a.cfg.AuthPassword, Count: cred.Nc, Cnonce: cred.Cnonce})
	if err != nil || cred.Username != a.cfg.AuthUser || cred.Response != want.Response {
		return sip.StatusForbidden, nil
	}
	return 0, nil
}

// take reserves a place for a call; false when MaxCalls are in progress.
func (a *answerer) take() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg.MaxCalls > 0 && a.active >= a.cfg.MaxCalls {
		return false
	}
	a.active++
	return true
}

func (a *answerer) release() {
	a.mu.Lock()
	a.active--
	a.mu.Unlock()
}

// onIncoming runs on sipgo's goroutine for the INVITE, for the whole call.
func (a *answerer) onIncoming(req *sip.Request, tx sip.ServerTransaction) {
	a.wg.Add(1)
	defer a.wg.Done()
	p, cfg := a.p, a.cfg
	respond := func(code int, reason string) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	}
	if len(cfg.Numbers) > 0 && !slices.Contains(cfg.Numbers, req.Recipient.User) {
		respond(sip.StatusNotFound, "Not Found")
		return
	}
	if cfg.AuthPassword != "" {
		if code, hdr := a.authorize(req); code != 0 {
			reason := "Forbidden"
			if code == sip.StatusProxyAuthRequired {
				reason = "Proxy Authentication Required"
			}
			res := sip.NewResponseFromRequest(req, code, reason, nil)
			if hdr != nil {
				res.AppendHeader(hdr)
			}
			_ = tx.Respond(res)
			if code == sip.StatusForbidden {
				p.log.Info("INVITE refused: wrong digest credentials", "to", telemetry.MaskNumber(req.Recipient.User))
			}
			return
		}
	}
	if cfg.Busy || !a.take() {
		respond(sip.StatusBusyHere, "Busy Here")
		return
	}
	defer a.release()
	transport := strings.ToLower(req.Transport())
	dua := p.dialogs[transport]
	if dua == nil {
		respond(sip.StatusBadRequest, "Bad Request")
		return
	}
	var from string
	if f := req.From(); f != nil {
		from = f.Address.User
	}
	c := p.newCall(req.CallID().Value(), "callee", DialOptions{To: req.Recipient.User, From: from, Transport: transport, Codecs: cfg.Codecs})
	c.InviteAt = time.Now()
	r := c.accept(a.ctx, req, tx, dua.ContactHDR, cfg)
	if cfg.OnReport != nil {
		cfg.OnReport(r)
	}
}

// accept answers an INVITE and runs the script; it returns the report.
func (c *Call) accept(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, contact sip.ContactHeader, cfg AnswerConfig) Report {
	start := c.InviteAt
	s := cfg.Script.withDefaults()
	fail := func(code int, reason string, by string, err error) Report {
		c.Status, c.Reason = code, reason
		if c.uas != nil && code >= 300 {
			_ = c.uas.Respond(code, reason, nil)
		} else if code >= 300 {
			_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
		}
		c.end(by, err)
		r := c.report(s, start)
		c.Close()
		return r
	}
	uas, err := c.p.dialogs[c.opts.Transport].ReadInvite(req, tx)
	if err != nil {
		return fail(sip.StatusBadRequest, "Bad Request", EndedError, fmt.Errorf("phone: incoming INVITE: %w", err))
	}
	c.uas, c.dlg = uas, uas
	c.contact = contact.Clone()
	defer uas.Close()

	late := len(req.Body()) == 0
	var offer MediaDesc
	if !late {
		if offer, err = ParseSDP(req.Body()); err != nil {
			return fail(sip.StatusNotAcceptableHere, "Not Acceptable Here", EndedError, err)
		}
		codec, ok := firstCommon(offer.Codecs, cfg.Codecs)
		if !ok {
			return fail(sip.StatusNotAcceptableHere, "Not Acceptable Here", EndedError, fmt.Errorf("phone: offer has none of our codecs"))
		}
		c.Codec, c.Remote = codec, offer
		c.rxDTMFPT.Store(uint32(offer.DTMF))
	} else {
		c.Codec = cfg.Codecs[0]
	}
	c.sess, err = c.p.engine.NewSession(media.SessionConfig{
		Remote: offer.Addr, PayloadType: uint8(c.Codec), DTMFPayloadType: offer.DTMF, OnPacket: c.onPacket,
	})
	if err != nil {
		return fail(sip.StatusInternalServerError, "Server Internal Error", EndedError, err)
	}
	c.p.register(c)

	if cfg.RingFor > 0 || cfg.NoAnswer {
		if cfg.EarlyMediaHz > 0 && !late {
			body, err := c.sdp([]prompts.Codec{c.Codec}, offer.DTMF, answerDirection(offer.Direction))
			if err != nil {
				return fail(sip.StatusInternalServerError, "Server Internal Error", EndedError, err)
			}
			res := sip.NewResponseFromRequest(uas.InviteRequest, 183, "Session Progress", body)
			res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
			res.AppendHeader(c.contact.Clone())
			_ = uas.WriteResponse(res)
			c.Play([][]byte{ToneFrame(c.Codec, cfg.EarlyMediaHz, 4000)}, true)
		} else {
			_ = uas.Respond(sip.StatusRinging, "Ringing", nil)
		}
		var ring <-chan time.Time
		if !cfg.NoAnswer {
			t := time.NewTimer(cfg.RingFor)
			defer t.Stop()
			ring = t.C
		}
		select {
		case <-ring:
		case <-uas.Context().Done():
			// CANCEL: sipgo's transaction answered 487 already.
			c.Status, c.Reason = sip.StatusRequestTerminated, "Request Terminated"
			c.end(EndedCancel, nil)
			r := c.report(s, start)
			c.Close()
			return r
		case <-ctx.Done():
			return fail(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", EndedLocal, nil)
		}
	}

	var body []byte
	if late {
		body, err = c.sdp(cfg.Codecs, DefaultDTMFPayloadType, "")
	} else {
		body, err = c.sdp([]prompts.Codec{c.Codec}, offer.DTMF, answerDirection(offer.Direction))
	}
	if err != nil {
		return fail(sip.StatusInternalServerError, "Server Internal Error", EndedError, err)
	}
	c.AnsweredAt = time.Now()
	c.Status, c.Reason = sip.StatusOK, "OK"
	c.recognise()
	res := sip.NewSDPResponseFromRequest(uas.InviteRequest, body)
	res.AppendHeader(c.contact.Clone())
	// WriteResponse retransmits the 200 until the ACK (RFC 3261 13.3.1.4).
	if err := uas.WriteResponse(res); err != nil {
		c.end(EndedError, fmt.Errorf("phone: answer: %w", err))
		r := c.report(s, start)
		c.Close()
		return r
	}
	if s.OnAnswered != nil {
		s.OnAnswered()
	}
	err = c.script(ctx, s)
	time.Sleep(linger)
	r := c.report(s, start)
	if err != nil && r.Error == "" {
		r.Error = telemetry.Scrub(err.Error())
	}
	c.Close()
	return r
}

// onAck confirms a dialog we answered; the ACK of a late offer carries the
// caller's answer.
func (c *Call) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if c.uas == nil {
		return
	}
	if body := req.Body(); len(body) > 0 {
		if md, err := ParseSDP(body); err == nil {
			if codec, ok := firstCommon(md.Codecs, c.opts.Codecs); ok && codec != c.Codec {
				c.Codec = codec
				c.recognise() // in the codec the caller chose
			}
			c.Remote = md
			c.rxDTMFPT.Store(uint32(md.DTMF))
			c.sess.SetPayloadTypes(uint8(c.Codec), md.DTMF)
			c.sess.SetRemote(md.Addr)
		}
	}
	_ = c.uas.ReadAck(req, tx)
}
