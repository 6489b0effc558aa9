package ari

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/routing"
	"github.com/cq12345/hotline/telemetry"
)

// Handler serves one call, with the same shape as the sip plane's: the
// call ends for the plane when ServeCall returns (a call still up is hung
// up then).
type Handler interface {
	ServeCall(ctx context.Context, c ivr.Call)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, c ivr.Call)

// ServeCall calls f.
func (f HandlerFunc) ServeCall(ctx context.Context, c ivr.Call) { f(ctx, c) }

// Config configures the ARI plane (hotlined --plane ari).
type Config struct {
	// URL of Asterisk's HTTP server (http.conf), e.g. http://127.0.0.1:8088.
	URL string
	// User and Password of an ari.conf user.
	User, Password string
	// App is the Stasis application name the dialplan uses: Stasis(<App>,…).
	App string
	// RequestTimeout bounds each REST request (default 5 s).
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound WebSocket reconnects (defaults 250 ms, 15 s).
	MinBackoff, MaxBackoff time.Duration
	// QueueSize is the per-call event queue (default 64). See call.deliver
	// for what happens when it is full.
	QueueSize int
	// ShutdownTimeout bounds the REST requests that hand live calls back
	// to the dialplan when Run's context ends (default 3 s).
	ShutdownTimeout time.Duration
	// HasPrompt, when set, says whether an audio key ("zh-CN/greeting")
	// exists; Play refuses unknown keys at once, as the sip plane does,
	// instead of learning it from a failed playback.
	HasPrompt func(key string) bool
	// Logger (default slog.Default()).
	Logger *slog.Logger

	// Dialling (the plane as the router's routing.Dialer, dialer.go).
	//
	// AgentEndpoint is the dial string of an agent's phone, {ext} replaced
	// by the agent's extension (default "PJSIP/{ext}": pjsip.conf names
	// each agent's endpoint by its extension, see deploy/asterisk).
	AgentEndpoint string
	// TrunkEndpoint is the PJSIP endpoint outbound calls use (default
	// "trunk"); the INVITE goes to the destination's trunk URI.
	TrunkEndpoint string
	// Trunk is the default trunk URI (sip:host:port) for destinations
	// without their own and for callbacks (hotlined --trunk).
	Trunk string
	// HotlineNumber is the calling number presented when the caller's
	// is withheld (default 12345).
	HotlineNumber string
	// Destinations checks the emergency lines an agent's code dials.
	Destinations interface {
		Allowed(id, source string) (routing.Destination, bool)
	}
	// EmergencyCodes maps the digit an agent keys after '*' during a
	// bridge to a destination id (default 1: 110, 2: 119, 3: 120).
	EmergencyCodes map[byte]string
	// Flagger receives the agent's *7 (article 26).
	Flagger Flagger
}

// Plane runs the Stasis application: each channel that enters
// Stasis(<App>) as an inbound call becomes an ivr.Call served by a Handler.
type Plane struct {
	cfg    Config
	client *Client
	log    *slog.Logger

	mu       sync.Mutex
	calls    map[string]*call // by channel id
	stopping bool
	handlers sync.WaitGroup // ServeCall goroutines
	pumps    sync.WaitGroup // per-call event pumps
}

// New checks cfg and returns a Plane; it does not connect.
func New(cfg Config) (*Plane, error) {
	if cfg.App == "" {
		return nil, errors.New("ari: config: no application name (--ari-app)")
	}
	c, err := NewClient(ClientConfig{URL: cfg.URL, User: cfg.User, Password: cfg.Password, RequestTimeout: cfg.RequestTimeout})
	if err != nil {
		return nil, err
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 64
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 3 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Plane{cfg: cfg, client: c, log: log.With("plane", "ari", "app", cfg.App), calls: map[string]*call{}}, nil
}

// ActiveCalls is the number of inbound calls the plane carries now (for
// /healthz, like the sip plane's: legs to agents and lines not counted).
func (p *Plane) ActiveCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		if c.out == nil {
			n++
		}
	}
	return n
}

// Client is the plane's ARI client (for bridging and originate).
func (p *Plane) Client() *Client { return p.client }

// Run serves calls until ctx ends. On return every goroutine it started has
// ended; calls still up were handed back to the dialplan (continue: the
// priority after Stasis() runs, see deploy/asterisk/extensions.conf) or, if
// that failed, hung up.
func Run(ctx context.Context, cfg Config, h Handler) error {
	p, err := New(cfg)
	if err != nil {
		return err
	}
	return p.Run(ctx, h)
}

