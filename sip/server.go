package sip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/routing"
	"github.com/cq12345/hotline/telemetry"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Handler runs the IVR on a call. When ServeCall returns, the plane hangs up
// the call if it is still up.
type Handler interface {
	ServeCall(ctx context.Context, c ivr.Call)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, c ivr.Call)

// ServeCall calls f.
func (f HandlerFunc) ServeCall(ctx context.Context, c ivr.Call) { f(ctx, c) }

// Config configures a Server.
type Config struct {
	// Listen is the SIP address, for UDP and TCP alike ("127.0.0.1:5060";
	// port 0 picks a free port, the same for both).
	Listen string
	// MediaAddr is the address written in SDP c= lines (default: the
	// Listen IP; required when Listen is a wildcard address).
	MediaAddr netip.Addr
	// Engine carries the RTP of every call.
	Engine MediaEngine
	// Prompts holds the audio Play sends.
	Prompts *prompts.Library
	// Handler runs each call.
	Handler Handler
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider and MeterProvider default to no-ops.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// UserAgent is our User-Agent/Server header value.
	UserAgent string
	// RetryAfter is the Retry-After of the 503 sent while draining
	// (default 30 s).
	RetryAfter time.Duration
	// RingTime, when above 0, sends 180 Ringing and lets the call ring
	// this long before the handler runs (sites that want the caller to
	// hear ringing first; tests that CANCEL before the answer).
	RingTime time.Duration

	// Credentials, when set, enables the registrar (registrar.go):
	// REGISTER with digest authentication against the agents' HA1
	// (routing.SQLStore). Realm defaults to "hotline"; MinExpires (default
	// 60 s) and MaxExpires (default 1 h) bound registrations.
	Credentials            CredentialStore
	Realm                  string
	MinExpires, MaxExpires time.Duration
	// HotlineNumber is the From user of outbound legs when the caller's
	// number is not passed on (default routing.ServiceNumber).
	HotlineNumber string
	// Trunk is the SIP URI DialOut uses when the request names none.
	Trunk string
	// TrunkUser and TrunkPassword answer a trunk's digest challenge (401
	// or 407, RFC 3261 section 22) to an INVITE DialOut sent: carriers'
	// SIP trunks often ask for one. Never sent unchallenged, never used
	// for agents' phones.
	TrunkUser, TrunkPassword string
	// Flagger receives the agent's flag code (*7) during a bridge.
	Flagger Flagger
	// Destinations and Transfers decide REFERs (refer.go): a REFER naming
	// anything but a configured destination is refused (403) and logged.
	Destinations Destinations
	Transfers    Transferer
	// EmergencyCodes maps the digit an agent keys after '*' during a
	// bridge to the destination brought into a three-party call (default
	// 1: "110", 2: "119", 3: "120"; see Bridge).
	EmergencyCodes map[byte]string
}

type metrics struct {
	active metric.Int64UpDownCounter
	calls  metric.Int64Counter
	dtmf   metric.Int64Counter
}

var planeAttr = attribute.String("plane", "sip")

func metricOpt(kv ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributes(append(kv, planeAttr)...)
}

// Server is the SIP plane.
type Server struct {
	cfg     Config
	log     *slog.Logger
	media   mediaEngine
	tracer  trace.Tracer
	metrics metrics
	guard   *guard

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	dua    *sipgo.DialogUA

	udp   net.PacketConn
	tcp   net.Listener
	addr  netip.AddrPort
	serve sync.WaitGroup

	reg *registrar // nil without Config.Credentials

	mu       sync.Mutex
	calls    map[string]*call // by Call-ID
	legs     map[string]*leg  // outbound legs by Call-ID (legs.go)
	draining bool
	closed   bool
	allEnded chan struct{} // closed when calls is empty during a drain
	callWG   sync.WaitGroup
}

