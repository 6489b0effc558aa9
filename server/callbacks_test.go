package server

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/routing"
	"github.com/cq12345/hotline/sqldb"
)

// TestCallbackRecorder: a callback that connected agent and citizen is a
// routed event on the call's case naming the agent; an attempt that
// reached nobody, or a task without a case, writes nothing.
func TestCallbackRecorder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqldb.Open(ctx, filepath.Join(dir, "hotline.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	prot, err := cases.LoadProtector(filepath.Join(dir, "keys"), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := cases.OpenSQL(ctx, db, cases.SQLConfig{Protector: prot})
	if err != nil {
		t.Fatal(err)
	}
	c, err := store.CreateForCall(ctx, cases.NewCall{CallID: "call-1", Caller: "13800138000", Dialled: "12345", Plane: "sip", Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	r := callbackRecorder{cases: store}
	cb := routing.Callback{ID: "cb1", Case: c.Number, CallID: "call-1", Queue: "general"}
	for _, e := range []routing.CallbackEnd{
		{Callback: cb, Agent: "1002", State: routing.CallbackOpen, Reason: "citizen leg: busy"},
		{Callback: cb, Agent: "1002", State: routing.CallbackFailed, Reason: "citizen leg: no answer"},
		{Callback: routing.Callback{ID: "cb2", Queue: "general"}, Agent: "1003", State: routing.CallbackDone},
		{Callback: cb, Agent: "1001", State: routing.CallbackDone, Talk: 42 * time.Second},
	} {
		if err := r.CallbackEnded(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := store.Events(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var routed []cases.Event
	for _, e := range evs {
		if e.Kind == cases.EventRouted {
			routed = append(routed, e)
		}
	}
	if len(routed) != 1 || routed[0].Agent != "1001" || routed[0].Queue != "general" || routed[0].Account != "callback cb1" {
		t.Fatalf("routed events %+v; want one, agent 1001 by callback cb1", routed)
	}
	got, err := store.Get(ctx, c.Number)
	if err != nil || got.Agent != "1001" {
		t.Fatalf("case agent %q (%v), want 1001", got.Agent, err)
	}
	// A case that does not exist is an error the router logs.
	if err := r.CallbackEnded(ctx, routing.CallbackEnd{Callback: routing.Callback{ID: "cb3", Case: "20990101-000001"}, Agent: "1001", State: routing.CallbackDone}); err == nil {
		t.Error("no error for a callback on a case that does not exist")
	}
}
