package routing

import "time"

// AgentEvent tells an agent's screen what happens to their phone: the case
// of the call ringing (the same number as the X-Hotline-Case header of the
// INVITE), its answer, its end. Caller numbers are masked: the phone's own
// display shows the number of a call routed to the agent.
type AgentEvent struct {
	// Kind is "ringing", "connected", "missed", "unreachable" (the phone had no registration) or "ended".
	Kind   string            `json:"kind"`
	Agent  string            `json:"agent"`
	Call   string            `json:"call,omitempty"`
	Case   string            `json:"case,omitempty"`
	Queue  string            `json:"queue,omitempty"`
	Caller string            `json:"caller,omitempty"` // masked
	Lang   string            `json:"lang,omitempty"`
	Vars   map[string]string `json:"vars,omitempty"`
	// Callback is the callback task's id for the legs of a callback.
	Callback  string    `json:"callback,omitempty"`
	WrapUntil time.Time `json:"wrap_until,omitzero"`
	At        time.Time `json:"at"`
}

// Subscribe returns the events of one agent's calls handled by this
// process, until cancel is called. A slow reader loses events rather than
// holding up the ACD.
func (r *Router) Subscribe(agentID string) (<-chan AgentEvent, func()) {
	ch := make(chan AgentEvent, 32)
	r.mu.Lock()
	if r.subs == nil {
		r.subs = map[string]map[chan AgentEvent]struct{}{}
	}
	if r.subs[agentID] == nil {
		r.subs[agentID] = map[chan AgentEvent]struct{}{}
	}
	r.subs[agentID][ch] = struct{}{}
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		delete(r.subs[agentID], ch)
		if len(r.subs[agentID]) == 0 {
			delete(r.subs, agentID)
		}
		r.mu.Unlock()
	}
}

func (r *Router) emit(e AgentEvent) {
	e.At = r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.subs[e.Agent] {
		select {
		case ch <- e:
		default:
		}
	}
}

func (r *Router) callEvent(kind string, w *waiter, agentID string) AgentEvent {
	r.mu.Lock()
	q := w.q.cfg.ID
	r.mu.Unlock()
	return AgentEvent{Kind: kind, Agent: agentID, Call: w.call.ID(), Case: w.caseNum, Queue: q, Caller: masked(w.call), Lang: w.lang, Vars: w.vars}
}