// New checks the configuration and builds a Server; Start listens.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil {
		return nil, errors.New("sip: config: no media engine")
	}
	if cfg.Prompts == nil {
		return nil, errors.New("sip: config: no prompts")
	}
	if cfg.Handler == nil {
		return nil, errors.New("sip: config: no handler")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:5060"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = tracenoop.NewTracerProvider()
	}
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = metricnoop.NewMeterProvider()
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hotline"
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 30 * time.Second
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger.With("plane", "sip"),
		media:  engineAdapter{cfg.Engine},
		tracer: cfg.TracerProvider.Tracer("github.com/cq12345/hotline/sip"),
		calls:  map[string]*call{},
	}
	m := cfg.MeterProvider.Meter("github.com/cq12345/hotline/sip")
	var err error
	if s.metrics.active, err = m.Int64UpDownCounter("hotline.calls.active", metric.WithDescription("Calls in progress.")); err != nil {
		return nil, fmt.Errorf("sip: metrics: %w", err)
	}
	if s.metrics.calls, err = m.Int64Counter("hotline.calls", metric.WithDescription("Calls ended, by outcome.")); err != nil {
		return nil, fmt.Errorf("sip: metrics: %w", err)
	}
	if s.metrics.dtmf, err = m.Int64Counter("hotline.dtmf.received", metric.WithDescription("DTMF digits received, by mode (rfc4733|info).")); err != nil {
		return nil, fmt.Errorf("sip: metrics: %w", err)
	}
	if cfg.Credentials != nil {
		s.reg = newRegistrar(cfg.Credentials, cfg.Realm, cfg.MinExpires, cfg.MaxExpires)
	}
	s.guard = &guard{parser: sip.NewParser(), onReject: func(status int, why string) {
		s.log.Debug("request rejected before parsing", "status", status, "why", why)
	}}
	return s, nil
}

// sipgoLogger keeps sipgo's own logging at warnings and above: its debug
// lines carry whole messages, and so caller numbers.
func (s *Server) sipgoLogger() *slog.Logger {
	return slog.New(levelFilter{h: s.log.Handler(), min: slog.LevelWarn}).With("component", "sipgo")
}

type levelFilter struct {
	h   slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.h.Enabled(ctx, l)
}

// Handle drops sipgo's "data" attribute (a whole raw message) and keeps
// the rest.
func (f levelFilter) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "data" || a.Key == "msg" {
			a = slog.String(a.Key, "[redacted]")
		}
		out.AddAttrs(a)
		return true
	})
	return f.h.Handle(ctx, out)
}
func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{h: f.h.WithAttrs(a), min: f.min}
}
func (f levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{h: f.h.WithGroup(n), min: f.min}
}

