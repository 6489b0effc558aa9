package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cq12345/hotline/abuse"
	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/ari"
	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/flows"
	"github.com/cq12345/hotline/ivr"
	ivrflows "github.com/cq12345/hotline/ivr/flows"
	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/routing"
	"github.com/cq12345/hotline/sip"
	"github.com/cq12345/hotline/sqldb"
	"github.com/cq12345/hotline/telemetry"
)

// FlowID is the flow every call to 12345 runs.
const FlowID = "chongqing-12345"

// NewLogger returns the process logger: text or JSON on w, every record
// scrubbed of phone numbers.
func NewLogger(cfg *Config, w *os.File) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(telemetry.NewMaskingHandler(h))
}

// Run runs hotlined until ctx is cancelled (SIGTERM), then drains: no new
// calls, calls in progress get cfg.DrainGrace, then BYE; then it closes the
// HTTP server and the stores.
func Run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// Parts are closed in reverse order of their start.
	var closers []func(context.Context) error
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](cctx); err != nil {
				log.Warn("shutdown", "err", err)
			}
		}
	}()

	tel, err := telemetry.New(ctx, telemetry.Config{ServiceName: "hotlined", TraceFile: cfg.TraceFile, OTLPEndpoint: cfg.OTLP})
	if err != nil {
		return err
	}
	closers = append(closers, tel.Shutdown)

	// Store: SQLite in the data folder unless a PostgreSQL URL is given.
	dsn := cfg.Store
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "hotline.db")
	}
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return err
	}
	closers = append(closers, func(context.Context) error { return db.Close() })

	lib, err := prompts.Load(prompts.Embedded())
	if err != nil {
		return err
	}
	// Calendars: the embedded years, then <data-dir>/calendars (admins drop
	// cn-2027.yaml there when the State Council publishes it).
	cals, err := routing.LoadCalendarsDir(filepath.Join(cfg.DataDir, "calendars"))
	if err != nil {
		return err
	}
	env := ivr.Env{
		Catalogue:    lib.Catalogue,
		Destinations: map[string]bool{},
		Queues:       map[string]bool{},
		Calendars:    cals,
		Includes:     ivr.FSIncludes{FS: ivrflows.FS()},
		// GB/T 33358: no deep menus (at most two key presses to anywhere),
		// and 0 or silence always reaches a person.
		MaxKeyPresses: 2,
		PersonEscape:  true,
	}
	// Routing: destinations (the only places a call may be sent) and queues.
	rcfg := routing.DefaultConfig()
	if cfg.RoutingConfig != "" {
		if rcfg, err = routing.LoadConfig(cfg.RoutingConfig, cals); err != nil {
			return err
		}
	}
	env.Destinations = routing.NewDirectory(rcfg.Destinations, log).IDs()
	env.Queues = rcfg.QueueIDs()

	// Flows: versions in the store, the published one served from memory.
	loader := flows.LoaderFor(env)
	flowStore, err := flows.NewStore(ctx, db, loader.Checker())
	if err != nil {
		return err
	}
	seed := ivrflows.Default()
	if cfg.Flow != "" {
		if seed, err = os.ReadFile(cfg.Flow); err != nil {
			return fmt.Errorf("flow: %w", err)
		}
	}
	if imported, err := flowStore.Seed(ctx, FlowID, seed, "hotlined"); err != nil {
		return fmt.Errorf("flow %s: %w", FlowID, err)
	} else if imported {
		log.Info("flow imported as version 1", "flow", FlowID)
	}
	live := flows.NewLive(flowStore, loader, log)
	if err := live.Refresh(ctx); err != nil {
		return fmt.Errorf("flows: %w", err)
	}
	liveCtx, stopLive := context.WithCancel(context.WithoutCancel(ctx))
	liveDone := make(chan struct{})
	go func() { defer close(liveDone); live.Run(liveCtx) }()
	closers = append(closers, func(context.Context) error { stopLive(); <-liveDone; return nil })

	// Cases: the SQL store behind a local journal, so that no case of an
	// answered call is lost while the store is down.
	caseStore, prot, err := openCases(ctx, cfg, db, cals, log)
	if err != nil {
		return err
	}
	closers = append(closers, func(context.Context) error { return caseStore.Close() })

	// Article 26: abusive callers (counters and decisions in the store).
	abuseSvc, err := openAbuse(ctx, cfg, db, prot, caseStore, log)
	if err != nil {
		return err
	}
	closers = append(closers, func(context.Context) error { return abuseSvc.Close() })

	// The router: queue decisions go to the ACD, transfers to destinations.
	// The plane that dials is set once it runs.
	rstore, err := routing.OpenStore(ctx, db, routing.StoreConfig{Sealer: prot.Keys, Hash: prot.CallerHash})
	if err != nil {
		return err
	}
	dialer := &routing.LateDialer{}
	router, err := routing.New(routing.Options{Config: rcfg, Store: rstore, Dialer: dialer,
		Calendars: cals, Catalogue: lib.Catalogue, MeterProvider: tel.MeterProvider, Logger: log, Callbacks: callbackRecorder{cases: caseStore}})
	if err != nil {
		return err
	}
	closers = append(closers, func(context.Context) error { return router.Close() })

	// HTTP: API, /metrics, /healthz.
	tokens, err := auth.NewStore(ctx, db)
	if err != nil {
		return err
	}
	if _, err := api.Bootstrap(ctx, tokens, cfg.DataDir, log); err != nil {
		return err
	}
	var draining atomic.Bool
	// plane is set once the media plane runs; /healthz reads it meanwhile.
	var plane atomic.Pointer[activeCaller]
	mux := http.NewServeMux()
	mux.Handle("/api/", api.New(api.Config{Flows: flowStore, Tokens: tokens, Env: env, Logger: log,
		Cases: caseStore, Protector: prot, Abuse: abuseSvc, Routing: router}))
	mux.Handle("/metrics", tel.MetricsHandler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		status, code := "ok", http.StatusOK
		if draining.Load() {
			status, code = "draining", http.StatusServiceUnavailable
		}
		calls := 0
		if p := plane.Load(); p != nil {
			calls = (*p).ActiveCalls()
		}
		_, ver := live.Current(FlowID)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"status": status, "plane": cfg.Plane, "calls": calls,
			"flow": FlowID, "flow_version": ver, "journaling": caseStore.Journaling()})
	})
	hl, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go httpSrv.Serve(hl)
	closers = append(closers, httpSrv.Shutdown)
	log.Info("http listening", "addr", hl.Addr().String())

	calls := &callHandler{
		log:   log,
		live:  live,
		cases: caseStore,
		abuse: abuseSvc,
		tp:    tel.TracerProvider,
		interp: &ivr.Interpreter{
			Router:         verdictRouter{next: router, queues: rcfg.QueueIDs(), log: log},
			Callbacks:      callbackBooker{router: router, cases: caseStore},
			Cases:          caseLookup{caseStore},
			Calendars:      cals,
			Catalogue:      lib.Catalogue,
			TracerProvider: tel.TracerProvider,
			Logger:         log,
		},
	}

	// An agent's *7 during a bridge reaches article 26 (either plane).
	flag := sip.FlaggerFunc(func(ctx context.Context, callID, agent string) error {
		_, err := abuseSvc.Flag(ctx, callID, agent, abuse.KindHarassment, "agent keyed *7 on the phone")
		return err
	})
	switch cfg.Plane {
	case "sip":
		srv, err := startSIP(ctx, cfg, lib, calls, tel, log, &closers, func(sc *sip.Config) {
			// The plane is the router's dialer (agents, lines), the
			// registrar of agents' phones, the REFER guard, and where the
			// agent's *7 flag reaches article 26.
			sc.Credentials = rstore
			sc.Realm = routing.DefaultRealm
			sc.HotlineNumber = routing.ServiceNumber
			sc.Destinations = routing.NewDirectory(rcfg.Destinations, log)
			sc.Transfers = router
			sc.Trunk = cfg.Trunk
			sc.TrunkUser, sc.TrunkPassword = cfg.TrunkUser, cfg.TrunkPassword
			sc.Flagger = flag
		})
		if err != nil {
			return err
		}
		dialer.Set(srv)
		var ac activeCaller = srv
		plane.Store(&ac)
		<-ctx.Done()
		draining.Store(true)
		log.Info("draining", "calls", srv.ActiveCalls(), "grace", cfg.DrainGrace.String())
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainGrace+10*time.Second)
		srv.Drain(dctx, cfg.DrainGrace)
		cancel()
		log.Info("drained")
		return nil
	case "ari":
		p, err := ari.New(ari.Config{
			URL: cfg.ARIURL, User: cfg.ARIUser, Password: cfg.ARIPassword, App: cfg.ARIApp,
			HasPrompt: func(k string) bool { _, ok := lib.Frames(k, prompts.PCMA); return ok },
			Logger:    log,
			// The plane is the router's dialer, as the sip plane is: agents
			// are PJSIP endpoints, lines go through the trunk endpoint.
			AgentEndpoint: cfg.ARIAgentEndpoint,
			TrunkEndpoint: cfg.ARITrunkEndpoint,
			Trunk:         cfg.Trunk,
			HotlineNumber: routing.ServiceNumber,
			Destinations:  routing.NewDirectory(rcfg.Destinations, log),
			Flagger:       flag,
		})
		if err != nil {
			return err
		}
		dialer.Set(p)
		var ac activeCaller = p
		plane.Store(&ac)
		log.Info("ari plane", "url", cfg.ARIURL, "app", cfg.ARIApp)
		// On SIGTERM the plane hands live calls back to the dialplan.
		if err := p.Run(ctx, calls); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown plane %q", cfg.Plane)
}

