package ivr_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
)

func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02T15:04Z07:00", s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func nodes(r *ivr.SimResult) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Node)
	}
	return out
}

// defaultPaths walks every path of the default flow. Digits: one element
// per input point (language, main menu, ..., survey); "" is no key.
var defaultPaths = []struct {
	name    string
	at      string
	digits  []string
	outcome string // router outcome ("" = returned)
	noCases bool   // the case store knows no case
	want    []string
	final   string // "kind:id"
	end     string
	survey  int
}{
	{name: "nothing pressed reaches a person", at: "2026-09-30T10:00+08:00",
		want:  []string{"welcome", "language", "main", "agent", "after-agent", "survey", "bye"},
		final: "queue:general", end: "hangup"},
	{name: "two wrong keys reach a person", at: "2026-09-30T10:00+08:00", digits: []string{"", "9", "*", "3"},
		want:  []string{"welcome", "language", "main", "agent", "after-agent", "survey", "survey-thanks"},
		final: "queue:general", end: "hangup", survey: 3},
	{name: "1 consultation/help, rated 非常满意", at: "2026-09-30T10:00+08:00", digits: []string{"", "1", "1"},
		want:  []string{"welcome", "language", "main", "consult", "queue-general", "after-agent", "survey", "survey-thanks"},
		final: "queue:general", end: "hangup", survey: 1},
	{name: "2 complaint/report", at: "2026-09-30T10:00+08:00", digits: []string{"", "2", "4"},
		want:  []string{"welcome", "language", "main", "complaint", "queue-complaints", "after-agent", "survey", "survey-thanks"},
		final: "queue:complaints", end: "hangup", survey: 4},
	{name: "3 suggestion", at: "2026-09-30T10:00+08:00", digits: []string{"", "3", "5"},
		want:  []string{"welcome", "language", "main", "suggestion", "queue-suggestions", "after-agent", "survey", "survey-thanks"},
		final: "queue:suggestions", end: "hangup", survey: 5},
	{name: "4 consumer complaints to 12315", at: "2026-09-30T10:00+08:00", digits: []string{"", "4"}, outcome: "left",
		want:  []string{"welcome", "language", "main", "to-12315"},
		final: "transfer:12315", end: "handed-over"},
	{name: "4 with 12315 unreachable falls back to 12345", at: "2026-09-30T10:00+08:00", digits: []string{"", "4", "1"}, outcome: "failed",
		want:  []string{"welcome", "language", "main", "to-12315", "market-fallback", "line-unavailable", "queue-general", "callback", "callback-booked", "callback-case", "bye"},
		final: "callback", end: "hangup"},
	{name: "5 labour and social security to 12333", at: "2026-09-30T10:00+08:00", digits: []string{"", "5"}, outcome: "left",
		want:  []string{"welcome", "language", "main", "to-12333"},
		final: "transfer:12333", end: "handed-over"},
	{name: "5 with 12333 unreachable, no answer to the callback offer", at: "2026-09-30T10:00+08:00", digits: []string{"", "5"}, outcome: "failed",
		want:  []string{"welcome", "language", "main", "to-12333", "hr-fallback", "line-unavailable", "queue-general", "callback", "message", "message-saved"},
		final: "message", end: "hangup"},
	{name: "6 education bureau, Wednesday 10:00: open", at: "2026-09-30T10:00+08:00", digits: []string{"", "6"}, outcome: "left",
		want:  []string{"welcome", "language", "main", "edu", "edu-hours", "to-edu"},
		final: "transfer:edu-bureau", end: "handed-over"},
	{name: "6 education bureau on 2026-10-01 (National Day): closed", at: "2026-10-01T10:00+08:00", digits: []string{"", "6", "2"},
		want:  []string{"welcome", "language", "main", "edu", "edu-hours", "edu-closed", "queue-complaints-quiet", "after-agent", "survey", "survey-thanks"},
		final: "queue:complaints", end: "hangup", survey: 2},
	{name: "6 education bureau on 2026-10-10 (调休 Saturday): open", at: "2026-10-10T10:00+08:00", digits: []string{"", "6"}, outcome: "left",
		want:  []string{"welcome", "language", "main", "edu", "edu-hours", "to-edu"},
		final: "transfer:edu-bureau", end: "handed-over"},
	{name: "6 education bureau after hours (Wednesday 20:00)", at: "2026-09-30T20:00+08:00", digits: []string{"", "6", "3"},
		want:  []string{"welcome", "language", "main", "edu", "edu-hours", "edu-closed", "queue-complaints-quiet", "after-agent", "survey", "survey-thanks"},
		final: "queue:complaints", end: "hangup", survey: 3},
	{name: "6 education bureau at lunch (13:00)", at: "2026-09-30T13:00+08:00", digits: []string{"", "6", "1"},
		want:  []string{"welcome", "language", "main", "edu", "edu-hours", "edu-closed", "queue-complaints-quiet", "after-agent", "survey", "survey-thanks"},
		final: "queue:complaints", end: "hangup", survey: 1},
	{name: "6 education bureau on an ordinary Sunday", at: "2026-10-11T10:00+08:00", digits: []string{"", "6", "1"},
		want:  []string{"welcome", "language", "main", "edu", "edu-hours", "edu-closed", "queue-complaints-quiet", "after-agent", "survey", "survey-thanks"},
		final: "queue:complaints", end: "hangup", survey: 1},
	{name: "6 education bureau busy: the complaints queue takes it", at: "2026-09-30T10:00+08:00", digits: []string{"", "6"}, outcome: "failed",
		want:  []string{"welcome", "language", "main", "edu", "edu-hours", "to-edu", "line-unavailable-complaints", "queue-complaints", "callback", "message", "message-saved"},
		final: "message", end: "hangup"},
	{name: "7 Sichuan (川渝互转)", at: "2026-09-30T10:00+08:00", digits: []string{"", "7"}, outcome: "left",
		want:  []string{"welcome", "language", "main", "to-sichuan"},
		final: "transfer:sichuan-12345", end: "handed-over"},
	{name: "7 Sichuan unreachable: 12345 agent", at: "2026-09-30T10:00+08:00", digits: []string{"", "7", "2"}, outcome: "failed",
		want:  []string{"welcome", "language", "main", "to-sichuan", "sichuan-fallback", "line-unavailable", "queue-general", "callback", "message", "message-saved"},
		final: "message", end: "hangup"},
	{name: "8 case follow-up, case found", at: "2026-09-30T10:00+08:00", digits: []string{"", "8", "20261128000123#", "1"},
		want:  []string{"welcome", "language", "main", "case-number", "case-lookup", "case-say", "queue-followup", "after-agent", "survey", "survey-thanks"},
		final: "queue:followup", end: "hangup", survey: 1},
	{name: "8 case follow-up, unknown case", at: "2026-09-30T10:00+08:00", digits: []string{"", "8", "20261128000999#", "1"}, noCases: true,
		want:  []string{"welcome", "language", "main", "case-number", "case-lookup", "case-unknown", "agent", "after-agent", "survey", "survey-thanks"},
		final: "queue:general", end: "hangup", survey: 1},
	{name: "8 case follow-up, too short twice then nothing", at: "2026-09-30T10:00+08:00", digits: []string{"", "8", "12#", "3#"},
		want:  []string{"welcome", "language", "main", "case-number", "agent", "after-agent", "survey", "bye"},
		final: "queue:general", end: "hangup"},
	{name: "0 at the main menu", at: "2026-09-30T10:00+08:00", digits: []string{"", "0", "2"},
		want:  []string{"welcome", "language", "main", "agent", "after-agent", "survey", "survey-thanks"},
		final: "queue:general", end: "hangup", survey: 2},
	{name: "0 at the language menu", at: "2026-09-30T10:00+08:00", digits: []string{"0", "1"},
		want:  []string{"welcome", "language", "agent", "after-agent", "survey", "survey-thanks"},
		final: "queue:general", end: "hangup", survey: 1},
	{name: "9 English, then 2", at: "2026-09-30T10:00+08:00", digits: []string{"9", "2", "1"},
		want:  []string{"welcome", "language", "main", "complaint", "queue-complaints", "after-agent", "survey", "survey-thanks"},
		final: "queue:complaints", end: "hangup", survey: 1},
	{name: "invalid key then 3", at: "2026-09-30T10:00+08:00", digits: []string{"", "9", "3", ""},
		want:  []string{"welcome", "language", "main", "suggestion", "queue-suggestions", "after-agent", "survey", "bye"},
		final: "queue:suggestions", end: "hangup"},
	{name: "0 in the survey reaches a person again", at: "2026-09-30T10:00+08:00", digits: []string{"", "1", "0", "2"},
		want:  []string{"welcome", "language", "main", "consult", "queue-general", "after-agent", "survey", "agent", "after-agent", "survey", "survey-thanks"},
		final: "queue:general", end: "hangup", survey: 2},
	// A key typed during the greeting skips the language choice and goes
	// to the main menu (the language node keeps it): 3 = suggestion.
	{name: "typed ahead: 3 during the greeting", at: "2026-09-30T10:00+08:00", digits: []string{"3"},
		want:  []string{"welcome", "language", "main", "suggestion", "queue-suggestions", "after-agent", "survey", "bye"},
		final: "queue:suggestions", end: "hangup"},
	{name: "typed ahead: 9 then 2 (English, complaint)", at: "2026-09-30T10:00+08:00", digits: []string{"92"},
		want:  []string{"welcome", "language", "main", "complaint", "queue-complaints", "after-agent", "survey", "bye"},
		final: "queue:complaints", end: "hangup"},
}