// Start listens on UDP and TCP and serves in the background. It returns
// once both sockets are bound (see Addr).
func (s *Server) Start(ctx context.Context) error {
	udp, tcp, err := listenPair(ctx, s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("sip: listen %s: %w", s.cfg.Listen, err)
	}
	s.udp, s.tcp = udp, tcp
	s.addr = udp.LocalAddr().(*net.UDPAddr).AddrPort()
	if !s.cfg.MediaAddr.IsValid() {
		s.cfg.MediaAddr = s.addr.Addr().Unmap()
	}
	if s.cfg.MediaAddr.IsUnspecified() {
		// c=0.0.0.0 would read as hold (RFC 3264 §8.4).
		_ = udp.Close()
		_ = tcp.Close()
		return fmt.Errorf("sip: listening on %s, a wildcard address: set MediaAddr to the address callers reach", s.addr)
	}
	lg := s.sipgoLogger()
	s.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent(s.cfg.UserAgent),
		sipgo.WithUserAgentHostname(s.addr.Addr().String()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(lg)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(lg),
			sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {
				// A stray response (a retransmission, or one sent to us by
				// mistake): RFC 3261 §18.1.2 lets the core drop it.
			})),
	)
	if err != nil {
		_ = udp.Close()
		_ = tcp.Close()
		return fmt.Errorf("sip: user agent: %w", err)
	}
	s.srv, _ = sipgo.NewServer(s.ua, sipgo.WithServerLogger(lg))
	s.client, _ = sipgo.NewClient(s.ua, sipgo.WithClientLogger(lg),
		sipgo.WithClientHostname(s.addr.Addr().String()), sipgo.WithClientPort(int(s.addr.Port())))
	s.dua = &sipgo.DialogUA{Client: s.client, ContactHDR: *s.contact("UDP")}

	s.srv.OnInvite(s.onInvite)
	s.srv.OnAck(s.onAck)
	s.srv.OnBye(s.onBye)
	s.srv.OnCancel(s.onCancel)
	s.srv.OnOptions(s.onOptions)
	s.srv.OnInfo(s.onInfo)
	s.srv.OnRegister(s.onRegister)
	s.srv.OnRefer(s.onRefer)
	s.srv.OnNoRoute(s.onOther)

	s.serve.Add(2)
	go func() {
		defer s.serve.Done()
		_ = s.srv.ServeUDP(&guardedPacketConn{PacketConn: udp, g: s.guard})
	}()
	go func() {
		defer s.serve.Done()
		_ = s.srv.ServeTCP(&guardedListener{Listener: tcp, g: s.guard})
	}()
	s.log.Info("SIP listening", "addr", s.addr.String(), "transports", "udp,tcp", "media_addr", s.cfg.MediaAddr.String())
	return nil
}

// listenPair binds UDP and TCP on the same address; with port 0 it retries
// until both get the same free port.
func listenPair(ctx context.Context, addr string) (net.PacketConn, net.Listener, error) {
	var lc net.ListenConfig
	var lastErr error
	for range 20 {
		udp, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, err
		}
		port := udp.LocalAddr().(*net.UDPAddr).Port
		host, _, _ := net.SplitHostPort(addr)
		tcp, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		lastErr = err
		if !strings.HasSuffix(addr, ":0") {
			break
		}
	}
	return nil, nil, lastErr
}

// Addr is the bound SIP address (UDP and TCP).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// ActiveCalls counts the calls in progress.
func (s *Server) ActiveCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// Drain refuses new calls (503 with Retry-After), gives the live ones grace
// to end on their own, then hangs them up (BYE). It returns when every call
// has ended or ctx is done.
func (s *Server) Drain(ctx context.Context, grace time.Duration) {
	s.mu.Lock()
	s.draining = true
	if s.allEnded == nil {
		s.allEnded = make(chan struct{})
		if len(s.calls) == 0 {
			close(s.allEnded)
		}
	}
	allEnded := s.allEnded
	n := len(s.calls)
	s.mu.Unlock()
	s.log.Info("draining", "calls", n, "grace", grace.String())
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-allEnded:
		return
	case <-ctx.Done():
	case <-t.C:
	}
	s.hangupAll(ctx, "drain")
	select {
	case <-allEnded:
	case <-ctx.Done():
	}
}

func (s *Server) hangupAll(ctx context.Context, reason string) {
	s.mu.Lock()
	calls := make([]ivr.Call, 0, len(s.calls)+len(s.legs))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	seen := map[*leg]bool{}
	for _, l := range s.legs {
		if !seen[l] {
			seen[l] = true
			calls = append(calls, l)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			_ = c.Hangup(hctx, reason)
		}()
	}
	wg.Wait()
}

// Close hangs up every call (BYE, briefly), stops listening and releases
// sipgo. It waits for the calls' goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed, s.draining = true, true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	s.hangupAll(ctx, "drain")
	cancel()
	var errs []error
	if s.udp != nil {
		errs = append(errs, s.udp.Close(), s.tcp.Close())
	}
	s.serve.Wait()
	s.callWG.Wait()
	if s.ua != nil {
		errs = append(errs, s.ua.Close())
	}
	return errors.Join(errs...)
}