// Run serves calls with h until ctx ends (see the package-level Run).
func (p *Plane) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("ari: nil handler")
	}
	sh := &streamHandler{p: p, h: h, ctx: ctx}
	err := p.client.RunStream(ctx, StreamConfig{App: p.cfg.App, MinBackoff: p.cfg.MinBackoff, MaxBackoff: p.cfg.MaxBackoff, Logger: p.log}, sh)
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	// Handlers see ctx done and return; their exit path hands calls back.
	p.handlers.Wait()
	// Calls whose StasisEnd never came (the stream is closed) end here.
	p.mu.Lock()
	left := make([]*call, 0, len(p.calls))
	for _, c := range p.calls {
		left = append(left, c)
	}
	p.mu.Unlock()
	for _, c := range left {
		c.end("shutdown")
	}
	p.pumps.Wait()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

type streamHandler struct {
	p   *Plane
	h   Handler
	ctx context.Context
}

func (s *streamHandler) Disconnected(error) {}

// Connected resynchronises after every connection: Asterisk does not replay
// events missed while no socket was connected (transcript ws-reconnect:
// a DTMF during the gap was never delivered), but REST state is intact.
// So: channels of ours that are gone are ended; live channels in our
// application that we do not know (StasisStart missed, or a restart of
// hotlined) are adopted; and playbacks we wait for are checked, since their
// PlaybackFinished may have been missed.
func (s *streamHandler) Connected(ctx context.Context, n int) {
	p := s.p
	app, err := p.client.ApplicationsGet(ctx, p.cfg.App)
	if err != nil {
		p.log.Error("ari: resync: application", "err", err)
		return
	}
	listed := time.Now()
	chans, err := p.client.ChannelsList(ctx)
	if err != nil {
		p.log.Error("ari: resync: channels", "err", err)
		return
	}
	ours := map[string]bool{}
	for _, id := range app.ChannelIDs {
		ours[id] = true
	}
	live := map[string]Channel{}
	exists := map[string]bool{}
	for _, ch := range chans {
		exists[ch.ID] = true
		if ours[ch.ID] {
			live[ch.ID] = ch
		}
	}
	p.mu.Lock()
	known := make(map[string]*call, len(p.calls))
	for id, c := range p.calls {
		known[id] = c
	}
	p.mu.Unlock()
	for id, c := range known {
		if c.out != nil {
			// A leg we originated: it may ring outside the application
			// (not yet in Stasis); only a channel list taken after its
			// originate reply proves it gone.
			p.mu.Lock()
			created := c.out.created
			p.mu.Unlock()
			if !exists[id] && !created.IsZero() && created.Before(listed) {
				c.deliver(&ChannelDestroyed{Cause: 16, CauseTxt: "gone after reconnect", Channel: Channel{ID: id}})
				continue
			}
			if exists[id] {
				c.recheckPlayback(ctx)
			}
			continue
		}
		if _, ok := live[id]; !ok {
			p.log.Info("ari: resync: call gone while disconnected", "channel", id)
			c.end("gone after reconnect")
			continue
		}
		c.recheckPlayback(ctx)
	}
	adopted := 0
	for id, ch := range live {
		if known[id] != nil {
			continue
		}
		args, inStasis := stasisArgs(ch.Dialplan, p.cfg.App)
		if !inStasis || isOriginatedLeg(args) {
			continue
		}
		adopted++
		p.log.Info("ari: resync: adopting call", "channel", id, "connection", n)
		s.startCall(ch, args)
	}
	p.log.Info("ari: resync done", "connection", n, "live", len(live), "known", len(known), "adopted", adopted)
}

// stasisArgs reads Stasis(app,args…) from a channel's dialplan location.
func stasisArgs(d DialplanCEP, app string) ([]string, bool) {
	if !strings.EqualFold(d.AppName, "Stasis") {
		return nil, false
	}
	parts := strings.Split(d.AppData, ",")
	if parts[0] != app {
		return nil, false
	}
	return parts[1:], true
}

// isOriginatedLeg tells a leg hotline originated (agent, external line) from
// an inbound caller by its Stasis args, as the recorded controller did:
// [] or ["inbound",…] is a caller; ["agent",id] or ["trunk",id] a leg.
func isOriginatedLeg(args []string) bool {
	return len(args) > 0 && (args[0] == "agent" || args[0] == "trunk")
}

