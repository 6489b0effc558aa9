package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/api/client"
	"github.com/cq12345/hotline/flows"
	"github.com/cq12345/hotline/flows/flowstest"
	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/routing"
)

// noPhones is a plane without phones: every leg is unreachable.
type noPhones struct{}

func (noPhones) RingAgent(context.Context, routing.AgentRing) (routing.Leg, error) {
	return nil, routing.ErrUnreachable
}
func (noPhones) DialOut(context.Context, routing.Outbound) (routing.Leg, error) {
	return nil, routing.ErrUnreachable
}
func (noPhones) Bridge(context.Context, ivr.Call, ivr.Call) error { return nil }

// newRoutingFixture serves the API with a router; clients by account:
// admin "alice", supervisor "sam", agent "1001", auditor "rita".
func newRoutingFixture(t *testing.T) (map[string]*client.Client, *routing.Router) {
	t.Helper()
	ctx := context.Background()
	env := flowstest.Env(t)
	db := flowstest.Open(t, filepath.Join(t.TempDir(), "api.db"))
	fs, err := flows.NewStore(ctx, db, flows.LoaderFor(env).Checker())
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	store, err := routing.OpenStore(ctx, db, routing.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := routing.New(routing.Options{Store: store, Dialer: noPhones{}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	srv := httptest.NewServer(api.New(api.Config{Flows: fs, Tokens: tokens, Env: env, Routing: r, Logger: quiet}))
	t.Cleanup(srv.Close)
	as := map[string]*client.Client{}
	for name, role := range map[string]auth.Role{"alice": auth.Admin, "sam": auth.Supervisor, "1001": auth.Agent, "rita": auth.Auditor} {
		secret, _, err := tokens.Create(ctx, name, role, "test")
		if err != nil {
			t.Fatal(err)
		}
		as[name] = client.New(srv.URL, secret)
	}
	return as, r
}

func TestRoutingAPI(t *testing.T) {
	ctx := context.Background()
	as, _ := newRoutingFixture(t)

	ds, err := as["rita"].Destinations(ctx)
	if err != nil || len(ds) != 4 || ds[0].ID != "12315" || ds[2].Number != "02363862437" || ds[0].PassCaller {
		t.Fatalf("destinations %+v %v", ds, err)
	}
	qs, err := as["rita"].Queues(ctx)
	if err != nil || len(qs) != len(routing.DefaultQueues()) || qs[0].Queue.ID != "general" || qs[0].Queue.Strategy != routing.LongestIdle {
		t.Fatalf("queues %+v %v", qs, err)
	}
	if _, err := as["rita"].Queue(ctx, "nope"); statusOf(err) != http.StatusNotFound {
		t.Fatalf("unknown queue: %v", err)
	}

	n := routing.NewAgent{ID: "1001", Name: "王芳", Extension: "8001", Password: "s3cret-pass", Skills: routing.Skills{Languages: []string{"zh-CN", "en"}}}
	if _, err := as["sam"].AddAgent(ctx, n); statusOf(err) != http.StatusForbidden {
		t.Fatalf("supervisor added an agent: %v", err)
	}
	a, err := as["alice"].AddAgent(ctx, n)
	if err != nil || a.State != routing.LoggedOut || a.Extension != "8001" {
		t.Fatalf("add %+v %v", a, err)
	}
	if _, err := as["alice"].AddAgent(ctx, n); statusOf(err) != http.StatusConflict {
		t.Fatalf("duplicate: %v", err)
	}
	bad := n
	bad.ID, bad.Extension, bad.Password = "1002", "8002", "short"
	if _, err := as["alice"].AddAgent(ctx, bad); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("bad agent: %v", err)
	}
	as["alice"].AddAgent(ctx, routing.NewAgent{ID: "1002", Name: "赵", Extension: "8002", Password: "s3cret-pass", Presence: routing.Paused, PauseReason: "training"})

	// The agent logs themselves in; may not change another agent.
	if a, err = as["1001"].SetAgentState(ctx, "1001", routing.Available, ""); err != nil || a.State != routing.Available {
		t.Fatalf("login %+v %v", a, err)
	}
	if _, err := as["1001"].SetAgentState(ctx, "1002", routing.Available, ""); statusOf(err) != http.StatusForbidden {
		t.Fatalf("agent changed another: %v", err)
	}
	if _, err := as["sam"].SetAgentState(ctx, "1001", routing.Paused, ""); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("pause without reason: %v", err)
	}
	if a, err = as["sam"].SetAgentState(ctx, "1001", routing.Paused, "lunch"); err != nil || a.PauseReason != "lunch" {
		t.Fatalf("pause %+v %v", a, err)
	}
	if _, err := as["rita"].SetAgentState(ctx, "1001", routing.Available, ""); statusOf(err) != http.StatusForbidden {
		t.Fatalf("auditor changed state: %v", err)
	}
	if _, err := as["sam"].SetAgentState(ctx, "9999", routing.Available, ""); statusOf(err) != http.StatusNotFound {
		t.Fatalf("unknown agent: %v", err)
	}
	l, err := as["rita"].Agents(ctx)
	if err != nil || len(l) != 2 || l[0].State != routing.Paused || l[1].PauseReason != "training" {
		t.Fatalf("agents %+v %v", l, err)
	}
	st, err := as["rita"].Queue(ctx, "general")
	if err != nil || st.Figures.Agents["paused:lunch"] != 1 || st.Figures.Agents["paused:training"] != 1 {
		t.Fatalf("queue %+v %v", st, err)
	}
	fig, err := as["rita"].RoutingFigures(ctx)
	if err != nil || len(fig.Queues) != len(routing.DefaultQueues()) || len(fig.Destinations) != 4 {
		t.Fatalf("figures %+v %v", fig, err)
	}
	cbs, err := as["sam"].Callbacks(ctx, routing.CallbackOpen)
	if err != nil || len(cbs) != 0 {
		t.Fatalf("callbacks %+v %v", cbs, err)
	}
	if _, err := as["1001"].TakeCallback(ctx, "nope", ""); statusOf(err) != http.StatusNotFound {
		t.Fatalf("take unknown: %v", err)
	}
	// Transfers of calls in progress: anything but a configured
	// destination is refused (403, toll-fraud guard), a call in no bridge
	// is 404, and an auditor may not transfer.
	if err := as["1001"].TransferCall(ctx, "call-9", "0085212345678"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("transfer to an unconfigured number: %v", err)
	}
	if err := as["sam"].TransferCall(ctx, "call-9", "12315"); statusOf(err) != http.StatusNotFound {
		t.Fatalf("transfer of a call in no bridge: %v", err)
	}
	if err := as["rita"].TransferCall(ctx, "call-9", "12315"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("auditor transferred: %v", err)
	}
	if err := as["sam"].RemoveAgent(ctx, "1002"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("supervisor removed: %v", err)
	}
	if err := as["alice"].RemoveAgent(ctx, "1002"); err != nil {
		t.Fatal(err)
	}
	if _, err := as["rita"].Agent(ctx, "1002"); statusOf(err) != http.StatusNotFound {
		t.Fatalf("removed agent: %v", err)
	}
}

// waitingCall is a caller's call that only waits.
type waitingCall struct{ done chan struct{} }

func (c waitingCall) ID() string { return "call-1" }
func (c waitingCall) Info() ivr.CallInfo {
	return ivr.CallInfo{Caller: "13800138000", Dialled: "12345", Plane: "test"}
}
func (c waitingCall) Answer(context.Context) error               { return nil }
func (c waitingCall) Play(context.Context, []string, bool) error { return nil }
func (c waitingCall) ReadDigit(context.Context, time.Duration) (byte, error) {
	return 0, ivr.ErrTimeout
}
func (c waitingCall) FlushDigits()                         {}
func (c waitingCall) Hangup(context.Context, string) error { return nil }
func (c waitingCall) Done() <-chan struct{}                { return c.done }
func (c waitingCall) CaseNumber() string                   { return "2026112800042" }

// TestAgentEventsStream: an agent streams their own call events (SSE);
// not another agent's.
func TestAgentEventsStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	as, r := newRoutingFixture(t)
	if _, err := as["alice"].AddAgent(ctx, routing.NewAgent{ID: "1001", Name: "王", Extension: "8001", Password: "s3cret-pass", Presence: routing.Available}); err != nil {
		t.Fatal(err)
	}
	if _, err := as["1001"].AgentEvents(ctx, "1002"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("another agent's events: %v", err)
	}
	events, err := as["1001"].AgentEvents(ctx, "1001")
	if err != nil {
		t.Fatal(err)
	}
	// The phone is unreachable (not registered): not a miss, but the
	// agent sees it, with the case number.
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Route(ctx, waitingCall{done: make(chan struct{})}, ivr.Decision{Kind: ivr.KindQueue, ID: "general"})
	}()
	select {
	case e := <-events:
		if e.Kind != "unreachable" || e.Case != "2026112800042" || e.Caller != "138****8000" || e.Agent != "1001" {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	cancel()
	<-done
}
