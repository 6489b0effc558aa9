package abuse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSecondProcess: two services on one store (two hotlined processes on
// PostgreSQL, or one after the other on SQLite) see the same counters and
// decisions once they sync.
func TestSecondProcess(t *testing.T) {
	for name, dsn := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			d := dsn(t)
			a := newEnv(t, d, nil)
			b := newEnv(t, d, nil)
			ctx := context.Background()
			const caller = "13900007777"
			// 4 calls on a, 3 on b: the 8th (on a) is warned.
			for i := 1; i <= 7; i++ {
				e := a
				if i > 4 {
					e = b
				}
				at := t0.Add(time.Duration(i) * 5 * time.Minute)
				if v := e.call(fmt.Sprintf("p%d", i), caller, at, time.Minute, CallEnd{}); v.Measure != None {
					t.Fatalf("call %d: %+v", i, v)
				}
				if err := e.svc.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				other := b
				if e == b {
					other = a
				}
				if err := other.svc.Sync(ctx); err != nil {
					t.Fatal(err)
				}
			}
			v := a.call("p8", caller, t0.Add(40*time.Minute), time.Minute, CallEnd{})
			if v.Measure != Warning || !v.New {
				t.Fatalf("8th call on a: %+v", v)
			}
			a.svc.Flush(ctx)
			b.svc.Sync(ctx)
			b.clock.Set(t0.Add(45 * time.Minute))
			if st := b.svc.Status(caller); st == nil || st.ID != v.Decision.ID {
				t.Fatalf("b does not see a's decision: %+v", st)
			}
			// A lift on b reaches a.
			if _, err := b.svc.Review(ctx, v.Decision.ID, ReviewRequest{Action: ActionLift, Reason: "wrong", Account: "sup", Role: "supervisor"}); err != nil {
				t.Fatal(err)
			}
			a.svc.Sync(ctx)
			if st := a.svc.Status(caller); st != nil {
				t.Fatalf("a still sees %+v after the lift on b", st)
			}
			// A second lift is refused.
			if _, err := a.svc.Review(ctx, v.Decision.ID, ReviewRequest{Action: ActionLift, Reason: "again", Account: "sup", Role: "supervisor"}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("second lift: %v", err)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	if _, err := ParsePolicy(DefaultPolicyYAML()); err != nil {
		t.Fatalf("default: %v", err)
	}
	p := DefaultPolicy()
	if p.Measures.Blocked.Confirm != true || p.Exempt.RedialWithin.D() != 10*time.Minute || len(p.Rules) != 6 {
		t.Fatalf("default policy: %+v", p)
	}
	cases := []struct {
		name, src string
		want      []string
	}{
		{"unknown key", "version: 1\nbogus: 1\n", []string{"field bogus not found"}},
		{"bad duration", "version: 1\nladder_memory: forever\n", []string{"duration \"forever\""}},
		{"every problem", `version: 1
exempt: {redial_within: 3h, redial_max_in_row: -1, allow: ["x"]}
long_call: {agent_talk: 30s, ivr_idle: 5m}
ladder_memory: 720h
rules:
  - id: a
    signal: calls
    window: 1h
    at_least: 2
    measure: blocked
    why: ""
  - id: a
    signal: flags
    window: 1h
    at_least: 1
    measure: warning
    kinds: [rude]
    why: x
measures:
  warning: {duration: 24h}
  restricted: {duration: 24h, max_call: 10m}
  blocked: {duration: 2000h}
`, []string{"redial_within", "redial_max_in_row", "exempt.allow[0]", "agent_talk", "line 6: rules[0] (a): at_least 2", "only staff flags may block",
			"why: say why", "line 12: rules[1] (a): id \"a\" is used twice", "kind \"rude\"", "measures.blocked.duration"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(c.src))
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("want an InvalidError, got %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems lack %q:\n%v", w, err)
				}
			}
		})
	}
}
