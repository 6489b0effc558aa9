package client

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/routing"
)

// Destinations lists the configured destinations with their figures.
func (c *Client) Destinations(ctx context.Context) ([]routing.DestinationStatus, error) {
	var out api.DestinationList
	err := c.do(ctx, http.MethodGet, "/api/v1/destinations", nil, nil, &out)
	return out.Destinations, err
}

// Queues lists the queues with their live figures.
func (c *Client) Queues(ctx context.Context) ([]routing.QueueStatus, error) {
	var out api.QueueList
	err := c.do(ctx, http.MethodGet, "/api/v1/queues", nil, nil, &out)
	return out.Queues, err
}

// Queue returns one queue with its waiting calls.
func (c *Client) Queue(ctx context.Context, id string) (*routing.QueueStatus, error) {
	var out routing.QueueStatus
	if err := c.do(ctx, http.MethodGet, "/api/v1/queues/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RoutingFigures returns the live figures of queues and destinations.
func (c *Client) RoutingFigures(ctx context.Context) (*routing.Figures, error) {
	var out routing.Figures
	if err := c.do(ctx, http.MethodGet, "/api/v1/routing/figures", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Agents lists the agents and their states.
func (c *Client) Agents(ctx context.Context) ([]routing.AgentView, error) {
	var out api.AgentList
	err := c.do(ctx, http.MethodGet, "/api/v1/agents", nil, nil, &out)
	return out.Agents, err
}

// Agent returns one agent.
func (c *Client) Agent(ctx context.Context, id string) (*routing.AgentView, error) {
	var out routing.AgentView
	if err := c.do(ctx, http.MethodGet, "/api/v1/agents/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddAgent creates an agent (admin).
func (c *Client) AddAgent(ctx context.Context, n routing.NewAgent) (*routing.AgentView, error) {
	var out routing.AgentView
	if err := c.do(ctx, http.MethodPost, "/api/v1/agents", nil, n, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveAgent deletes an agent (admin).
func (c *Client) RemoveAgent(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/agents/"+url.PathEscape(id), nil, nil, nil)
}

// SetAgentState logs an agent in or out or pauses them.
func (c *Client) SetAgentState(ctx context.Context, id string, state routing.AgentState, reason string) (*routing.AgentView, error) {
	var out routing.AgentView
	if err := c.do(ctx, http.MethodPut, "/api/v1/agents/"+url.PathEscape(id)+"/state", nil, api.AgentStateRequest{State: state, Reason: reason}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Callbacks lists callback tasks (numbers masked), optionally by state.
func (c *Client) Callbacks(ctx context.Context, states ...string) ([]api.CallbackView, error) {
	var q url.Values
	if len(states) > 0 {
		q = url.Values{"state": {strings.Join(states, ",")}}
	}
	var out api.CallbackList
	err := c.do(ctx, http.MethodGet, "/api/v1/callbacks", q, nil, &out)
	return out.Callbacks, err
}

// TakeCallback gives a callback task to an agent: hotline rings the agent,
// then the citizen.
func (c *Client) TakeCallback(ctx context.Context, id, agent string) (*api.CallbackView, error) {
	var out api.CallbackView
	if err := c.do(ctx, http.MethodPost, "/api/v1/callbacks/"+url.PathEscape(id)+"/take", nil, api.TakeCallbackRequest{Agent: agent}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TransferCall sends a caller who talks with an agent or a line on to a
// configured destination.
func (c *Client) TransferCall(ctx context.Context, callID, destination string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/calls/"+url.PathEscape(callID)+"/transfer", nil, api.TransferCallRequest{Destination: destination}, nil)
}

// AgentEvents streams an agent's call events until ctx ends (the channel
// is closed then, or when the server ends the stream).
func (c *Client) AgentEvents(ctx context.Context, id string) (<-chan routing.AgentEvent, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/agents/"+url.PathEscape(id)+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// No overall timeout: the stream lasts.
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		se := &StatusError{Status: resp.StatusCode}
		if json.NewDecoder(resp.Body).Decode(&se.Body) != nil || se.Body.Message == "" {
			se.Body.Message = resp.Status
		}
		return nil, se
	}
	out := make(chan routing.AgentEvent, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e routing.AgentEvent
			if json.Unmarshal([]byte(data), &e) != nil {
				continue
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
