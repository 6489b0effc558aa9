package routing

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	ivrflows "github.com/cq12345/hotline/ivr/flows"
	"github.com/cq12345/hotline/prompts"
)

// TestDefaultFlowReachesAgent runs the default 12345 flow with the router:
// a silent caller reaches a person (GB/T 33358), the agent answers, the
// caller hears the 工号, and after the agent hangs up the flow goes on to
// the survey.
func TestDefaultFlowReachesAgent(t *testing.T) {
	lib, err := prompts.Load(prompts.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	cals, err := DefaultCalendars()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	for i := range cfg.Queues {
		cfg.Queues[i].RingTimeout = 200 * time.Millisecond
		cfg.Queues[i].WrapUp = 10 * time.Millisecond
	}
	env := ivr.Env{Catalogue: lib.Catalogue, Destinations: NewDirectory(cfg.Destinations, quiet()).IDs(), Queues: cfg.QueueIDs(),
		Calendars: cals, Includes: ivr.FSIncludes{FS: ivrflows.FS()}, MaxKeyPresses: 2, PersonEscape: true}
	flow, err := ivr.Load(ivrflows.Default(), env)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, cfg, func(o *Options) { o.Catalogue = lib.Catalogue; o.Calendars = cals })
	f.addAgent("1007", Available, Skills{})
	f.dialer.set("1007", behaviour{answerAfter: 5 * time.Millisecond, talk: 20 * time.Millisecond})
	in := &ivr.Interpreter{Router: f.r, Catalogue: lib.Catalogue, Calendars: cals, Logger: quiet()}
	call := newFakeCall("flow-1", "13800138000")
	res, err := in.Run(context.Background(), call, flow)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Decisions) != 1 || res.Decisions[0].Kind != ivr.KindQueue || res.Decisions[0].ID != "general" {
		t.Fatalf("decisions %+v", res.Decisions)
	}
	var nodes []string
	for _, st := range res.Path {
		nodes = append(nodes, st.Node)
		if st.Outcome != nil && st.Outcome.Status != ivr.OutcomeReturned {
			t.Fatalf("outcome %+v", st.Outcome)
		}
	}
	if !slices.ContainsFunc(nodes, func(n string) bool { return n == "survey" || len(n) > 7 && n[:7] == "survey/" }) {
		t.Fatalf("no survey after the agent: %v", nodes)
	}
	p := call.Played()
	i := slices.Index(p, "zh-CN/agent-number-is")
	if i < 0 || !slices.Equal(p[i+1:i+6], []string{"zh-CN/digit-1", "zh-CN/digit-0", "zh-CN/digit-0", "zh-CN/digit-7", "zh-CN/agent-at-your-service"}) {
		t.Fatalf("played %v", p)
	}
	if rings := f.dialer.ringLog(); len(rings) != 1 || rings[0].caseNum != "Cflow-1" {
		t.Fatalf("rings %+v", rings)
	}
}