// contact is our Contact header for a transport.
func (s *Server) contact(transport string) *sip.ContactHeader {
	uri := sip.Uri{Scheme: "sip", User: routing.ServiceNumber, Host: s.addr.Addr().String(), Port: int(s.addr.Port())}
	if strings.EqualFold(transport, "TCP") {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", "tcp")
	}
	return &sip.ContactHeader{Address: uri}
}

// respond answers a request outside any dialog, statefully through sipgo.
func (s *Server) respond(req *sip.Request, tx sip.ServerTransaction, status int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, status, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if status == 405 || status == 501 {
		res.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	}
	err := tx.Respond(res)
	if errors.Is(err, sip.ErrUDPMTUCongestion) && s.udp != nil {
		// sipgo refuses UDP messages over 1300 bytes (RFC 3261 §18.1.1 is
		// about requests); a response has no other way back, so send it
		// as is and let IP fragment it.
		var dst *net.UDPAddr
		if dst, err = net.ResolveUDPAddr("udp", res.Destination()); err == nil {
			_, err = s.udp.WriteTo([]byte(res.String()), dst)
		}
	}
	if err != nil {
		s.log.Debug("respond failed", "status", status, "error", err)
	}
}

// record counts a call that ended (or never became one).
func (s *Server) record(outcome string) {
	s.metrics.calls.Add(context.Background(), 1, metricOpt(attribute.String("outcome", outcome)))
}

// calledUser is the dialled number from the Request-URI: the user part of
// a sip:/sips: URI or the number of a tel: URI.
func calledUser(req *sip.Request) string {
	u := req.Recipient
	if strings.EqualFold(u.Scheme, "tel") {
		return u.Raw()
	}
	return u.User
}

// callerOf is the calling number (From user part). Personal data.
func callerOf(req *sip.Request) string {
	if f := req.From(); f != nil {
		if strings.EqualFold(f.Address.Scheme, "tel") {
			n, _, _ := strings.Cut(f.Address.Raw(), ";")
			return n
		}
		return f.Address.User
	}
	return ""
}

func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.onReinvite(req, tx)
		return
	}
	s.mu.Lock()
	draining := s.draining
	_, dup := s.calls[req.CallID().Value()]
	s.mu.Unlock()
	if dup {
		// A new INVITE (new branch) reusing a live Call-ID without To tag:
		// RFC 3261 §8.2.2.2 loop/merge detection.
		s.respond(req, tx, 482, "Loop Detected")
		return
	}
	if draining {
		s.record("rejected_draining")
		s.respond(req, tx, 503, "Service Unavailable", sip.NewHeader("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter.Seconds()))))
		return
	}
	if !acceptsSDP(req) {
		s.record("not_acceptable")
		s.respond(req, tx, 406, "Not Acceptable", sip.NewHeader("Warning", `399 hotline "our answer is application/sdp"`))
		return
	}
	var offer *Offer
	if body := req.Body(); len(body) > 0 {
		if ct := req.ContentType(); ct == nil || !isSDP(ct.Value()) {
			s.record("unsupported_media")
			s.respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/sdp"))
			return
		}
		o, err := ParseSDPOffer(body)
		switch {
		case errors.Is(err, errNoCommonCodec):
			s.record("not_acceptable")
			s.respond(req, tx, 488, "Not Acceptable Here", sip.NewHeader("Warning", `305 hotline "Incompatible media format"`))
			return
		case err != nil:
			s.record("bad_request")
			s.respond(req, tx, 400, "Bad Request", sip.NewHeader("Warning", `399 hotline "malformed SDP"`))
			return
		}
		offer = o
	}
	// The number is checked after the body (RFC 4475 §3.3.6 and §3.3.15
	// expect 415 and 406 whatever the Request-URI).
	dialled, ok := routing.HotlineNumber(calledUser(req))
	if !ok {
		s.record("not_found")
		s.respond(req, tx, 404, "Not Found")
		return
	}
	if req.Contact() == nil {
		s.record("bad_request")
		s.respond(req, tx, 400, "Bad Request", sip.NewHeader("Warning", `399 hotline "missing Contact"`))
		return
	}
	s.respond(req, tx, 100, "Trying")
	dlg, err := s.dua.ReadInvite(req, tx)
	if err != nil {
		s.record("error")
		s.log.Warn("invite rejected", "error", err)
		s.respond(req, tx, 500, "Server Internal Error")
		return
	}
	c := s.newCall(req, tx, dlg, dialled, offer)
	if c == nil {
		_ = dlg.Respond(503, "Service Unavailable", nil, sip.NewHeader("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter.Seconds()))))
		return
	}
	s.runCall(c)
}

func acceptsSDP(req *sip.Request) bool {
	hs := req.GetHeaders("Accept")
	if len(hs) == 0 {
		return true
	}
	for _, h := range hs {
		for _, v := range strings.Split(h.Value(), ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(v), ";")
			switch strings.ToLower(strings.TrimSpace(mt)) {
			case "application/sdp", "application/*", "*/*":
				return true
			}
		}
	}
	return false
}

func isSDP(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/sdp")
}

func randomUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) >> 2 // keep o= sess-id well inside int64
}

