package routing

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/telemetry"
)

// recorder is a CallbackRecorder that keeps what it is told.
type recorder struct {
	mu   sync.Mutex
	ends []CallbackEnd
}

func (r *recorder) CallbackEnded(_ context.Context, e CallbackEnd) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ends = append(r.ends, e)
	return nil
}

func (r *recorder) got() []CallbackEnd {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]CallbackEnd(nil), r.ends...)
}

// TestCallbackRecorded: each attempt of a callback task reaches the
// recorder (hotlined writes it on the case): a citizen who is busy leaves
// the task open with the reason; the next attempt connects agent and
// citizen and is done, with the talk time.
func TestCallbackRecorded(t *testing.T) {
	rec := &recorder{}
	cfg := &Config{Queues: []Queue{testQueue("general")}, CallbackTrunk: "sip:gw.example.net"}
	f := newFixture(t, cfg, func(o *Options) { o.Callbacks = rec })
	f.addAgent("1001", Paused, Skills{})
	ctx := context.Background()
	c, ch := f.route(ctx, "c1", queueDecision("general"))
	time.Sleep(30 * time.Millisecond)
	c.Hangup(ctx, "caller gave up")
	if res := <-ch; res.err != ivr.ErrHungUp {
		t.Fatalf("abandon: %v %v", res.out, res.err)
	}
	cbs, err := f.r.Callbacks(ctx, CallbackOpen)
	if err != nil || len(cbs) != 1 {
		t.Fatalf("callbacks %+v %v", cbs, err)
	}
	f.dialer.set("1001", behaviour{answerAfter: time.Millisecond})
	for i, tc := range []struct {
		citizen   behaviour
		state     string
		reason    string
		talkAbove time.Duration
	}{
		{behaviour{answerAfter: 5 * time.Millisecond, fail: fmt.Errorf("%w: 486", ErrBusy)}, CallbackOpen, "citizen leg", 0},
		{behaviour{answerAfter: 5 * time.Millisecond, talk: 50 * time.Millisecond}, CallbackDone, "", 40 * time.Millisecond},
	} {
		f.dialer.mu.Lock()
		f.dialer.lines[c.caller] = tc.citizen
		f.dialer.mu.Unlock()
		waitFor(t, "agent free", 2*time.Second, func() bool {
			_, err := f.r.TakeCallback(ctx, cbs[0].ID, "1001")
			return err == nil
		})
		waitFor(t, "attempt recorded", 2*time.Second, func() bool { return len(rec.got()) == i+1 })
		e := rec.got()[i]
		// What the messages print, with the citizen's number masked: test
		// output is a log too.
		seen := strings.ReplaceAll(fmt.Sprintf("%+v", e), c.caller, telemetry.MaskNumber(c.caller))
		if e.State != tc.state || !strings.HasPrefix(e.Reason, tc.reason) || e.Agent != "1001" ||
			e.Callback.ID != cbs[0].ID || e.Callback.Case != "Cc1" || e.Callback.Queue != "general" {
			t.Errorf("attempt %d recorded %s; want state %s reason %q by 1001 on case Cc1", i+1, seen, tc.state, tc.reason)
		}
		if tc.talkAbove > 0 && e.Talk < tc.talkAbove || tc.talkAbove == 0 && e.Talk != 0 {
			t.Errorf("attempt %d talk %v, want above %v (0 when not bridged)", i+1, e.Talk, tc.talkAbove)
		}
		if strings.Contains(fmt.Sprintf("%+v", e), c.caller) {
			t.Errorf("the citizen's number in what is recorded: %s", seen)
		}
	}
}
