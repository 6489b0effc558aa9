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
	c := s.lookup(req)
	if c == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if s.cfg.Destinations == nil {
		s.log.Warn("REFER refused: no destinations configured", "call_id", c.id)
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
	s.respond(req, tx, 202, "Accepted")
	c.log.Info("REFER accepted", "destination", id)
	s.callWG.Add(1)
	go func() {
		defer s.callWG.Done()
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Minute)
		defer cancel()
		if _, err := s.cfg.Transfers.Transfer(ctx, c, id, "refer"); err != nil {
			c.log.Warn("REFER transfer failed", "destination", id, "error", err)
		}
	}()
}
