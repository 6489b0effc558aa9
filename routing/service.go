package routing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cq12345/hotline/ivr"
)

// AgentView is an agent as the API shows it, with the state at the time
// of the answer.
type AgentView struct {
	*Agent
	State AgentState `json:"state"`
}

func (r *Router) view(a *Agent) AgentView {
	return AgentView{Agent: a, State: a.State(r.o.Now())}
}

// Agents lists the agents (from the store, so also other processes'
// changes).
func (r *Router) Agents(ctx context.Context) ([]AgentView, error) {
	l, err := r.o.Store.Agents(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AgentView, 0, len(l))
	for _, a := range l {
		out = append(out, r.view(a))
	}
	return out, nil
}

// Agent returns one agent.
func (r *Router) Agent(ctx context.Context, id string) (AgentView, error) {
	a, err := r.o.Store.Agent(ctx, id)
	if err != nil {
		return AgentView{}, err
	}
	return r.view(a), nil
}

// AddAgent creates an agent (its presence set atomically at creation: one
// created paused is never rung).
func (r *Router) AddAgent(ctx context.Context, n NewAgent) (AgentView, error) {
	a, err := r.o.Store.AddAgent(ctx, n, r.o.Now())
	if err != nil {
		return AgentView{}, err
	}
	r.setAgent(a)
	r.poke()
	r.log.Info("routing: agent added", "agent", a.ID, "extension", a.Extension, "presence", a.Presence)
	return r.view(a), nil
}

// RemoveAgent deletes an agent who is not on a call.
func (r *Router) RemoveAgent(ctx context.Context, id string) error {
	if err := r.o.Store.RemoveAgent(ctx, id, r.o.Now()); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.agents, id)
	r.mu.Unlock()
	r.log.Info("routing: agent removed", "agent", id)
	return nil
}

// SetAgentState logs an agent in (available), out, or pauses them with a
// reason. actor is who asked, for the log.
func (r *Router) SetAgentState(ctx context.Context, id string, s AgentState, reason, actor string) (AgentView, error) {
	a, err := r.o.Store.SetPresence(ctx, id, s, reason, r.o.Now())
	if err != nil {
		return AgentView{}, err
	}
	r.setAgent(a)
	r.poke()
	r.log.Info("routing: agent state", "agent", id, "presence", s, "reason", reason, "actor", actor)
	return r.view(a), nil
}

// WaitingCall is a call in a queue, as supervisors see it.
type WaitingCall struct {
	Position int     `json:"position"`
	Call     string  `json:"call"`
	Caller   string  `json:"caller"` // masked
	Waited   float64 `json:"waited_s"`
	Lang     string  `json:"lang,omitempty"`
	Case     string  `json:"case,omitempty"`
	Ringing  string  `json:"ringing,omitempty"` // agent being rung
}

// QueueStatus is a queue's configuration, figures and waiting calls.
type QueueStatus struct {
	Queue   Queue         `json:"queue"`
	Figures QueueFigures  `json:"figures"`
	Calls   []WaitingCall `json:"calls,omitempty"`
}

// Queues returns every queue's status (without the waiting calls).
func (r *Router) Queues() []QueueStatus {
	now := r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]QueueStatus, 0, len(r.qorder))
	for _, q := range r.qorder {
		out = append(out, QueueStatus{Queue: q.cfg, Figures: r.queueFiguresLocked(q, now)})
	}
	return out
}

// Queue returns one queue's status with its waiting calls.
func (r *Router) Queue(id string) (QueueStatus, bool) {
	now := r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queues[id]
	if q == nil {
		return QueueStatus{}, false
	}
	st := QueueStatus{Queue: q.cfg, Figures: r.queueFiguresLocked(q, now)}
	for i, w := range q.waiting {
		st.Calls = append(st.Calls, WaitingCall{Position: i + 1, Call: w.call.ID(), Caller: masked(w.call),
			Waited: now.Sub(w.joined).Seconds(), Lang: w.lang, Case: w.caseNum, Ringing: w.ringing})
	}
	return st, true
}

// DestinationStatus is a destination with its transfer figures.
type DestinationStatus struct {
	Destination
	Figures DestinationFigures `json:"figures"`
}

// Destinations lists the configured destinations with their figures.
func (r *Router) Destinations() []DestinationStatus {
	f := r.Figures()
	out := make([]DestinationStatus, 0, len(f.Destinations))
	for i, d := range r.dir.List() {
		out = append(out, DestinationStatus{Destination: d, Figures: f.Destinations[i]})
	}
	return out
}

// Transfer sends a call to a destination named from outside a flow (a
// REFER, an API call): the same toll-fraud guard applies.
func (r *Router) Transfer(ctx context.Context, call ivr.Call, destination, source string) (ivr.Outcome, error) {
	return r.transfer(ctx, call, ivr.Decision{Kind: ivr.KindTransfer, ID: destination}, source)
}

// Callbacks lists callback tasks (states filter; none: all).
func (r *Router) Callbacks(ctx context.Context, states ...string) ([]Callback, error) {
	return r.o.Store.Callbacks(ctx, states...)
}