func TestDefaultFlowPaths(t *testing.T) {
	f, env := loadDefault(t)
	visited := map[string]bool{}
	for _, tt := range defaultPaths {
		t.Run(tt.name, func(t *testing.T) {
			opts := ivr.SimOptions{Caller: "13800138000", At: at(t, tt.at), Digits: tt.digits, RouterOutcome: tt.outcome}
			if tt.noCases {
				opts.Cases = ivr.NewMemoryCases()
			}
			res, err := ivr.Simulate(context.Background(), f, env, opts)
			if err != nil {
				t.Fatal(err)
			}
			got := nodes(res)
			for _, n := range got {
				visited[n] = true
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("path\n got %v\nwant %v", got, tt.want)
			}
			if final := res.Final.Kind + ":" + res.Final.ID; strings.TrimSuffix(final, ":") != tt.final {
				t.Errorf("final = %s, want %s", final, tt.final)
			}
			if res.End != tt.end {
				t.Errorf("end = %s, want %s", res.End, tt.end)
			}
			if res.Survey != tt.survey {
				t.Errorf("survey = %d, want %d", res.Survey, tt.survey)
			}
			if res.Caller != "138****8000" {
				t.Errorf("caller %q not masked", res.Caller)
			}
		})
	}
	for _, id := range f.NodeIDs() {
		if !visited[id] {
			t.Errorf("node %s is on no tested path", id)
		}
	}
}