func startSIP(ctx context.Context, cfg *Config, lib *prompts.Library, h sip.Handler, tel *telemetry.Telemetry, log *slog.Logger, closers *[]func(context.Context) error, more func(*sip.Config)) (*sip.Server, error) {
	ap, err := netip.ParseAddrPort(cfg.SIPListen)
	if err != nil {
		return nil, fmt.Errorf("sip-listen %q: %w", cfg.SIPListen, err)
	}
	mediaIP := ap.Addr()
	if cfg.MediaAddr.IsValid() {
		mediaIP = cfg.MediaAddr
	}
	bindIP := mediaIP
	if ap.Addr().IsUnspecified() {
		bindIP = ap.Addr()
	}
	mc := media.Config{IP: bindIP, Sockets: cfg.RTPSockets, InactivityTimeout: cfg.RTPTimeout, Logger: log}
	if cfg.RTPTimeout == 0 {
		mc.InactivityTimeout = -1
	}
	if cfg.RTPPorts != "" {
		lo, hi, ok := strings.Cut(cfg.RTPPorts, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if !ok || err1 != nil || err2 != nil || a <= 0 || b < a || b > 65535 {
			return nil, fmt.Errorf("rtp-ports %q: want LOW-HIGH, e.g. 20000-20063", cfg.RTPPorts)
		}
		mc.PortMin, mc.PortMax = a, b
	}
	eng, err := media.NewEngine(mc)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	*closers = append(*closers, func(context.Context) error { return eng.Close() })
	reg, err := eng.RegisterMetrics(tel.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("media: metrics: %w", err)
	}
	*closers = append(*closers, func(context.Context) error { return reg.Unregister() })
	sc := sip.Config{
		Listen:         cfg.SIPListen,
		MediaAddr:      mediaIP,
		Engine:         eng,
		Prompts:        lib,
		Handler:        h,
		Logger:         log,
		TracerProvider: tel.TracerProvider,
		MeterProvider:  tel.MeterProvider,
		UserAgent:      "hotline",
		RingTime:       cfg.RingTime,
	}
	more(&sc)
	srv, err := sip.New(sc)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	*closers = append(*closers, func(context.Context) error { return srv.Close() })
	log.Info("sip listening", "addr", cfg.SIPListen, "media", mediaIP.String())
	return srv, nil
}

func openCases(ctx context.Context, cfg *Config, db *sqldb.DB, cals *routing.Calendars, log *slog.Logger) (*cases.Durable, *cases.Protector, error) {
	prot, err := cases.LoadProtector(filepath.Join(cfg.DataDir, "keys"), db.Dialect == sqldb.SQLite, log)
	if err != nil {
		return nil, nil, err
	}
	due := cases.DuePolicy{Calendar: cases.WorkingDayFunc(func(d time.Time) bool {
		k, _, _ := cals.DayKind("cn", d.In(cases.Shanghai()))
		return k == routing.Workday || k == routing.AdjustedWorkday
	})}
	sqlStore, err := cases.OpenSQL(ctx, db, cases.SQLConfig{Protector: prot, Due: due})
	if err != nil {
		return nil, nil, err
	}
	j, err := cases.OpenJournal(filepath.Join(cfg.DataDir, "journal", "cases.journal"))
	if err != nil {
		return nil, nil, err
	}
	d, err := cases.NewDurable(sqlStore, cases.DurableConfig{Journal: j, Keys: prot.Keys, Log: log})
	return d, prot, err
}

// activeCaller is what /healthz asks a plane.
type activeCaller interface{ ActiveCalls() int }

// caseLookup lets a flow's case-number node find cases in the store.
type caseLookup struct{ store cases.Store }

func (c caseLookup) LookupCase(ctx context.Context, number string) (ivr.CaseInfo, bool, error) {
	cs, err := c.store.Get(ctx, number)
	if errors.Is(err, cases.ErrNotFound) {
		return ivr.CaseInfo{}, false, nil
	}
	if err != nil {
		return ivr.CaseInfo{}, false, err
	}
	return ivr.CaseInfo{Number: cs.Number, Status: string(cs.Status)}, true, nil
}