// newCall registers a call; nil when the server is closing.
func (s *Server) newCall(req *sip.Request, tx sip.ServerTransaction, dlg *sipgo.DialogServerSession, dialled string, offer *Offer) *call {
	caller := callerOf(req)
	masked := telemetry.MaskNumber(caller)
	id := req.CallID().Value()
	ctx, stop := context.WithCancel(context.Background())
	ctx, span := s.tracer.Start(ctx, "call", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("sip.call_id", id),
		attribute.String("call.caller", masked),
		attribute.String("call.dialled", dialled),
		attribute.String("call.plane", "sip"),
		attribute.String("net.transport", strings.ToLower(req.Transport())),
	))
	c := &call{
		srv:      s,
		id:       id,
		info:     ivr.CallInfo{Caller: caller, Dialled: dialled, Plane: "sip", Started: time.Now()},
		dlg:      dlg,
		inviteTx: tx,
		log:      s.log.With("call_id", id, "caller", masked, "dialled", dialled),
		span:     span,
		ctx:      ctx, stop: stop,
		transport:   req.Transport(),
		offer:       offer,
		local:       localSDP{sessID: randomUint64(), version: 1, addr: s.cfg.MediaAddr},
		digitSignal: make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		stop()
		span.End()
		return nil
	}
	s.calls[id] = c
	s.callWG.Add(1)
	s.mu.Unlock()
	s.metrics.active.Add(context.Background(), 1, metricOpt())
	c.log.Info("call arrived", "transport", req.Transport(), "late_offer", offer == nil)
	return c
}

// runCall runs the handler on the INVITE's goroutine and hangs up after.
func (s *Server) runCall(c *call) {
	// The dialog's context ends on CANCEL, on BYE and when the INVITE
	// transaction dies before the answer.
	go func() {
		select {
		case <-c.dlg.Context().Done():
			c.mu.Lock()
			answered := c.answered || c.answering
			c.mu.Unlock()
			if errors.Is(context.Cause(c.dlg.Context()), sip.ErrTransactionCanceled) || !answered {
				c.end("cancelled")
			} else {
				c.end("completed")
			}
		case <-c.done:
		}
	}()
	if s.cfg.RingTime > 0 && !c.ring(s.cfg.RingTime) {
		// The caller cancelled while it rang: the handler still sees the
		// call (ended), so that it is recorded as abandoned before answer.
		c.log.Info("caller cancelled while ringing")
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("handler panicked", "panic", fmt.Sprint(r))
			}
		}()
		s.cfg.Handler.ServeCall(c.ctx, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Hangup(ctx, "handler returned")
}