func TestDefaultFlowEnglishPrompts(t *testing.T) {
	f, env := loadDefault(t)
	res, err := ivr.Simulate(context.Background(), f, env, ivr.SimOptions{Caller: "13800138000", At: at(t, "2026-09-30T10:00+08:00"), Digits: []string{"9", "2", "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lang != "en" {
		t.Fatalf("lang = %s", res.Lang)
	}
	want := []string{"zh-CN/greeting", "zh-CN/emergency-notice", "zh-CN/language-menu", "en/main-menu", "en/transferring-agent", "en/survey", "en/survey-thanks", "en/goodbye"}
	if !slices.Equal(res.Prompts, want) {
		t.Errorf("prompts\n got %v\nwant %v", res.Prompts, want)
	}
}

func TestDefaultFlowCaseNumberIsSaid(t *testing.T) {
	f, env := loadDefault(t)
	res, err := ivr.Simulate(context.Background(), f, env, ivr.SimOptions{Caller: "13800138000", At: at(t, "2026-09-30T10:00+08:00"),
		Digits: []string{"", "8", "2026112801#"}, Cases: ivr.NewMemoryCases(ivr.CaseInfo{Number: "2026112801", Status: "closed"})})
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	for _, s := range res.Steps {
		if s.Node == "case-lookup" || s.Node == "case-say" {
			said = append(said, s.Prompts...)
		}
	}
	want := []string{"zh-CN/case-closed", "zh-CN/your-case-number-is"}
	for _, d := range "2026112801" {
		want = append(want, "zh-CN/digit-"+string(d))
	}
	if !slices.Equal(said, want) {
		t.Errorf("said %v\nwant %v", said, want)
	}
	if d := res.Decisions[0]; d.ID != "followup" || d.Vars["case_number"] != "2026112801" {
		t.Errorf("decision %+v: want followup with the case number", d)
	}
}

// The national standard: at most two key presses to any destination, in
// every language.
func TestDefaultFlowKeyPresses(t *testing.T) {
	f, _ := loadDefault(t)
	reach := f.KeyPresses()
	targets := map[string]bool{}
	for _, r := range reach {
		targets[r.Target] = true
		if r.Presses > 2 {
			t.Errorf("%s (%s) needs %d key presses in %s", r.Target, r.Node, r.Presses, r.Lang)
		}
	}
	for _, d := range testDestinations {
		if !targets["transfer:"+d] {
			t.Errorf("destination %s is not reachable", d)
		}
	}
	for _, q := range testQueues {
		if !targets["queue:"+q] {
			t.Errorf("queue %s is not reachable", q)
		}
	}
}

// 0 reaches a person from every menu, and running out of tries too.
func TestDefaultFlowZeroAndNoInputReachAPerson(t *testing.T) {
	f, _ := loadDefault(t)
	person := func(id string) bool {
		// Follow nodes that do not wait for the caller until a queue.
		for i := 0; i < 20 && id != ""; i++ {
			n, _ := f.Node(id)
			switch n.Kind {
			case ivr.KindQueue:
				return true
			case ivr.KindPlay, ivr.KindSet, ivr.KindGoto:
				id = n.Next
			default:
				return false
			}
		}
		return false
	}
	for _, id := range f.NodeIDs() {
		n, _ := f.Node(id)
		switch n.Kind {
		case ivr.KindMenu:
			zero := ""
			for _, o := range n.Options {
				if o.Key == "0" {
					zero = o.Next
				}
			}
			if !person(zero) {
				t.Errorf("menu %s: 0 does not reach a person", id)
			}
			if !person(n.OnExhausted) {
				t.Errorf("menu %s: no input does not reach a person", id)
			}
		case ivr.KindLanguage, ivr.KindSurvey:
			if !person(n.Zero) {
				t.Errorf("%s %s: 0 does not reach a person", n.Kind, id)
			}
		case ivr.KindCollect:
			if !person(n.OnExhausted) {
				t.Errorf("collect %s: no input does not reach a person", id)
			}
		}
	}
}

// TestPrintDefaultPaths prints the simulated paths (go test -v -run Print).
func TestPrintDefaultPaths(t *testing.T) {
	f, env := loadDefault(t)
	var b strings.Builder
	fmt.Fprintf(&b, "\n| case | at | digits | path | final | end | routed after |\n|---|---|---|---|---|---|---|\n")
	durations := ivr.LibraryDurations(testLib(t))
	for _, tt := range defaultPaths {
		opts := ivr.SimOptions{Caller: "13800138000", At: at(t, tt.at), Digits: tt.digits, RouterOutcome: tt.outcome, PromptDuration: durations}
		if tt.noCases {
			opts.Cases = ivr.NewMemoryCases()
		}
		res, err := ivr.Simulate(context.Background(), f, env, opts)
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		for _, s := range res.Steps {
			x := s.Node
			if s.Digits != "" {
				x += "[" + s.Digits + "]"
			}
			steps = append(steps, x)
		}
		router := ""
		if tt.outcome != "" {
			router = " (router: " + tt.outcome + ")"
		}
		final := strings.TrimSuffix(res.Final.Kind+" "+res.Final.ID, " ")
		routed := "-"
		for _, s := range res.Steps {
			if s.Decision != nil {
				routed = fmt.Sprintf("%.1f s", float64(s.ElapsedMS)/1000)
				break
			}
		}
		fmt.Fprintf(&b, "| %s%s | %s | %s | %s | %s | %s | %s |\n", tt.name, router, tt.at, strings.Join(tt.digits, ","), strings.Join(steps, " → "), final, res.End, routed)
	}
	t.Log(b.String())
}

// With prompt lengths, the simulated clock shows how long a caller waits:
// the decision for 12315 comes after the greeting, the emergency notice,
// the language offer and its timeout, and the main menu.
func TestSimulationPromptDurations(t *testing.T) {
	f, env := loadDefault(t)
	lib := testLib(t)
	dur := ivr.LibraryDurations(lib)
	res, err := ivr.Simulate(context.Background(), f, env, ivr.SimOptions{Caller: "13800138000", At: at(t, "2026-09-30T10:00+08:00"),
		Digits: []string{"", "4"}, RouterOutcome: "left", PromptDuration: dur})
	if err != nil {
		t.Fatal(err)
	}
	var want time.Duration
	for _, k := range []string{"zh-CN/greeting", "zh-CN/emergency-notice", "zh-CN/language-menu", "zh-CN/main-menu"} {
		d := dur(k)
		if d < 200*time.Millisecond {
			t.Fatalf("%s lasts %v", k, d)
		}
		want += d
	}
	want += 2 * time.Second // the language offer's timeout
	last := res.Steps[len(res.Steps)-1]
	if last.Node != "to-12315" || time.Duration(last.ElapsedMS)*time.Millisecond != want.Truncate(time.Millisecond) {
		t.Errorf("%s at %d ms, want %v", last.Node, last.ElapsedMS, want)
	}
}
