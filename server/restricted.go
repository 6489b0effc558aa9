package server

import (
	"context"
	"log/slog"

	"github.com/cq12345/hotline/abuse"
	"github.com/cq12345/hotline/ivr"
)

// verdictRouter sends the queue decisions of a caller under the article-26
// "restricted" measure to the supervisors' queue (abuse.SupervisorQueue),
// when the site configures one; everything else goes to the router as is.
type verdictRouter struct {
	next   ivr.Router
	queues map[string]bool
	log    *slog.Logger
}

func (r verdictRouter) Route(ctx context.Context, call ivr.Call, d ivr.Decision) (ivr.Outcome, error) {
	if v, ok := abuse.VerdictFrom(ctx); ok && v.Measure == abuse.Restricted && v.Queue != "" && d.Kind == ivr.KindQueue {
		if r.queues[v.Queue] {
			r.log.Info("article 26: restricted caller routed to the supervisors", "call", call.ID(), "from_queue", d.ID, "queue", v.Queue)
			d.ID = v.Queue
		} else {
			r.log.Warn("article 26: restricted caller, but no supervisor queue is configured", "call", call.ID(), "queue", v.Queue)
		}
	}
	return r.next.Route(ctx, call, d)
}
