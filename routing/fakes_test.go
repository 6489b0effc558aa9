package routing

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/sqldb"
)

// fakeCall is a caller's call: it records what it was played.
type fakeCall struct {
	id, caller, caseNum string
	started             time.Time

	mu     sync.Mutex
	played []string
	once   sync.Once
	done   chan struct{}
	reason string
}

func newFakeCall(id, caller string) *fakeCall {
	return &fakeCall{id: id, caller: caller, caseNum: "C" + id, started: time.Now(), done: make(chan struct{})}
}

func (c *fakeCall) ID() string { return c.id }
func (c *fakeCall) Info() ivr.CallInfo {
	return ivr.CallInfo{Caller: c.caller, Dialled: "12345", Plane: "fake", Started: c.started}
}
func (c *fakeCall) Answer(context.Context) error { return nil }
func (c *fakeCall) Play(ctx context.Context, keys []string, _ bool) error {
	select {
	case <-c.done:
		return ivr.ErrHungUp
	case <-ctx.Done():
		return ctx.Err()
	default:
	}
	c.mu.Lock()
	c.played = append(c.played, keys...)
	c.mu.Unlock()
	return nil
}
func (c *fakeCall) ReadDigit(ctx context.Context, _ time.Duration) (byte, error) {
	return 0, ivr.ErrTimeout
}
func (c *fakeCall) FlushDigits() {}
func (c *fakeCall) Hangup(_ context.Context, reason string) error {
	c.once.Do(func() { c.reason = reason; close(c.done) })
	return nil
}
func (c *fakeCall) Done() <-chan struct{} { return c.done }
func (c *fakeCall) CaseNumber() string    { return c.caseNum }
func (c *fakeCall) Played() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.played)
}

// fakeLeg is an outbound leg.
type fakeLeg struct {
	*fakeCall
	answered chan struct{}
	aOnce    sync.Once
	err      error
	talk     time.Duration
	refer    string        // after talk, the phone transfers the caller here (REFER)
	early    chan struct{} // closed when the far end sends early media
}

func (l *fakeLeg) EarlyMedia() <-chan struct{} { return l.early }

func (l *fakeLeg) Answered() <-chan struct{} { return l.answered }
func (l *fakeLeg) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
func (l *fakeLeg) answer() { l.aOnce.Do(func() { close(l.answered) }) }
func (l *fakeLeg) fail(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
	l.Hangup(context.Background(), err.Error())
}

// behaviour is how a fake phone or line acts.
type behaviour struct {
	answerAfter time.Duration
	never       bool  // rings until hung up
	fail        error // ends unanswered with this error after answerAfter
	talk        time.Duration
	refer       string        // after talk: a blind transfer to this destination id
	earlyAfter  time.Duration // > 0: early media begins this long after the dial
}

type ringRec struct {
	agent, call, caseNum string
	at                   time.Time
}

// fakeDialer is the plane: it rings agents and lines as told.
type fakeDialer struct {
	mu      sync.Mutex
	agents  map[string]behaviour // by agent id
	lines   map[string]behaviour // by number
	rings   []ringRec
	outs    []Outbound
	bridged []string // "a<->b" call ids
	// audio: what the waiting call heard besides prompts, in order:
	// "early <leg>", "early stopped", "bridge".
	audio []string
}

// RelayEarly implements EarlyRelayer.
func (d *fakeDialer) RelayEarly(c ivr.Call, leg Leg) (func(), error) {
	d.mu.Lock()
	d.audio = append(d.audio, "early "+leg.ID())
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		d.audio = append(d.audio, "early stopped")
		d.mu.Unlock()
	}, nil
}

func newFakeDialer() *fakeDialer {
	return &fakeDialer{agents: map[string]behaviour{}, lines: map[string]behaviour{}}
}

func (d *fakeDialer) set(agent string, b behaviour) {
	d.mu.Lock()
	d.agents[agent] = b
	d.mu.Unlock()
}

func (d *fakeDialer) leg(id string, b behaviour) *fakeLeg {
	l := &fakeLeg{fakeCall: newFakeCall(id, ""), answered: make(chan struct{}), talk: b.talk, refer: b.refer, early: make(chan struct{})}
	if b.earlyAfter > 0 {
		time.AfterFunc(b.earlyAfter, func() { close(l.early) })
	}
	if b.never {
		return l
	}
	go func() {
		t := time.NewTimer(b.answerAfter)
		defer t.Stop()
		select {
		case <-t.C:
			if b.fail != nil {
				l.fail(b.fail)
			} else {
				l.answer()
			}
		case <-l.done:
		}
	}()
	return l
}

func (d *fakeDialer) RingAgent(_ context.Context, r AgentRing) (Leg, error) {
	d.mu.Lock()
	b, ok := d.agents[r.Agent.ID]
	callID := ""
	if r.Caller != nil {
		callID = r.Caller.ID()
	}
	d.rings = append(d.rings, ringRec{agent: r.Agent.ID, call: callID, caseNum: r.CaseNumber, at: time.Now()})
	d.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: agent %s not registered", ErrUnreachable, r.Agent.ID)
	}
	return d.leg("agent-"+r.Agent.ID+"-"+newID()[:4], b), nil
}

