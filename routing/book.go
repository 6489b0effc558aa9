package routing

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/cq12345/hotline/ivr"
)

// CallbackRecorder writes what became of a callback task on the call's
// case (hotlined: an event in the case store; routing imports no case
// code). The router calls it once per attempt, when the attempt ends.
type CallbackRecorder interface {
	CallbackEnded(ctx context.Context, e CallbackEnd) error
}

// CallbackEnd is one ended attempt of a callback task.
type CallbackEnd struct {
	Callback Callback // the task as taken (Case, Queue, CallID, Attempts), without the number
	Agent    string   // the agent who took it
	// State is the task's state after the attempt: CallbackDone (agent
	// and citizen talked), CallbackOpen (to be tried again) or
	// CallbackFailed.
	State  string
	Reason string        // why an attempt failed ("citizen leg: busy")
	Talk   time.Duration // how long agent and citizen were bridged
}

// RequestCallback implements ivr.CallbackRequester: a caller who chose a
// callback in the flow (no agent could take the call) gets a callback task,
// linked to the call's case when the call knows it (CaseNumberer).
func (r *Router) RequestCallback(ctx context.Context, req ivr.CallbackRequest) error {
	num := req.Number
	if num == "" || strings.Trim(strings.TrimPrefix(num, "+"), "0123456789") != "" {
		return errors.New("routing: no number to call back")
	}
	cb := Callback{CallID: req.CallID, Number: num, Queue: req.Vars["queue"], Lang: req.Vars["lang"],
		Case: req.Vars["case_number_own"]}
	if cb.Queue == "" {
		cb.Queue = "general"
	}
	got, created, err := r.o.Store.AddCallback(ctx, cb, r.o.Now())
	if err != nil {
		return err
	}
	if created {
		r.mu.Lock()
		r.cbs++
		r.mu.Unlock()
	}
	r.log.Info("routing: callback task (asked for in the flow)", "callback", got.ID, "case", got.Case, "new", created)
	return nil
}