func (s *streamHandler) Event(ev Event) {
	p := s.p
	switch e := ev.(type) {
	case *StasisStart:
		if isOriginatedLeg(e.Args) {
			p.mu.Lock()
			c := p.calls[e.Channel.ID]
			p.mu.Unlock()
			if c != nil && c.out != nil {
				c.markAnswered()
				return
			}
			// A leg nobody waits for (the router gave up on it, or an earlier
			// hotlined originated it): hang it up rather than leave an
			// agent on a silent line.
			p.log.Warn("ari: orphan leg entered Stasis: hanging up", "channel", e.Channel.ID)
			p.handlers.Add(1)
			go func(id string) {
				defer p.handlers.Done()
				_ = p.client.ChannelsHangup(context.WithoutCancel(s.ctx), id, ChannelsHangupParams{Reason: "normal"})
			}(e.Channel.ID)
			return
		}
		p.mu.Lock()
		_, dup := p.calls[e.Channel.ID]
		p.mu.Unlock()
		if dup {
			return // adopted by a resync that ran before this event was read
		}
		s.startCall(e.Channel, e.Args)
		return
	case *UnknownEvent:
		p.log.Debug("ari: unknown event", "type", e.Type)
		return
	}
	id := channelOf(ev)
	if id == "" {
		return
	}
	p.mu.Lock()
	c := p.calls[id]
	p.mu.Unlock()
	if c != nil {
		c.deliver(ev)
	}
}

// channelOf names the call an event is about. Playback events name it in
// target_uri ("channel:<id>").
func channelOf(ev Event) string {
	switch e := ev.(type) {
	case *ChannelDTMFReceived:
		return e.Channel.ID
	case *ChannelStateChange:
		return e.Channel.ID
	case *ChannelHangupRequest:
		return e.Channel.ID
	case *StasisEnd:
		return e.Channel.ID
	case *ChannelDestroyed:
		return e.Channel.ID
	case *PlaybackStarted:
		return strings.TrimPrefix(e.Playback.TargetURI, "channel:")
	case *PlaybackFinished:
		return strings.TrimPrefix(e.Playback.TargetURI, "channel:")
	case *PlaybackContinuing:
		return strings.TrimPrefix(e.Playback.TargetURI, "channel:")
	}
	return ""
}

// startCall registers a call for ch and starts its goroutines. It runs on
// the stream goroutine, so DTMF arriving right after StasisStart is
// buffered from the start.
func (s *streamHandler) startCall(ch Channel, args []string) {
	p := s.p
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		return
	}
	c := newCall(p, ch, p.cfg.QueueSize)
	p.calls[ch.ID] = c
	p.handlers.Add(1)
	p.pumps.Add(1)
	p.mu.Unlock()
	go func() { defer p.pumps.Done(); c.pump() }()
	go func() {
		defer p.handlers.Done()
		s.serve(c, ch, args)
	}()
}

func (s *streamHandler) serve(c *call, ch Channel, args []string) {
	p, ctx := s.p, s.ctx
	dialled, ok := s.dialled(ctx, ch, args)
	if !ok {
		p.log.Warn("ari: not a hotline number: hanging up", "channel", c.id, "dialled", telemetry.MaskNumber(dialled))
		c.hangup(ctx, "unallocated", "unallocated")
		c.finish(ctx)
		return
	}
	c.info.Dialled = dialled
	func() {
		defer func() {
			if r := recover(); r != nil {
				p.log.Error("ari: handler panic", "channel", c.id, "panic", r)
			}
		}()
		s.h.ServeCall(ctx, c)
	}()
	c.finish(ctx)
}

// dialled finds the number the caller dialled: a Stasis argument
// (Stasis(hotline,inbound,${EXTEN}) in deploy/asterisk), else the dialplan
// extension the channel was at, else the channel variable HOTLINE_DIALLED.
func (s *streamHandler) dialled(ctx context.Context, ch Channel, args []string) (string, bool) {
	cands := append([]string(nil), args...)
	cands = append(cands, ch.Dialplan.Exten)
	for _, a := range cands {
		if n, ok := routing.HotlineNumber(strings.TrimPrefix(a, "dialled=")); ok {
			return n, true
		}
	}
	v, err := s.p.client.ChannelsGetChannelVar(ctx, ch.ID, ChannelsGetChannelVarParams{Variable: "HOTLINE_DIALLED"})
	if err == nil {
		if n, ok := routing.HotlineNumber(v.Value); ok {
			return n, true
		}
		return v.Value, false
	}
	return ch.Dialplan.Exten, false
}

// remove forgets a call (after it ended).
func (p *Plane) remove(id string, c *call) {
	p.mu.Lock()
	if p.calls[id] == c {
		delete(p.calls, id)
	}
	p.mu.Unlock()
}

func (p *Plane) isStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// errHungUp wraps ivr.ErrHungUp with the call id for context.
func errHungUp(op, id string) error { return fmt.Errorf("ari: %s %s: %w", op, id, ivr.ErrHungUp) }