// release forgets an ended call.
func (s *Server) release(c *call, outcome string) {
	// The span ends before the call leaves the table, so that whoever
	// waits for ActiveCalls() == 0 sees it ended.
	c.span.SetAttributes(attribute.String("call.outcome", outcome))
	c.span.End()
	s.mu.Lock()
	if s.calls[c.id] == c {
		delete(s.calls, c.id)
	}
	if s.allEnded != nil && len(s.calls) == 0 {
		select {
		case <-s.allEnded:
		default:
			close(s.allEnded)
		}
	}
	s.mu.Unlock()
	s.metrics.active.Add(context.Background(), -1, metricOpt())
	s.record(outcome)
	c.log.Info("call ended", "outcome", outcome, "duration_ms", time.Since(c.info.Started).Milliseconds())
	s.callWG.Done()
}

// lookup finds the call a request inside a dialog belongs to (RFC 3261
// §12.2.2: Call-ID, and our tag in To).
func (s *Server) lookup(req *sip.Request) *call {
	cid := req.CallID()
	if cid == nil {
		return nil
	}
	s.mu.Lock()
	c := s.calls[cid.Value()]
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	ours, _ := c.dlg.InviteRequest.To().Params.Get("tag")
	theirs, _ := req.To().Params.Get("tag")
	if ours != theirs {
		return nil
	}
	return c
}

func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		return // ACK for a non-2xx is absorbed by its transaction; others are stray
	}
	seq := req.CSeq().SeqNo
	c.mu.Lock()
	if c.pendingAck != nil && c.pendingAckCSeq == seq {
		ch := c.pendingAck
		c.pendingAck = nil
		c.mu.Unlock()
		ch <- req
		return
	}
	if c.lateOffer && c.offer == nil && len(req.Body()) > 0 {
		if o, err := ParseSDPOffer(req.Body()); err == nil {
			c.applyRemoteLocked(o)
		} else {
			c.log.Warn("bad SDP answer in ACK", "error", err)
		}
	}
	c.mu.Unlock()
	_ = c.dlg.ReadAck(req, tx)
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		if s.legRequest(req, tx) {
			return
		}
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if err := c.dlg.ReadBye(req, tx); err != nil {
		s.respond(req, tx, 500, "Server Internal Error")
		return
	}
	c.log.Info("caller hung up")
	c.end("completed")
}

// onCancel sees only CANCELs that match no INVITE transaction (sipgo
// answers the others: 200 to the CANCEL, 487 to the INVITE).
func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(req, tx, 200, "OK",
		sip.NewHeader("Allow", allowedMethods),
		sip.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf"),
		sip.NewHeader("Accept-Language", "zh-CN, en"))
}

func (s *Server) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		if s.legRequest(req, tx) {
			return
		}
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if err := c.dlg.ReadRequest(req, tx); err != nil {
		s.respond(req, tx, 500, "Server Internal Error")
		return
	}
	body := req.Body()
	ct := req.ContentType()
	if len(body) == 0 {
		s.respond(req, tx, 200, "OK") // an empty INFO is a keep-alive probe
		return
	}
	if ct == nil {
		s.respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", ctDTMFRelay+", "+ctDTMF))
		return
	}
	d, _, err := ParseInfoDTMF(ct.Value(), body)
	if err != nil {
		if isDTMFType(ct.Value()) {
			s.respond(req, tx, 400, "Bad Request")
		} else {
			s.respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", ctDTMFRelay+", "+ctDTMF))
		}
		return
	}
	s.respond(req, tx, 200, "OK")
	c.digit(d, "info")
}

func isDTMFType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == ctDTMFRelay || mt == ctDTMF
}

