package sip

import (
	"context"
	"strings"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/routing"
	"github.com/emiago/sipgo/sip"
)

// REFER (RFC 3515) is the way a phone asks us to transfer a call. A REFER
// naming anything but a configured destination is refused with 403 and
// logged (toll-fraud protection, issue 4): a caller's or an agent's phone
// must not be able to make the hotline dial arbitrary numbers.

// Destinations is the toll-fraud guard: routing.Directory.
type Destinations interface {
	Allowed(id, source string) (routing.Destination, bool)
	List() []routing.Destination
}

// Transferer carries out an allowed transfer: routing.Router.Transfer.
type Transferer interface {
	Transfer(ctx context.Context, call ivr.Call, destination, source string) (ivr.Outcome, error)
}

func (s *Server) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	var target string
	if h := req.GetHeader("Refer-To"); h != nil {
		var u sip.Uri
		v := strings.Trim(strings.TrimSpace(h.Value()), "<>")
		if i := strings.IndexByte(v, '>'); i >= 0 {
			v = v[:i]
		}
		if err := sip.ParseUri(v, &u); err == nil {
			target = u.User
			if strings.EqualFold(u.Scheme, "tel") {
				target, _, _ = strings.Cut(u.Raw(), ";")
			}
		}
	}
	if target == "" {
		s.respond(req, tx, 400, "Bad Request", sip.NewHeader("Warning", `399 hotline "Refer-To missing or unreadable"`))
		return
	}
	// From the caller (an inbound call) or from an agent's or a line's
	// phone (an outbound leg: what is transferred is the call bridged to
	// it).
	var subject ivr.Call
	var callCtx context.Context
	var bridged *leg // the REFER came from a leg in a Bridge
	if c := s.lookup(req); c != nil {
		subject, callCtx = c, c.ctx
	} else if l := s.legOf(req); l != nil {
		l.mu.Lock()
		peer := l.peer
		l.mu.Unlock()
		subject, callCtx = peer, context.Background()
		if peer == nil {
			subject = l
		} else {
			bridged = l
		}
	}
	if subject == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	log := s.log.With("call_id", subject.ID())
	if s.cfg.Destinations == nil {
		log.Warn("REFER refused: no destinations configured")
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	// A destination is named by its id or its number.
	id := target
	for _, d := range s.cfg.Destinations.List() {
		if d.Number == target {
			id = d.ID
			break
		}
	}
	if _, ok := s.cfg.Destinations.Allowed(id, "refer"); !ok {
		// Allowed logged the refusal (scrubbed).
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	if s.cfg.Transfers == nil {
		s.respond(req, tx, 501, "Not Implemented")
		return
	}
	if bridged != nil {
		// The agent's or line's phone sends the caller on: the Bridge it is
		// in returns a routing.TransferRequest, and the router, which owns
		// the caller, does the transfer (no second goroutine driving the
		// caller's media beside the flow).
		select {
		case bridged.refers <- id:
		default:
			s.respond(req, tx, 491, "Request Pending")
			return
		}
		s.respond(req, tx, 202, "Accepted")
		log.Info("REFER accepted: the bridge hands the caller to the router", "destination", id, "by", bridged.what)
		return
	}
	s.respond(req, tx, 202, "Accepted")
	log.Info("REFER accepted", "destination", id)
	s.callWG.Add(1)
	go func() {
		defer s.callWG.Done()
		ctx, cancel := context.WithTimeout(callCtx, 10*time.Minute)
		defer cancel()
		if _, err := s.cfg.Transfers.Transfer(ctx, subject, id, "refer"); err != nil {
			log.Warn("REFER transfer failed", "destination", id, "error", err)
		}
	}()
}
