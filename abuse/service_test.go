package abuse

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLadder: 8 calls in an hour warn; 8 more restrict; 8 more block,
// pending a supervisor (restricted meanwhile); a confirmed block refuses;
// a lift makes the next call ordinary; all of it survives a restart.
func TestLadder(t *testing.T) {
	for name, dsn := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			d := dsn(t)
			e := newEnv(t, d, nil)
			ctx := context.Background()
			const caller = "13900001111"
			want := map[int]Measure{8: Warning, 16: Restricted, 24: Restricted}
			var last Verdict
			for i := 1; i <= 24; i++ {
				at := t0.Add(time.Duration(i) * 7 * time.Minute)
				v := e.call(fmt.Sprintf("c%d", i), caller, at, time.Minute, CallEnd{})
				exp := want[i]
				if exp == None && i > 8 {
					exp = Warning
					if i > 16 {
						exp = Restricted
					}
				}
				if v.Measure != exp {
					t.Fatalf("call %d: measure %s, want %s (%+v)", i, v.Measure, exp, v)
				}
				if (i == 8 || i == 16 || i == 24) != v.New {
					t.Fatalf("call %d: new=%v", i, v.New)
				}
				last = v
			}
			if last.Decision.Measure != Blocked || last.Decision.Status != StatusPending || last.Decision.Previous != Restricted {
				t.Fatalf("24th call: %+v", last.Decision)
			}
			if last.MaxCall != 10*time.Minute || last.Queue != SupervisorQueue {
				t.Fatalf("restricted verdict: %+v", last)
			}
			q, err := e.svc.List(ctx, ListFilter{Queue: true}, "")
			if err != nil || len(q) != 1 || q[0].ID != last.Decision.ID { // the warning and restriction were superseded
				t.Fatalf("queue: %v %+v", err, q)
			}
			if _, err := e.svc.Review(ctx, last.Decision.ID, ReviewRequest{Action: ActionConfirm, Account: "sup1", Role: "supervisor"}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("review without reason: %v", err)
			}
			if _, err := e.svc.Review(ctx, last.Decision.ID, ReviewRequest{Action: ActionConfirm, Reason: "48 calls, no request", Account: "sup1", Role: "supervisor"}); err != nil {
				t.Fatal(err)
			}
			at := t0.Add(4 * time.Hour)
			v := e.call("c25", caller, at, 20*time.Second, CallEnd{})
			if v.Measure != Blocked || v.Remaining <= 0 || v.Counted {
				t.Fatalf("after confirm: %+v", v)
			}
			// Restart: a new service on the same store sees the block.
			e.svc.Close()
			e2 := newEnv(t, d, e.db)
			e2.clock.Set(at.Add(time.Minute))
			if st := e2.svc.Status(caller); st == nil || st.Measure != Blocked || st.Status != StatusActive {
				t.Fatalf("after restart: %+v", st)
			}
			// Explanation and evidence.
			ev, err := e2.svc.Show(ctx, last.Decision.ID, Access{Account: "sup1", Role: "supervisor", Reason: "review"})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("abuse show:\n%s", ev.Explanation)
			if len(ev.Calls) != 25 || !strings.Contains(ev.Explanation, "1小时内拨打了 8 次") || !strings.Contains(ev.Explanation, "8 calls within one hour") {
				t.Fatalf("show: %d calls\n%s", len(ev.Calls), ev.Explanation)
			}
			if len(ev.Warnings) != 8 || len(ev.Decisions) != 3 {
				t.Fatalf("evidence: %d warnings, %d decisions", len(ev.Warnings), len(ev.Decisions))
			}
			var buf bytes.Buffer
			if err := ev.WriteCSV(&buf); err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(&buf).ReadAll()
			if err != nil || len(recs) != 1+25+3 {
				t.Fatalf("csv: %v, %d rows", err, len(recs))
			}
			// Lift: the next call is ordinary, also after another restart.
			e2.clock.Set(at.Add(2 * time.Minute))
			if _, err := e2.svc.Review(ctx, last.Decision.ID, ReviewRequest{Action: ActionLift, Reason: "appeal accepted", Account: "sup2", Role: "supervisor"}); err != nil {
				t.Fatal(err)
			}
			e2.svc.Close()
			e3 := newEnv(t, d, e.db)
			v = e3.call("c26", caller, at.Add(5*time.Minute), time.Minute, CallEnd{})
			if v.Measure != None || !v.Counted {
				t.Fatalf("after lift: %+v", v)
			}
			if n := len(e.audit.l) + len(e2.audit.l); n != 3 { // confirm, show, lift
				t.Fatalf("%d audit entries, want 3", n)
			}
		})
	}
}

