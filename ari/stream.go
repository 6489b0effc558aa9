package ari

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// StreamHandler receives what an event stream sees. Its methods are called
// from the stream's single goroutine, in order; they must not block for
// long (Connected may make a few REST requests, bounded by their timeouts:
// events of the new connection wait in the socket meanwhile).
type StreamHandler interface {
	// Connected is called after each successful (re)connection, before the
	// first event read on it. n counts connections from 1. Asterisk does
	// not replay events missed while disconnected: this is where the
	// application resynchronises from REST state.
	Connected(ctx context.Context, n int)
	// Event is called for each message, in arrival order.
	Event(ev Event)
	// Disconnected is called when a connection ends, with the reason.
	Disconnected(err error)
}

// StreamConfig tunes the events WebSocket.
type StreamConfig struct {
	// App is the Stasis application to register (required).
	App string
	// MinBackoff and MaxBackoff bound the reconnect delay, which doubles
	// after each failed attempt, with jitter (defaults 250 ms and 15 s).
	MinBackoff, MaxBackoff time.Duration
	// PingInterval is how often the connection is checked with a
	// WebSocket ping (default 10 s); a ping not answered within the
	// interval drops the connection and reconnects.
	PingInterval time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// RunStream connects to the events WebSocket of cfg.App and delivers events
// to h until ctx is done, reconnecting with exponential backoff and jitter.
// Connecting registers the application with Asterisk, so a reconnect also
// re-registers it. It returns ctx's error.
func (c *Client) RunStream(ctx context.Context, cfg StreamConfig, h StreamHandler) error {
	if cfg.App == "" {
		return errors.New("ari: stream: no application name")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(15*time.Second, cfg.MinBackoff)
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	n, failures := 0, 0
	for {
		conn, err := c.dialEvents(ctx, cfg.App)
		if err == nil {
			n++
			failures = 0
			log.Info("ari: events connected", "app", cfg.App, "connection", n)
			h.Connected(ctx, n)
			err = c.readEvents(ctx, conn, cfg.PingInterval, h)
			conn.CloseNow()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.Disconnected(err)
			log.Warn("ari: events disconnected", "app", cfg.App, "err", err)
		} else {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			log.Warn("ari: events connect failed", "app", cfg.App, "err", err, "attempt", failures+1)
		}
		d := backoff(cfg.MinBackoff, cfg.MaxBackoff, failures)
		failures++
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// backoff is min*2^n capped at max, with "equal jitter": half fixed, half
// random, so that many clients do not reconnect in lock-step after an
// Asterisk restart yet the delay still grows.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := hi
	if n < 30 && lo<<n < hi && lo<<n > 0 {
		d = lo << n
	}
	return d/2 + rand.N(d/2+1)
}

func (c *Client) dialEvents(ctx context.Context, app string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	req.SetBasicAuth(c.user, c.pass)
	conn, resp, err := websocket.Dial(ctx, c.eventsURL(app).String(), &websocket.DialOptions{
		HTTPClient: c.http,
		HTTPHeader: http.Header{"Authorization": req.Header.Values("Authorization")},
	})
	if err != nil {
		if resp != nil && resp.StatusCode >= 300 {
			return nil, &Error{Method: http.MethodGet, Path: "/events", Status: resp.StatusCode}
		}
		return nil, fmt.Errorf("ari: events: %w", err)
	}
	conn.SetReadLimit(4 << 20)
	return conn, nil
}

func (c *Client) readEvents(ctx context.Context, conn *websocket.Conn, ping time.Duration, h StreamHandler) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		t := time.NewTicker(ping)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(ctx, ping)
				err := conn.Ping(pctx)
				pcancel()
				if err != nil && ctx.Err() == nil {
					cancel(fmt.Errorf("ari: events: ping: %w", err))
					return
				}
			}
		}
	}()
	defer func() { cancel(nil); <-pingDone }()
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
				return cause
			}
			return err
		}
		if typ != websocket.MessageText {
			continue
		}
		ev, err := DecodeEvent(data)
		if err != nil {
			// A message we cannot even parse is logged by the handler as an
			// unknown event; a malformed frame must not end the stream.
			ev = &UnknownEvent{MessageBase: MessageBase{Type: ""}, Raw: data}
		}
		h.Event(ev)
	}
}
