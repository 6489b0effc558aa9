package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/routing"
	"github.com/cq12345/hotline/telemetry"
)

// Routing is what the routing routes serve from; *routing.Router
// implements it.
type Routing interface {
	Destinations() []routing.DestinationStatus
	Queues() []routing.QueueStatus
	Queue(id string) (routing.QueueStatus, bool)
	Figures() routing.Figures
	Agents(ctx context.Context) ([]routing.AgentView, error)
	Agent(ctx context.Context, id string) (routing.AgentView, error)
	AddAgent(ctx context.Context, n routing.NewAgent) (routing.AgentView, error)
	RemoveAgent(ctx context.Context, id string) error
	SetAgentState(ctx context.Context, id string, s routing.AgentState, reason, actor string) (routing.AgentView, error)
	Callbacks(ctx context.Context, states ...string) ([]routing.Callback, error)
	TakeCallback(ctx context.Context, id, agentID string) (routing.Callback, error)
	Subscribe(agentID string) (<-chan routing.AgentEvent, func())
	TransferCall(ctx context.Context, callID, destination, by string) error
}

// TransferCallRequest is the body of POST /api/v1/calls/{id}/transfer.
type TransferCallRequest struct {
	// Destination is a configured destination's id ("12315"); anything
	// else is refused (403) and logged.
	Destination string `json:"destination"`
}

// DestinationList is the body of GET /api/v1/destinations.
type DestinationList struct {
	Destinations []routing.DestinationStatus `json:"destinations"`
}

// QueueList is the body of GET /api/v1/queues.
type QueueList struct {
	Queues []routing.QueueStatus `json:"queues"`
}

// AgentList is the body of GET /api/v1/agents.
type AgentList struct {
	Agents []routing.AgentView `json:"agents"`
}

// AgentStateRequest is the body of PUT /api/v1/agents/{id}/state.
type AgentStateRequest struct {
	State  routing.AgentState `json:"state"` // logged-out, available, paused
	Reason string             `json:"reason,omitempty"`
}

// CallbackView is a callback task with the number masked.
type CallbackView struct {
	routing.Callback
	Number string `json:"number"` // masked
}

// CallbackList is the body of GET /api/v1/callbacks.
type CallbackList struct {
	Callbacks []CallbackView `json:"callbacks"`
}

// TakeCallbackRequest is the body of POST /api/v1/callbacks/{id}/take.
type TakeCallbackRequest struct {
	Agent string `json:"agent"`
}

var (
	routingReaders = []auth.Role{auth.Admin, auth.Supervisor, auth.Agent, auth.Auditor}
	agentManagers  = []auth.Role{auth.Admin}
	stateChangers  = []auth.Role{auth.Admin, auth.Supervisor, auth.Agent}
)

func (s *Server) routingRoutes() {
	if s.cfg.Routing == nil {
		return
	}
	m := s.mux
	m.Handle("GET /api/v1/destinations", s.routingRole(routingReaders, s.listDestinations))
	m.Handle("GET /api/v1/queues", s.routingRole(routingReaders, s.listQueues))
	m.Handle("GET /api/v1/queues/{id}", s.routingRole(routingReaders, s.showQueue))
	m.Handle("GET /api/v1/routing/figures", s.routingRole(routingReaders, s.routingFigures))
	m.Handle("GET /api/v1/agents", s.routingRole(routingReaders, s.listAgents))
	m.Handle("POST /api/v1/agents", s.routingRole(agentManagers, s.addAgent))
	m.Handle("GET /api/v1/agents/{id}", s.routingRole(routingReaders, s.showAgent))
	m.Handle("DELETE /api/v1/agents/{id}", s.routingRole(agentManagers, s.removeAgent))
	m.Handle("PUT /api/v1/agents/{id}/state", s.routingRole(stateChangers, s.setAgentState))
	m.Handle("GET /api/v1/agents/{id}/events", s.routingRole(stateChangers, s.agentEvents))
	m.Handle("GET /api/v1/callbacks", s.routingRole(routingReaders, s.listCallbacks))
	m.Handle("POST /api/v1/callbacks/{id}/take", s.routingRole(stateChangers, s.takeCallback))
	m.Handle("POST /api/v1/calls/{id}/transfer", s.routingRole(stateChangers, s.transferCall))
}

// routingRole admits the given roles and maps the routing errors.
func (s *Server) routingRole(roles []auth.Role, h handlerFunc) http.Handler {
	return s.role(roles, func(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
		err := h(w, r, tok)
		id := r.PathValue("id")
		switch {
		case err == nil:
			return nil
		case errors.Is(err, routing.ErrNoAgent):
			return &Error{Message: "no such agent", Code: CodeNotFound, ID: id}
		case errors.Is(err, routing.ErrNoCallback):
			return &Error{Message: "no such open callback task", Code: CodeNotFound, ID: id}
		case errors.Is(err, routing.ErrNotBridged):
			return &Error{Message: "no such call talking with an agent or a line", Code: CodeNotFound, ID: id}
		case errors.Is(err, routing.ErrNotConfigured):
			return forbidden("%v (toll-fraud guard: only configured destinations)", err)
		case errors.Is(err, routing.ErrBadAgent):
			return badRequest("%v", err)
		case errors.Is(err, routing.ErrAgentExists), errors.Is(err, routing.ErrAgentBusy):
			writeError(w, http.StatusConflict, &Error{Message: err.Error(), Code: CodeConflict, ID: id})
			return nil
		}
		return err
	})
}