func (d *fakeDialer) DialOut(_ context.Context, o Outbound) (Leg, error) {
	d.mu.Lock()
	d.outs = append(d.outs, o)
	b, ok := d.lines[o.Number]
	d.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: no line %s", ErrUnreachable, o.Number)
	}
	return d.leg("line-"+o.Number+"-"+newID()[:4], b), nil
}

// Bridge lasts until a side ends; a leg with a talk time hangs up after it.
func (d *fakeDialer) Bridge(ctx context.Context, a, b ivr.Call) error {
	d.mu.Lock()
	d.bridged = append(d.bridged, a.ID()+"<->"+b.ID())
	d.audio = append(d.audio, "bridge")
	d.mu.Unlock()
	var talk <-chan time.Time
	var talker *fakeLeg
	for _, c := range []ivr.Call{a, b} {
		if l, ok := c.(*fakeLeg); ok && l.talk > 0 {
			t := time.NewTimer(l.talk)
			defer t.Stop()
			talk, talker = t.C, l
		}
	}
	select {
	case <-talk:
		if talker.refer != "" {
			// The phone asked for a blind transfer: the plane ends the
			// bridge with the request and hangs nobody up.
			return &TransferRequest{Destination: talker.refer, By: talker.ID()}
		}
		talker.Hangup(ctx, "talk over")
	case <-a.Done():
	case <-b.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func (d *fakeDialer) ringLog() []ringRec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.rings)
}

func (d *fakeDialer) ringsOf(agent string) int {
	n := 0
	for _, r := range d.ringLog() {
		if r.agent == agent {
			n++
		}
	}
	return n
}

// openStore opens a fresh SQLite store.
func openStore(t testing.TB) *SQLStore {
	t.Helper()
	return openStoreDSN(t, filepath.Join(t.TempDir(), "routing.db"))
}

func openStoreDSN(t testing.TB, dsn string) *SQLStore {
	t.Helper()
	db, err := sqldb.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := OpenStore(context.Background(), db, StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pgDSN returns a DSN on a fresh schema of the test PostgreSQL, or "" when
// there is none (a failure under CI=true).
func pgDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("HOTLINE_TEST_PG_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("HOTLINE_TEST_PG_DSN is not set under CI=true (make test starts PostgreSQL)")
		}
		return ""
	}
	ctx := context.Background()
	schema := "routingtest_" + newID()
	admin, err := sqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// testQueue is a queue with short timings for tests.
func testQueue(id string) Queue {
	return Queue{ID: id, Strategy: LongestIdle, RingTimeout: 150 * time.Millisecond, WrapUp: 30 * time.Millisecond,
		MaxWait: -1, Overflow: OverflowFlow, AnnounceFirst: time.Hour, AnnounceEvery: time.Hour, MaxMisses: 2}
}

type fixture struct {
	t      *testing.T
	store  *SQLStore
	dialer *fakeDialer
	r      *Router
}

func newFixture(t *testing.T, cfg *Config, opts ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, store: openStore(t), dialer: newFakeDialer()}
	o := Options{Config: cfg, Store: f.store, Dialer: f.dialer, Tick: 10 * time.Millisecond, Refresh: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	for _, fn := range opts {
		fn(&o)
	}
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	t.Cleanup(func() { r.Close() })
	return f
}

func (f *fixture) addAgent(id string, presence AgentState, skills Skills) {
	f.t.Helper()
	n := NewAgent{ID: id, Name: "Agent " + id, Extension: "8" + id, Password: "secret-" + id, Skills: skills, Presence: presence}
	if presence == Paused {
		n.PauseReason = "training"
	}
	if _, err := f.r.AddAgent(context.Background(), n); err != nil {
		f.t.Fatal(err)
	}
}

// result is what Route returned for a call.
type result struct {
	call *fakeCall
	out  ivr.Outcome
	err  error
	at   time.Time
}

// route runs Route for a new caller in the background.
func (f *fixture) route(ctx context.Context, id string, d ivr.Decision) (*fakeCall, <-chan result) {
	c := newFakeCall(id, "1380013"+fmt.Sprintf("%04d", len(id)*7%10000))
	ch := make(chan result, 1)
	go func() {
		out, err := f.r.Route(ctx, c, d)
		ch <- result{call: c, out: out, err: err, at: time.Now()}
	}()
	return c, ch
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func randHex() string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// routeQueued is route, returning once the call joined its queue (or
// already rings an agent), so that join order is the order of the calls.
func (f *fixture) routeQueued(ctx context.Context, id string, d ivr.Decision) (*fakeCall, <-chan result) {
	f.t.Helper()
	c, ch := f.route(ctx, id, d)
	waitFor(f.t, id+" queued", 2*time.Second, func() bool {
		f.r.mu.Lock()
		defer f.r.mu.Unlock()
		for _, q := range f.r.qorder {
			for _, w := range q.waiting {
				if w.call.ID() == id {
					return true
				}
			}
		}
		for _, r := range f.dialer.ringLog() {
			if r.call == id {
				return true
			}
		}
		return false
	})
	return c, ch
}