func TestNotAbuse(t *testing.T) {
	e := newEnv(t, dsns(t)["sqlite"](t), nil)
	// Follow-ups keyed by case number: taken back.
	for i := 1; i <= 30; i++ {
		v := e.call(fmt.Sprintf("f%d", i), "13900002222", t0.Add(time.Duration(i)*3*time.Minute), time.Minute, CallEnd{FollowUp: true, Progress: true, Outcome: "self_service"})
		if v.Measure != None {
			t.Fatalf("follow-up %d: %+v", i, v)
		}
	}
	// An open case: asked once the count is reached, then exempt.
	e.open.open[testHash("13900003333")] = true
	for i := 1; i <= 30; i++ {
		v := e.call(fmt.Sprintf("o%d", i), "13900003333", t0.Add(time.Duration(i)*3*time.Minute), time.Minute, CallEnd{})
		if v.Measure != None {
			t.Fatalf("open case %d: %+v", i, v)
		}
	}
	// Redials after cut-off calls: 4 bursts of 4 calls within an hour.
	n := 0
	for b := 0; b < 4; b++ {
		for i := 0; i < 4; i++ {
			n++
			at := t0.Add(time.Duration(b)*14*time.Minute + time.Duration(i)*3*time.Minute)
			v := e.call(fmt.Sprintf("r%d", n), "13900004444", at, 30*time.Second, CallEnd{Outcome: "abandoned", CutOff: true})
			if v.Measure != None {
				t.Fatalf("redial %d: %+v", n, v)
			}
			if (i > 0) != (v.Exempt == ExemptRedial) {
				t.Fatalf("call %d of burst %d: exempt %q", i, b, v.Exempt)
			}
		}
	}
	// Allow-listed partner hotline.
	for i := 0; i < 50; i++ {
		if v := e.call(fmt.Sprintf("a%d", i), "12315", t0.Add(time.Duration(i)*time.Minute), 30*time.Second, CallEnd{}); v.Measure != None || v.Exempt != ExemptAllow {
			t.Fatalf("allow: %+v", v)
		}
	}
	// A flag without a dissuasion first: recorded, no measure.
	e.clock.Set(t0.Add(5 * time.Hour))
	e.svc.Check(context.Background(), CallStart{CallID: "x1", Caller: "13900005555", At: t0.Add(5 * time.Hour)})
	if d, err := e.svc.Flag(context.Background(), "x1", "agent7", KindInsult, "swore at me"); err != nil || d != nil {
		t.Fatalf("flag without 劝阻: %v %+v", err, d)
	}
	if _, err := e.svc.Flag(context.Background(), "x1", "agent7", "rude", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown kind: %v", err)
	}
}

// TestFlagMidCall: an agent dissuades, then flags: restricted at once, and
// the watcher of the call hears it; a second threat on a later call goes
// one step up (a block, pending).
func TestFlagMidCall(t *testing.T) {
	e := newEnv(t, dsns(t)["sqlite"](t), nil)
	ctx := context.Background()
	const caller = "13900006666"
	e.svc.Check(ctx, CallStart{CallID: "h1", Caller: caller, At: t0})
	var got []Verdict
	stop := e.svc.Watch("h1", func(v Verdict) { got = append(got, v) })
	defer stop()
	if d, err := e.svc.Flag(ctx, "h1", "agent1", KindWarned, "asked him to stop shouting"); err != nil || d != nil {
		t.Fatal(err, d)
	}
	d, err := e.svc.Flag(ctx, "h1", "agent1", KindInsult, "called me names after the warning")
	if err != nil || d == nil || d.Measure != Restricted || len(d.Flags) != 1 || d.Warned.IsZero() {
		t.Fatalf("flag: %v %+v", err, d)
	}
	if len(got) != 1 || got[0].Measure != Restricted {
		t.Fatalf("watch: %+v", got)
	}
	e.svc.End(ctx, CallEnd{CallID: "h1", Ended: t0.Add(5 * time.Minute), Talk: 4 * time.Minute, Progress: true})
	// After the call, by call id (from the log).
	e.clock.Set(t0.Add(time.Hour))
	d, err = e.svc.Flag(ctx, "h1", "agent1", KindThreat, "threatened to come to the centre")
	if err != nil || d == nil || d.Measure != Blocked || d.Status != StatusPending || d.Previous != Restricted {
		t.Fatalf("after-call threat: %v %+v", err, d)
	}
	ev, err := e.svc.Evidence(ctx, d.ID, Access{Account: "sup", Role: "supervisor", Reason: "police referral"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Flags) != 2 || len(ev.Warned) != 1 || ev.Flags[1].Note != "threatened to come to the centre" || !strings.Contains(ev.Explanation, "威胁") {
		t.Fatalf("evidence: %+v\n%s", ev.Flags, ev.Explanation)
	}
}

// TestSweep: idle callers leave memory; a caller with a measure in force or
// a step on the ladder stays; the log keeps what the retention allows.
func TestSweep(t *testing.T) {
	e := newEnv(t, dsns(t)["sqlite"](t), nil)
	ctx := context.Background()
	e.call("i1", "13900008888", t0, time.Minute, CallEnd{})
	for i := 1; i <= 8; i++ {
		e.call(fmt.Sprintf("w%d", i), "13900009999", t0.Add(time.Duration(i)*time.Minute), 30*time.Second, CallEnd{})
	}
	e.svc.Check(ctx, CallStart{CallID: "lost", Caller: "13900001234", At: t0})
	if n := e.svc.Callers(); n != 3 {
		t.Fatalf("%d callers", n)
	}
	e.clock.Set(t0.Add(8 * 24 * time.Hour))
	e.svc.sweep(ctx)
	if n := e.svc.Callers(); n != 1 || e.svc.eng.size() != 1 {
		t.Fatalf("after a week: %d callers, want the one with a ladder step", n)
	}
	e.svc.mu.Lock()
	active := len(e.svc.active)
	e.svc.mu.Unlock()
	if active != 0 {
		t.Fatalf("a call without an end stays active: %d", active)
	}
	e.svc.Flush(ctx)
	e.clock.Set(t0.Add(200 * 24 * time.Hour))
	e.svc.sweep(ctx)
	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM abuse_events`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d events past the retention", n)
	}
	var d int
	e.db.QueryRow(`SELECT COUNT(*) FROM abuse_decisions`).Scan(&d)
	if d != 1 {
		t.Fatalf("%d decisions, want the one kept", d)
	}
}
