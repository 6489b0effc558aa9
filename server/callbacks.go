package server

import (
	"context"
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
