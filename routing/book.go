package routing

import (
	"context"
	"errors"
	"strings"

	"github.com/cq12345/hotline/ivr"
)

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
