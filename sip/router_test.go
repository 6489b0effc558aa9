package sip

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/phone"
	"github.com/cq12345/hotline/routing"
	"github.com/cq12345/hotline/sqldb"
)

// TestRouterOverSIP: the real router (ACD, SQLite store) with this plane as
// its dialer: an agent created through the store registers with its
// password (the registrar checks the stored HA1), a caller routed to the
// queue is rung through to the agent's phone, hears the agent's number,
// and the two talk through the bridge.
func TestRouterOverSIP(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "routing.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := routing.OpenStore(ctx, db, routing.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddAgent(ctx, routing.NewAgent{ID: "7", Name: "Agent", Extension: "1007", Password: "secret-1007",
		Skills: routing.Skills{Languages: []string{"zh-CN"}}, Presence: routing.Available}, time.Now()); err != nil {
		t.Fatal(err)
	}
	dialer := &routing.LateDialer{}
	router, err := routing.New(routing.Options{Store: store, Dialer: dialer, Catalogue: testPrompts(t).Catalogue,
		Config: &routing.Config{Queues: []routing.Queue{{ID: "general", Strategy: routing.LongestIdle, Overflow: routing.OverflowFlow, MaxMisses: 2, RingTimeout: 5 * time.Second, WrapUp: time.Second,
			AnnounceFirst: time.Minute, AnnounceEvery: time.Minute, MaxWait: time.Minute}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	outcomes := make(chan ivr.Outcome, 1)
	srv := startServer(t, func(ctx context.Context, c ivr.Call) {
		if err := c.Answer(ctx); err != nil {
			return
		}
		o, err := router.Route(ctx, c, ivr.Decision{Kind: ivr.KindQueue, ID: "general", Lang: "zh-CN"})
		if err != nil {
			o.Reason = err.Error()
		}
		outcomes <- o
	}, withRegistrar(store))
	dialer.Set(srv)

	agentRep := make(chan phone.Report, 1)
	agentPhone(t, srv, "1007", "secret-1007", phone.AnswerConfig{RingFor: 200 * time.Millisecond, Script: phone.Script{Send: tone(1000), HangupAfter: 7 * time.Second},
		OnReport: func(r phone.Report) {
			if r.Answered {
				agentRep <- r
			}
		}})
	caller, err := phone.New(phone.Config{SIPAddr: "127.0.0.1:0", Prompts: testPrompts(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	rep := caller.Run(ctx, phone.DialOptions{Target: srv.Addr().String(), To: "12345", From: "13800138000"},
		phone.Script{Send: tone(600), HangupAfter: 10 * time.Second})
	var o ivr.Outcome
	select {
	case o = <-outcomes:
	case <-time.After(5 * time.Second):
		t.Fatal("no routing outcome")
	}
	ar := <-agentRep
	t.Logf("outcome %+v; caller heard %v, rx %d; agent rx %d", o, rep.PromptsHeard, rep.RTPReceived, ar.RTPReceived)
	if o.Status != ivr.OutcomeReturned {
		t.Errorf("outcome %+v, want returned (the agent hung up)", o)
	}
	if !slices.Contains(rep.PromptsHeard, "zh-CN/agent-number-is") {
		t.Errorf("caller heard %v, want the agent's number", rep.PromptsHeard)
	}
	// The agent hears the caller from the end of the 工号 prompt (~3.7 s
	// after the answer) until it hangs up at 7 s.
	if rep.RTPReceived < 250 || ar.RTPReceived < 100 {
		t.Errorf("audio: caller got %d, agent got %d packets", rep.RTPReceived, ar.RTPReceived)
	}
}
