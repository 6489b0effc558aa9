package ivr_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/prompts"
)

const menuFlow = `
name: test-menu
languages: [zh-CN, en]
start: hello
defaults:
  timeout: 80ms
  retries: 2
  no_input_prompts: no-input
  invalid_prompts: invalid-key
nodes:
  hello:
    kind: play
    prompts: greeting
    next: menu
  menu:
    kind: menu
    prompts: main-menu
    options: {"1": q, "2": x, "0": q}
    on_exhausted: q
  x:
    kind: transfer
    prompts: transferring-12315
    destination: "12315"
  q:
    kind: queue
    queue: general
    next: rate
  rate:
    kind: survey
    prompts: survey
    next: bye
  bye:
    kind: hangup
    prompts: goodbye
    reason: done
`

func mustLoad(t *testing.T, src string) *ivr.Flow {
	t.Helper()
	f, err := ivr.Load([]byte(src), testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A digit during a barge-in prompt stops it at once and is acted on.
func TestInterpreterBargeIn(t *testing.T) {
	f := mustLoad(t, menuFlow)
	call := newFakeCall(600 * time.Millisecond)
	call.onPlay = func(c *fakeCall, keys []string) {
		if slices.Contains(keys, "zh-CN/main-menu") {
			time.AfterFunc(10*time.Millisecond, func() { c.press("2") })
		}
	}
	// The greeting does not barge in: it lasts its 600 ms; the menu is cut.
	router := &recordRouter{status: ivr.OutcomeLeft}
	in := &ivr.Interpreter{Router: router, Logger: slog.New(slog.DiscardHandler)}
	start := time.Now()
	res, err := in.Run(context.Background(), call, f)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took < 1200*time.Millisecond || took > 1700*time.Millisecond {
		t.Errorf("took %v; want the greeting and the 12315 prompt (600 ms each) and a cut menu", took)
	}
	plays := call.playLog()
	if len(plays) < 2 || !plays[1].interrupted || plays[0].interrupted || plays[0].bargeIn {
		t.Errorf("plays %+v: want greeting without barge-in, menu interrupted", plays)
	}
	if res.End != ivr.EndHandedOver || res.Final != (ivr.Action{Kind: "transfer", ID: "12315"}) {
		t.Errorf("end %s final %+v", res.End, res.Final)
	}
	if len(router.decisions) != 1 || router.decisions[0].ID != "12315" || router.decisions[0].Node != "x" {
		t.Errorf("decisions %+v", router.decisions)
	}
}

// A key pressed during a prompt without barge-in stays buffered and is
// taken by the next menu (type-ahead).
func TestInterpreterTypeAhead(t *testing.T) {
	f := mustLoad(t, menuFlow)
	call := newFakeCall(60 * time.Millisecond)
	call.onPlay = func(c *fakeCall, keys []string) {
		if keys[0] == "zh-CN/greeting" {
			c.press("1")
		}
	}
	in := &ivr.Interpreter{Router: &recordRouter{status: ivr.OutcomeLeft}, Logger: slog.New(slog.DiscardHandler)}
	res, err := in.Run(context.Background(), call, f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Path[1].Digits != "1" || res.Final.ID != "general" {
		t.Errorf("path %+v", res.Path)
	}
}

// No input: the menu retries with the no-input prompt, then on_exhausted.
func TestInterpreterTimeoutsAndRetries(t *testing.T) {
	f := mustLoad(t, menuFlow)
	call := newFakeCall(5 * time.Millisecond)
	in := &ivr.Interpreter{Router: &recordRouter{status: ivr.OutcomeLeft}, Logger: slog.New(slog.DiscardHandler)}
	start := time.Now()
	res, err := in.Run(context.Background(), call, f)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 3*80*time.Millisecond {
		t.Errorf("took %v, want at least three 80 ms timeouts", took)
	}
	want := []string{"zh-CN/greeting", "zh-CN/main-menu", "zh-CN/no-input", "zh-CN/main-menu", "zh-CN/no-input", "zh-CN/main-menu"}
	if got := call.flatKeys(); !slices.Equal(got, want) {
		t.Errorf("played %v\nwant %v", got, want)
	}
	if m := res.Path[1]; m.Digits != "---" || m.Branch != "exhausted" || m.Next != "q" {
		t.Errorf("menu step %+v", m)
	}
}

// An invalid key plays the invalid prompt, drops type-ahead and asks again.
func TestInterpreterInvalidKey(t *testing.T) {
	f := mustLoad(t, menuFlow)
	call := newFakeCall(5 * time.Millisecond)
	n := 0
	call.onPlay = func(c *fakeCall, keys []string) {
		if slices.Contains(keys, "zh-CN/main-menu") {
			n++
			switch n {
			case 1:
				c.press("79") // 7 is invalid; the 9 typed after it is dropped
			case 2:
				c.press("1")
			}
		}
		if slices.Contains(keys, "zh-CN/survey") {
			c.press("2")
		}
	}
	surveys := &ivr.MemorySurveys{}
	in := &ivr.Interpreter{Router: &recordRouter{status: ivr.OutcomeReturned}, Surveys: surveys, Logger: slog.New(slog.DiscardHandler)}
	res, err := in.Run(context.Background(), call, f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"zh-CN/greeting", "zh-CN/main-menu", "zh-CN/invalid-key", "zh-CN/main-menu", "zh-CN/survey", "zh-CN/goodbye"}
	if got := call.flatKeys(); !slices.Equal(got, want) {
		t.Errorf("played %v\nwant %v", got, want)
	}
	if res.Path[1].Digits != "71" {
		t.Errorf("menu digits %q, want 71", res.Path[1].Digits)
	}
	r := surveys.Responses()
	if len(r) != 1 || r[0].Level != 2 || r[0].Label != "满意" || r[0].After == nil || r[0].After.ID != "general" {
		t.Errorf("survey %+v", r)
	}
	if res.End != ivr.EndHangup || call.reason != "done" {
		t.Errorf("end %s reason %q", res.End, call.reason)
	}
}

// The caller hanging up mid-prompt ends the run cleanly.
func TestInterpreterHangupMidPrompt(t *testing.T) {
	f := mustLoad(t, menuFlow)
	call := newFakeCall(time.Second)
	call.onPlay = func(c *fakeCall, keys []string) {
		if keys[0] == "zh-CN/main-menu" {
			time.AfterFunc(20*time.Millisecond, c.hangupRemote)
		}
	}
	in := &ivr.Interpreter{Logger: slog.New(slog.DiscardHandler)}
	start := time.Now()
	res, err := in.Run(context.Background(), call, f)
	if err != nil {
		t.Fatalf("hang-up is a normal end, got %v", err)
	}
	if time.Since(start) > 1500*time.Millisecond {
		t.Errorf("took %v: the prompt did not stop at the hang-up", time.Since(start))
	}
	if res.End != ivr.EndCallerHangup || res.Final.Kind != "caller-hangup" {
		t.Errorf("end %s final %+v", res.End, res.Final)
	}
	if last := res.Path[len(res.Path)-1]; last.Node != "menu" {
		t.Errorf("last node %s", last.Node)
	}
}

// Cancelling the context stops the run with the context's error.
func TestInterpreterContextCancel(t *testing.T) {
	f := mustLoad(t, menuFlow)
	call := newFakeCall(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	in := &ivr.Interpreter{Logger: slog.New(slog.DiscardHandler)}
	_, err := in.Run(ctx, call, f)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// Without a router the decision is still logged and traced, then the call
// is hung up (the state before the routing issue). Spans and logs carry
// the caller's number masked only.
func TestInterpreterTraceAndLog(t *testing.T) {
	f := mustLoad(t, menuFlow)
	call := newFakeCall(time.Millisecond)
	call.onPlay = func(c *fakeCall, keys []string) {
		if keys[0] == "zh-CN/main-menu" {
			c.press("1")
		}
	}
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	var logs bytes.Buffer
	in := &ivr.Interpreter{TracerProvider: tp, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	t.Cleanup(func() {
		// With a router, the decision also gets its own child span.
		rec2 := tracetest.NewSpanRecorder()
		tp2 := trace.NewTracerProvider(trace.WithSpanProcessor(rec2))
		call2 := newFakeCall(time.Millisecond)
		call2.onPlay = call.onPlay
		in2 := &ivr.Interpreter{TracerProvider: tp2, Router: &recordRouter{status: ivr.OutcomeLeft}, Logger: slog.New(slog.DiscardHandler)}
		if _, err := in2.Run(context.Background(), call2, f); err != nil {
			t.Error(err)
		}
		var route, parent string
		for _, s := range rec2.Ended() {
			if s.Name() == "ivr.route" {
				route = s.Name()
				parent = s.Parent().SpanID().String()
				for _, a := range s.Attributes() {
					if a.Key == "ivr.outcome" && a.Value.AsString() != "left" {
						t.Errorf("outcome %v", a.Value)
					}
				}
			}
		}
		found := false
		for _, s := range rec2.Ended() {
			found = found || (s.Name() == "ivr.node queue" && s.SpanContext().SpanID().String() == parent)
		}
		if route == "" || !found {
			t.Error("no ivr.route span under the queue node's span")
		}
		_ = tp2.Shutdown(context.Background())
	})
	res, err := in.Run(context.Background(), call, f)
	if err != nil {
		t.Fatal(err)
	}
	if res.End != ivr.EndHangup || !strings.Contains(call.reason, "queue general") {
		t.Errorf("end %s reason %q", res.End, call.reason)
	}
	var kinds []string
	decision := ""
	for _, s := range rec.Ended() {
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.Emit(), "13800138000") {
				t.Errorf("span %s attribute %s carries the caller's number", s.Name(), a.Key)
			}
			switch a.Key {
			case "ivr.kind":
				kinds = append(kinds, a.Value.AsString())
			case "ivr.decision":
				decision = a.Value.AsString()
			}
		}
	}
	if !slices.Equal(kinds, []string{"play", "menu", "queue"}) || decision != "queue:general" {
		t.Errorf("span kinds %v decision %q", kinds, decision)
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"ivr: routing decision"`) || !strings.Contains(out, `"id":"general"`) {
		t.Errorf("no routing decision logged:\n%s", out)
	}
	if strings.Contains(out, "13800138000") || !strings.Contains(out, "138****8000") {
		t.Errorf("log must carry the masked number only:\n%s", out)
	}
}

// A router failing sends the flow to on_fail.
func TestInterpreterRouterFailure(t *testing.T) {
	src := strings.Replace(menuFlow, "destination: \"12315\"", "destination: \"12315\"\n    on_fail: q", 1)
	f := mustLoad(t, src)
	call := newFakeCall(time.Millisecond)
	call.onPlay = func(c *fakeCall, keys []string) {
		if keys[0] == "zh-CN/main-menu" {
			c.press("2")
		}
	}
	router := &recordRouter{err: errors.New("trunk down")}
	in := &ivr.Interpreter{Router: router, Logger: slog.New(slog.DiscardHandler)}
	res, err := in.Run(context.Background(), call, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(router.decisions) != 2 || router.decisions[1].ID != "general" {
		t.Errorf("decisions %+v: want 12315 then the general queue", router.decisions)
	}
	if res.Path[2].Outcome == nil || res.Path[2].Outcome.Status != ivr.OutcomeFailed || res.Path[2].Next != "q" {
		t.Errorf("transfer step %+v", res.Path[2])
	}
}

// Prompts fall back to zh-CN when the catalogue lacks the call's language.
func TestInterpreterPromptFallback(t *testing.T) {
	f := mustLoad(t, strings.Replace(menuFlow, "start: hello", "start: lang", 1)+`  lang:
    kind: language
    prompts: language-menu
    options: {"9": en}
    next: hello
`)
	zhOnly, err := prompts.ParseCatalogue([]byte("languages: [zh-CN]\nprompts:\n  - {id: greeting, zh-CN: 您好}\n"))
	if err != nil {
		t.Fatal(err)
	}
	call := newFakeCall(time.Millisecond)
	call.onPlay = func(c *fakeCall, keys []string) {
		if keys[0] == "zh-CN/language-menu" {
			c.press("9")
		}
		if strings.HasSuffix(keys[0], "/greeting") {
			c.hangupRemote()
		}
	}
	in := &ivr.Interpreter{Catalogue: zhOnly, Logger: slog.New(slog.DiscardHandler)}
	res, err := in.Run(context.Background(), call, f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lang != "en" || res.Path[1].Prompts[0] != "zh-CN/greeting" {
		t.Errorf("lang %s prompts %v: want en with the greeting falling back to zh-CN", res.Lang, res.Path[1].Prompts)
	}
}

// Recording needs a plane that records; the fake call does not.
func TestInterpreterRecordUnsupported(t *testing.T) {
	f := mustLoad(t, `
name: rec
start: msg
nodes:
  msg:
    kind: record
    prompts: leave-message
    next: saved
    on_fail: sorry
  saved:
    kind: hangup
    prompts: message-saved
  sorry:
    kind: hangup
    prompts: goodbye
`)
	call := newFakeCall(time.Millisecond)
	res, err := (&ivr.Interpreter{Logger: slog.New(slog.DiscardHandler)}).Run(context.Background(), call, f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Path[0].Next != "sorry" || !strings.Contains(res.Path[0].Branch, "not supported") {
		t.Errorf("record step %+v", res.Path[0])
	}
}

// A callback is registered with the caller's number (for the call back),
// while the path shows it masked.
func TestInterpreterCallback(t *testing.T) {
	f := mustLoad(t, `
name: cb
start: offer
nodes:
  offer:
    kind: callback
    prompts: callback-offer
    confirm_prompts: callback-confirm
    timeout: 100ms
    next: booked
    on_cancel: bye
  booked:
    kind: hangup
    prompts: callback-booked
  bye:
    kind: hangup
    prompts: goodbye
`)
	call := newFakeCall(time.Millisecond)
	call.onPlay = func(c *fakeCall, keys []string) {
		if keys[0] == "zh-CN/callback-confirm" {
			c.press("1")
		}
	}
	cbs := &ivr.MemoryCallbacks{}
	res, err := (&ivr.Interpreter{Callbacks: cbs, Logger: slog.New(slog.DiscardHandler)}).Run(context.Background(), call, f)
	if err != nil {
		t.Fatal(err)
	}
	reqs := cbs.Requests()
	if len(reqs) != 1 || reqs[0].Number != "13800138000" {
		t.Fatalf("requests %+v", reqs)
	}
	if res.Final.Kind != "callback" || !slices.Contains(res.Path[0].Prompts, "say:138****8000") {
		t.Errorf("final %+v prompts %v", res.Final, res.Path[0].Prompts)
	}
	for _, p := range res.Path[0].Prompts {
		if strings.Contains(p, "13800138000") {
			t.Errorf("path carries the number: %v", res.Path[0].Prompts)
		}
	}
	// The digits were really said.
	keys := call.flatKeys()
	if !slices.Contains(keys, "zh-CN/digit-8") || !slices.Contains(keys, "zh-CN/digit-3") {
		t.Errorf("played %v", keys)
	}
}

// collect: digits until the terminator or the inter-digit timeout, checked
// against min and the pattern, with a retry.
func TestInterpreterCollect(t *testing.T) {
	f := mustLoad(t, `
name: col
start: num
nodes:
  num:
    kind: collect
    prompts: enter-case-number
    var: case_number
    min: 6
    max: 10
    terminator: "#"
    pattern: "2026[0-9]*"
    timeout: 500ms
    inter_digit_timeout: 100ms
    retries: 2
    invalid_prompts: invalid-key
    on_exhausted: bye
    next: say
  say:
    kind: say
    var: case_number
    as: case-number
    next: bye
  bye:
    kind: hangup
`)
	call := newFakeCall(time.Millisecond)
	n := 0
	call.onPlay = func(c *fakeCall, keys []string) {
		if keys[len(keys)-1] != "zh-CN/enter-case-number" {
			return
		}
		n++
		switch n {
		case 1:
			c.press("2026") // too short: ends by the inter-digit timeout
		case 2:
			c.press("1999999#") // does not match the pattern
		case 3:
			c.press("2026112801") // max length reached: no terminator needed
		}
	}
	start := time.Now()
	res, err := (&ivr.Interpreter{Logger: slog.New(slog.DiscardHandler)}).Run(context.Background(), call, f)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %v", took)
	}
	st := res.Path[0]
	if st.Digits != "2026,1999999,2026112801" || st.Next != "say" || res.Vars["case_number"] != "2026112801" {
		t.Errorf("collect step %+v vars %v", st, res.Vars)
	}
	want := []string{"zh-CN/enter-case-number", "zh-CN/invalid-key", "zh-CN/enter-case-number", "zh-CN/invalid-key", "zh-CN/enter-case-number"}
	if !slices.Equal(st.Prompts, want) {
		t.Errorf("prompts %v", st.Prompts)
	}
	if got := len(res.Path[1].Prompts); got != 10 {
		t.Errorf("said %d digits, want 10", got)
	}
}
