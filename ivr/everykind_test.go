package ivr_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cq12345/hotline/ivr"
)

func loadEveryKind(t *testing.T) (*ivr.Flow, ivr.Env) {
	t.Helper()
	env := testEnv(t)
	env.Includes = ivr.FSIncludes{FS: os.DirFS("testdata/valid")}
	src, err := os.ReadFile("testdata/valid/every-kind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ivr.Load(src, env)
	if err != nil {
		t.Fatal(err)
	}
	return f, env
}

func TestEveryKindPaths(t *testing.T) {
	f, env := loadEveryKind(t)
	tests := []struct {
		name   string
		caller string
		at     string
		digits []string
		want   []string
		final  string
	}{
		{"Sichuan caller by prefix", "02888886666", "2026-09-30T10:00+08:00", nil,
			[]string{"hello", "lang", "route-by-prefix", "sichuan"}, "transfer sichuan-12345"},
		{"set and compare variables, say the caller", "13800138000", "2026-09-30T10:00+08:00", []string{"", "1"},
			[]string{"hello", "lang", "route-by-prefix", "menu", "mark", "check", "say-caller", "jump", "agent", "bye"}, "queue general"},
		{"sub-flow survey returns", "13800138000", "2026-10-01T10:00+08:00", []string{"", "2", "3"},
			[]string{"hello", "lang", "route-by-prefix", "menu", "rate", "rate/ask", "rate/thanks", "rate/done", "bye"}, "hangup"},
		{"collect with pattern, then lookup", "13800138000", "2026-09-30T10:00+08:00", []string{"", "3", "1999#", "20260001#"},
			[]string{"hello", "lang", "route-by-prefix", "menu", "number", "lookup", "say-case", "agent", "bye"}, "queue general"},
		{"callback confirmed", "13800138000", "2026-09-30T10:00+08:00", []string{"", "4", "1"},
			[]string{"hello", "lang", "route-by-prefix", "menu", "callback", "bye"}, "callback"},
		{"message recorded (simulated plane)", "13800138000", "2026-09-30T10:00+08:00", []string{"", "5"},
			[]string{"hello", "lang", "route-by-prefix", "menu", "message", "bye"}, "message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ivr.Simulate(context.Background(), f, env, ivr.SimOptions{Caller: tt.caller, At: at(t, tt.at), Digits: tt.digits})
			if err != nil {
				t.Fatal(err)
			}
			if got := nodes(res); !slices.Equal(got, tt.want) {
				t.Errorf("path\n got %v\nwant %v", got, tt.want)
			}
			if got := strings.TrimSpace(res.Final.Kind + " " + res.Final.ID); got != tt.final {
				t.Errorf("final %q, want %q", got, tt.final)
			}
		})
	}
}

// A menu whose retries loop back to itself waits for input each time, so
// validation accepts it; a simulated caller who never presses is stopped
// by the step limit instead of spinning.
func TestSimulationStepLimit(t *testing.T) {
	f := mustLoad(t, `
name: loop
start: m
nodes:
  m:
    kind: menu
    prompts: main-menu
    options: {"1": bye}
    on_exhausted: m
  bye:
    kind: hangup
`)
	_, err := ivr.Simulate(context.Background(), f, testEnv(t), ivr.SimOptions{At: at(t, "2026-09-30T10:00+08:00")})
	if err == nil || !strings.Contains(err.Error(), "steps") {
		t.Fatalf("err = %v, want the step limit", err)
	}
}

func TestSimulationJSONShape(t *testing.T) {
	f, env := loadDefault(t)
	res, err := ivr.Simulate(context.Background(), f, env, ivr.SimOptions{Caller: "13800138000", At: at(t, "2026-10-01T10:00+08:00"), Digits: []string{"", "6"}, Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lang != "en" || res.Steps[3].Kind != "set" || res.Steps[4].Branch != "default" {
		t.Errorf("%+v", res)
	}
	if got := res.Ended.Sub(res.At); got <= 0 {
		t.Errorf("the simulated clock did not advance: %v", got)
	}
}
