package server

import (
	"context"
	"fmt"
	"maps"

	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/routing"
)

// callbackBooker books the callbacks callers ask for in the flow as the
// router's callback tasks, linked to the call's case.
type callbackBooker struct {
	router *routing.Router
	cases  cases.Store
}

func (b callbackBooker) RequestCallback(ctx context.Context, req ivr.CallbackRequest) error {
	if c, err := b.cases.GetByCall(ctx, req.CallID); err == nil {
		req.Vars = maps.Clone(req.Vars)
		if req.Vars == nil {
			req.Vars = map[string]string{}
		}
		req.Vars["case_number_own"] = c.Number
	}
	return b.router.RequestCallback(ctx, req)
}

// callbackRecorder implements routing.CallbackRecorder: a callback that
// connected the agent and the citizen is written on the call's case as a
// routed event naming the queue and the agent who called back, by
// "callback <task id>" (the case's agent becomes that agent; the outcome
// of the call itself, abandoned or callback requested, stays). Attempts
// that reached nobody are only in the task (its reason and attempts).
//
// Wire it in routing.Options.Callbacks.
type callbackRecorder struct {
	cases cases.Store
}

func (r callbackRecorder) CallbackEnded(ctx context.Context, e routing.CallbackEnd) error {
	if e.State != routing.CallbackDone || e.Callback.Case == "" {
		return nil
	}
	c, err := r.cases.Get(ctx, e.Callback.Case)
	if err != nil {
		return fmt.Errorf("callback %s: case %s: %w", e.Callback.ID, e.Callback.Case, err)
	}
	ev := cases.NewEvent(c.ID, cases.EventRouted)
	ev.Queue, ev.Agent, ev.Account = e.Callback.Queue, e.Agent, "callback "+e.Callback.ID
	if err := r.cases.AppendEvent(ctx, ev); err != nil {
		return fmt.Errorf("callback %s: case %s: %w", e.Callback.ID, e.Callback.Case, err)
	}
	return nil
}