// TakeCallback gives an open callback task to an agent: hotline rings the
// agent's phone, then calls the citizen, and bridges them. It returns once
// the task is taken and the agent reserved; the calls go on in the
// background (the task ends done, back to open, or failed after
// CallbackAttempts).
func (r *Router) TakeCallback(ctx context.Context, id, agentID string) (Callback, error) {
	a, err := r.o.Store.Agent(ctx, agentID)
	if err != nil {
		return Callback{}, err
	}
	now := r.o.Now()
	cb, err := r.o.Store.TakeCallback(ctx, id, agentID, now)
	if err != nil {
		return Callback{}, err
	}
	holder := r.o.Holder + "/callback-" + cb.ID
	ok, err := r.o.Store.ReserveForCallback(ctx, agentID, holder, cb.Case, now, now.Add(r.o.ReserveTTL))
	if err != nil || !ok {
		r.o.Store.FinishCallback(context.WithoutCancel(ctx), cb.ID, CallbackOpen, "agent not free", r.o.Now())
		if err == nil {
			err = ErrAgentBusy
		}
		return Callback{}, err
	}
	r.mu.Lock()
	r.held[agentID] = &held{holder: holder, activity: Ringing}
	r.mu.Unlock()
	r.wg.Add(1)
	go r.runCallback(cb, a, holder)
	return cb, nil
}

func (r *Router) runCallback(cb Callback, a *Agent, holder string) {
	defer r.wg.Done()
	ctx := r.ctx
	wrap := 10 * time.Second
	if q := r.queues[cb.Queue]; q != nil {
		wrap = q.cfg.WrapUp
	}
	var talk time.Duration // agent and citizen bridged
	finish := func(answered bool, err error) {
		now := r.o.Now()
		rel := Release{Answered: answered, Now: now}
		if answered {
			rel.WrapUntil = now.Add(wrap)
		}
		r.releaseAgent(a.ID, holder, rel)
		state, reason := CallbackDone, ""
		if err != nil {
			state, reason = CallbackOpen, err.Error()
			if cb.Attempts >= r.o.CallbackAttempts {
				state = CallbackFailed
			}
		}
		if ferr := r.o.Store.FinishCallback(context.WithoutCancel(ctx), cb.ID, state, reason, now); ferr != nil {
			r.log.Error("routing: callback state", "callback", cb.ID, "err", ferr)
		}
		r.log.Info("routing: callback ended", "callback", cb.ID, "case", cb.Case, "agent", a.ID, "state", state, "reason", reason)
		if r.o.Callbacks != nil {
			told := cb
			told.Number = "" // the recorder has no use for the citizen's number
			end := CallbackEnd{Callback: told, Agent: a.ID, State: state, Reason: reason, Talk: talk}
			if rerr := r.o.Callbacks.CallbackEnded(context.WithoutCancel(ctx), end); rerr != nil {
				r.log.Error("routing: callback not recorded on its case", "callback", cb.ID, "case", cb.Case, "err", rerr)
			}
		}
		ev := AgentEvent{Kind: "ended", Agent: a.ID, Case: cb.Case, Queue: cb.Queue, Callback: cb.ID, WrapUntil: rel.WrapUntil}
		r.emit(ev)
	}
	cbEvent := func(kind string) {
		r.emit(AgentEvent{Kind: kind, Agent: a.ID, Case: cb.Case, Queue: cb.Queue, Callback: cb.ID, Lang: cb.Lang})
	}
	leg, err := r.o.Dialer.RingAgent(ctx, AgentRing{Agent: *a, CaseNumber: cb.Case, Queue: cb.Queue, Timeout: r.o.CallbackRing})
	if err == nil {
		cbEvent("ringing")
		err = waitAnswer(ctx, leg, r.o.CallbackRing, nil, nil, nil)
	}
	if err != nil {
		finish(false, fmt.Errorf("agent leg: %s", reasonOf(err)))
		return
	}
	r.o.Store.Hold(ctx, a.ID, holder, OnCall, r.o.Now().Add(r.o.ReserveTTL))
	r.mu.Lock()
	if h := r.held[a.ID]; h != nil {
		h.activity = OnCall
	}
	r.mu.Unlock()
	cbEvent("connected")
	// The agent hears that the citizen is being called (agents work in
	// zh-CN whatever the citizen's language).
	leg.Play(ctx, []string{r.key(ivr.DefaultLanguage, "callback-connecting")}, false)
	citizen, err := r.o.Dialer.DialOut(ctx, Outbound{Number: cb.Number, Trunk: r.cfg.CallbackTrunk, CaseNumber: cb.Case, Timeout: r.o.CallbackRing})
	if err == nil {
		err = r.ringWait(ctx, leg, citizen, r.o.CallbackRing, leg.Done())
	}
	if err != nil {
		if !isDone(leg) {
			leg.Play(ctx, []string{r.key(ivr.DefaultLanguage, "callback-no-answer")}, false)
			leg.Hangup(context.WithoutCancel(ctx), "callback: citizen not reached")
		}
		finish(true, fmt.Errorf("citizen leg: %s", reasonOf(err)))
		return
	}
	bridged := r.o.Now()
	berr := r.o.Dialer.Bridge(ctx, leg, citizen)
	talk = r.o.Now().Sub(bridged)
	for _, c := range []Leg{leg, citizen} {
		if !isDone(c) {
			c.Hangup(context.WithoutCancel(ctx), "callback ended")
		}
	}
	if berr != nil && !errors.Is(berr, context.Canceled) {
		r.log.Warn("routing: callback bridge", "callback", cb.ID, "err", berr)
	}
	finish(true, nil)
}