// mayActFor: an agent token acts only for the agent of its name (工号).
func mayActFor(tok *auth.Token, agentID string) error {
	if tok.Role == auth.Agent && tok.Name != agentID {
		return forbidden("an agent may only act for themselves (%s)", tok.Name)
	}
	return nil
}

func (s *Server) listDestinations(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	writeJSON(w, http.StatusOK, DestinationList{Destinations: s.cfg.Routing.Destinations()})
	return nil
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	writeJSON(w, http.StatusOK, QueueList{Queues: s.cfg.Routing.Queues()})
	return nil
}

func (s *Server) showQueue(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	q, ok := s.cfg.Routing.Queue(r.PathValue("id"))
	if !ok {
		return &Error{Message: "no such queue", Code: CodeNotFound, ID: r.PathValue("id")}
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}

func (s *Server) routingFigures(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	writeJSON(w, http.StatusOK, s.cfg.Routing.Figures())
	return nil
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	l, err := s.cfg.Routing.Agents(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, AgentList{Agents: l})
	return nil
}

func (s *Server) showAgent(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	a, err := s.cfg.Routing.Agent(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) addAgent(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	var n routing.NewAgent
	if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
		return badRequest("body: %v", err)
	}
	a, err := s.cfg.Routing.AddAgent(r.Context(), n)
	if err != nil {
		return err
	}
	s.log.Info("api: agent added", "agent", a.ID, "actor", tok.Name)
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) removeAgent(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	if err := s.cfg.Routing.RemoveAgent(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	s.log.Info("api: agent removed", "agent", r.PathValue("id"), "actor", tok.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) setAgentState(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	id := r.PathValue("id")
	if err := mayActFor(tok, id); err != nil {
		return err
	}
	var req AgentStateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	a, err := s.cfg.Routing.SetAgentState(r.Context(), id, req.State, strings.TrimSpace(req.Reason), tok.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// EventHeartbeat is how often an idle event stream gets a comment line,
// so that proxies keep it open.
const EventHeartbeat = 15 * time.Second

// agentEvents streams an agent's call events (Server-Sent Events, one JSON
// routing.AgentEvent per "data:" line, the kind as "event:"): the case of
// the call ringing, its answer, its end. An agent streams only their own.
func (s *Server) agentEvents(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	id := r.PathValue("id")
	if err := mayActFor(tok, id); err != nil {
		return err
	}
	if _, err := s.cfg.Routing.Agent(r.Context(), id); err != nil {
		return err
	}
	events, cancel := s.cfg.Routing.Subscribe(id)
	defer cancel()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": agent "+id+"\n\n")
	rc.Flush()
	beat := time.NewTicker(EventHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-beat.C:
			fmt.Fprint(w, ": heartbeat\n\n")
		case e := <-events:
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Kind, b)
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

func (s *Server) listCallbacks(w http.ResponseWriter, r *http.Request, _ *auth.Token) error {
	var states []string
	if st := r.URL.Query().Get("state"); st != "" {
		states = strings.Split(st, ",")
	}
	l, err := s.cfg.Routing.Callbacks(r.Context(), states...)
	if err != nil {
		return err
	}
	out := CallbackList{Callbacks: make([]CallbackView, 0, len(l))}
	for _, c := range l {
		out.Callbacks = append(out.Callbacks, CallbackView{Callback: c, Number: telemetry.MaskNumber(c.Number)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) takeCallback(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	var req TakeCallbackRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	if req.Agent == "" && tok.Role == auth.Agent {
		req.Agent = tok.Name
	}
	if err := mayActFor(tok, req.Agent); err != nil {
		return err
	}
	c, err := s.cfg.Routing.TakeCallback(r.Context(), r.PathValue("id"), req.Agent)
	if err != nil {
		return err
	}
	s.log.Info("api: callback taken", "callback", c.ID, "agent", req.Agent, "actor", tok.Name)
	writeJSON(w, http.StatusAccepted, CallbackView{Callback: c, Number: telemetry.MaskNumber(c.Number)})
	return nil
}

// transferCall sends a caller who talks with an agent or a line on to a
// configured destination (the agent's desktop, a supervisor); the call id
// is the one the agent's events carry.
func (s *Server) transferCall(w http.ResponseWriter, r *http.Request, tok *auth.Token) error {
	var req TransferCallRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return badRequest("body: %v", err)
	}
	if req.Destination == "" {
		return badRequest("destination: required")
	}
	by := string(tok.Role) + " " + tok.Name
	if err := s.cfg.Routing.TransferCall(r.Context(), r.PathValue("id"), req.Destination, by); err != nil {
		return err
	}
	s.log.Info("api: call transfer requested", "call", r.PathValue("id"), "destination", req.Destination, "actor", tok.Name)
	writeJSON(w, http.StatusAccepted, map[string]string{"call": r.PathValue("id"), "destination": req.Destination, "state": "transferring"})
	return nil
}