// knownMethods are SIP methods we know but do not allow (405); any other
// method is not implemented (501), RFC 3261 §8.2.1.
var knownMethods = map[string]bool{
	"REGISTER": true, "SUBSCRIBE": true, "NOTIFY": true, "MESSAGE": true, "REFER": true,
	"PUBLISH": true, "PRACK": true, "UPDATE": true,
}

func (s *Server) onOther(req *sip.Request, tx sip.ServerTransaction) {
	if knownMethods[string(req.Method)] {
		s.respond(req, tx, 405, "Method Not Allowed")
		return
	}
	s.respond(req, tx, 501, "Not Implemented")
}

// onReinvite handles an INVITE inside a dialog: hold, unhold, a new remote
// address or codec, a session refresh (RFC 3261 §14.2, RFC 3264 §8).
func (s *Server) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		if s.legRequest(req, tx) {
			return
		}
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.mu.Lock()
	answered := c.answered
	if prev := c.pendingAck; prev != nil && answered {
		// A new offer from the peer implies it got our last 2xx; its ACK
		// may still be on the way (each request runs on its own goroutine).
		c.pendingAck = nil
		prev <- nil
	}
	c.mu.Unlock()
	if !answered {
		// An offer while our answer to the INVITE is not acknowledged
		// (RFC 3261 §14.2).
		s.respond(req, tx, 491, "Request Pending")
		return
	}
	if err := c.dlg.ReadRequest(req, tx); err != nil {
		s.respond(req, tx, 500, "Server Internal Error", sip.NewHeader("Retry-After", "1"))
		return
	}
	var body []byte
	offerless := len(req.Body()) == 0
	c.mu.Lock()
	if offerless {
		// We offer; the answer comes in the ACK.
		body = c.local.offer(SendRecv)
	} else {
		if ct := req.ContentType(); ct == nil || !isSDP(ct.Value()) {
			c.mu.Unlock()
			s.respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/sdp"))
			return
		}
		o, err := ParseSDPOffer(req.Body())
		if err != nil {
			c.mu.Unlock()
			// The call keeps its current session (RFC 3261 §14.2).
			if errors.Is(err, errNoCommonCodec) {
				s.respond(req, tx, 488, "Not Acceptable Here")
			} else {
				s.respond(req, tx, 400, "Bad Request")
			}
			return
		}
		c.applyRemoteLocked(o)
		body = c.local.answer(o)
		c.log.Info("re-INVITE", "hold", o.Hold())
		c.span.AddEvent("reinvite", trace.WithAttributes(attribute.Bool("hold", o.Hold())))
	}
	ackCh := make(chan *sip.Request, 1)
	c.pendingAck, c.pendingAckCSeq = ackCh, req.CSeq().SeqNo
	c.mu.Unlock()

	res := sip.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(s.contact(req.Transport()))
	if err := tx.Respond(res); err != nil {
		c.log.Warn("re-INVITE response failed", "error", err)
	}
	// Retransmit the 2xx until the ACK comes (RFC 3261 §13.3.1.4); streams
	// are reliable, so only the first send there.
	t1, timeout := sip.T1, time.NewTimer(64*sip.T1)
	defer timeout.Stop()
	retx := time.NewTimer(t1)
	defer retx.Stop()
	for {
		select {
		case ack := <-ackCh:
			if ack != nil && offerless {
				if o, err := ParseSDPOffer(ack.Body()); err == nil {
					c.mu.Lock()
					c.applyRemoteLocked(o)
					c.mu.Unlock()
				}
			}
			return
		case <-retx.C:
			if !strings.EqualFold(req.Transport(), "UDP") {
				continue
			}
			_ = tx.Respond(res)
			t1 = min(2*t1, sip.T2)
			retx.Reset(t1)
		case <-timeout.C:
			c.mu.Lock()
			c.pendingAck = nil
			c.mu.Unlock()
			c.byeAndEnd("no_ack")
			return
		case <-c.done:
			return
		}
	}
}
