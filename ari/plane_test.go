package ari_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cq12345/hotline/ari"
	"github.com/cq12345/hotline/ari/arifake"
	"github.com/cq12345/hotline/ivr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is one fake Asterisk with a running plane.
type env struct {
	fake   *arifake.Server
	plane  *ari.Plane
	cancel context.CancelFunc
	runErr chan error
}

func start(t *testing.T, h ari.Handler, setup func(*arifake.Server)) *env {
	t.Helper()
	return startCfg(t, h, setup, nil)
}

// startCfg is start with the plane's configuration adjusted by mod.
func startCfg(t *testing.T, h ari.Handler, setup func(*arifake.Server), mod func(*ari.Config)) *env {
	t.Helper()
	fake := arifake.New("hotline", "hotline", "secret")
	if setup != nil {
		setup(fake)
	}
	cfg := ari.Config{
		URL: fake.URL(), User: "hotline", Password: "secret", App: "hotline",
		RequestTimeout: 2 * time.Second,
		MinBackoff:     20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := ari.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{fake: fake, plane: p, cancel: cancel, runErr: make(chan error, 1)}
	go func() { e.runErr <- p.Run(ctx, h) }()
	t.Cleanup(func() {
		e.stop(t)
		fake.Close()
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := fake.WaitConnections(wctx, 1); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) stop(t *testing.T) {
	t.Helper()
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.runErr:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		buf := make([]byte, 1<<20)
		t.Errorf("Run did not return after cancel:\n%s", buf[:runtime.Stack(buf, true)])
	}
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// menu is a small IVR: answer, greeting+menu with barge-in, read a digit,
// confirm, hang up. It reports what happened on its channel.
type result struct {
	info   ivr.CallInfo
	digit  byte
	err    error
	played time.Duration // how long the barge-in Play took
}

func menu(out chan<- result) ari.HandlerFunc {
	return func(ctx context.Context, c ivr.Call) {
		r := result{info: c.Info()}
		defer func() { out <- r }()
		if r.err = c.Answer(ctx); r.err != nil {
			return
		}
		t0 := time.Now()
		if r.err = c.Play(ctx, []string{"zh-CN/greeting", "zh-CN/menu"}, true); r.err != nil {
			return
		}
		r.played = time.Since(t0)
		if r.digit, r.err = c.ReadDigit(ctx, 5*time.Second); r.err != nil {
			return
		}
		if r.err = c.Play(ctx, []string{"zh-CN/thanks"}, false); r.err != nil {
			return
		}
		r.err = c.Hangup(ctx, "menu done")
	}
}

func longPrompts(f *arifake.Server) {
	f.MediaDuration = func(uri string) time.Duration {
		if strings.HasSuffix(uri, "/greeting") {
			return 3 * time.Second
		}
		return 50 * time.Millisecond
	}
}

func hasRequest(reqs []arifake.Request, method, prefix string, status int) bool {
	for _, r := range reqs {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) && (status == 0 || r.Status == status) {
			return true
		}
	}
	return false
}

func TestCallMenuWithBargeIn(t *testing.T) {
	out := make(chan result, 1)
	e := start(t, menu(out), longPrompts)
	call := e.fake.Call(arifake.CallOptions{Caller: "13800138000", Exten: "02312345"})
	eventually(t, "greeting playing", func() bool { return call.Playing() == "sound:hotline/zh-CN/greeting" })
	if n := e.plane.ActiveCalls(); n != 1 {
		t.Errorf("ActiveCalls = %d during the call", n)
	}
	if call.State() != "Up" {
		t.Errorf("state %q after answer", call.State())
	}
	call.Press('1')
	r := <-out
	if r.err != nil {
		t.Fatalf("handler: %v", r.err)
	}
	if r.digit != '1' {
		t.Errorf("digit %q, want '1'", r.digit)
	}
	if r.played > 2*time.Second {
		t.Errorf("barge-in Play took %v: the 3 s greeting was not stopped", r.played)
	}
	if r.info.Dialled != "12345" || r.info.Caller != "13800138000" || r.info.Plane != "ari" {
		t.Errorf("info %+v", r.info)
	}
	eventually(t, "channel gone", call.Gone)
	eventually(t, "no active calls", func() bool { return e.plane.ActiveCalls() == 0 })
	reqs := e.fake.Requests()
	if !hasRequest(reqs, "DELETE", "/ari/playbacks/", 204) {
		t.Errorf("no DELETE /playbacks: ARI does not stop a playback on DTMF, the app must: %+v", reqs)
	}
	if !hasRequest(reqs, "DELETE", "/ari/channels/"+call.ID(), 204) {
		t.Errorf("no hang-up request: %+v", reqs)
	}
	// The menu prompt was never reached: the whole playback was stopped.
	for _, m := range e.fake.Emitted() {
		if m.Type == "PlaybackContinuing" {
			t.Errorf("menu prompt started after barge-in")
		}
	}
}

// A digit pressed before Play starts (buffered) skips a barge-in prompt.
func TestBufferedDigitSkipsBargeInPrompt(t *testing.T) {
	out := make(chan result, 1)
	gate := make(chan struct{})
	h := ari.HandlerFunc(func(ctx context.Context, c ivr.Call) {
		<-gate
		menu(out)(ctx, c)
	})
	e := start(t, h, longPrompts)
	call := e.fake.Call(arifake.CallOptions{})
	call.Press('7')
	// The digit travels WebSocket -> stream -> call queue -> buffer;
	// nothing outside the call can observe that, so give it time.
	time.Sleep(100 * time.Millisecond)
	close(gate)
	r := <-out
	if r.err != nil || r.digit != '7' {
		t.Fatalf("digit %q err %v", r.digit, r.err)
	}
	for _, p := range e.fake.Requests() {
		if strings.Contains(p.Query, "greeting") {
			t.Errorf("greeting was requested although a digit was buffered: %+v", p)
		}
	}
}

func TestCallerHangsUpDuringPlayback(t *testing.T) {
	out := make(chan result, 1)
	e := start(t, menu(out), longPrompts)
	call := e.fake.Call(arifake.CallOptions{})
	eventually(t, "greeting playing", func() bool { return call.Playing() != "" })
	call.HangUp()
	r := <-out
	if !errors.Is(r.err, ivr.ErrHungUp) {
		t.Fatalf("Play after caller hang-up: %v, want ErrHungUp", r.err)
	}
	// The call was over: no hang-up request was sent for it.
	time.Sleep(50 * time.Millisecond)
	if hasRequest(e.fake.Requests(), "DELETE", "/ari/channels/", 0) {
		t.Errorf("hang-up sent for a call that had ended")
	}
}

func TestDoneClosedAndHangupIdempotent(t *testing.T) {
	done := make(chan error, 1)
	h := ari.HandlerFunc(func(ctx context.Context, c ivr.Call) {
		if err := c.Answer(ctx); err != nil {
			done <- err
			return
		}
		if err := c.Answer(ctx); err != nil { // twice is harmless
			done <- err
			return
		}
		<-c.Done()
		if _, err := c.ReadDigit(ctx, 0); !errors.Is(err, ivr.ErrHungUp) {
			done <- errors.New("ReadDigit after end: " + errString(err))
			return
		}
		done <- c.Hangup(ctx, "again") // harmless on an ended call
	})
	e := start(t, h, nil)
	call := e.fake.Call(arifake.CallOptions{})
	eventually(t, "answered", func() bool { return call.State() == "Up" })
	call.HangUp()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	answers := 0
	for _, r := range e.fake.Requests() {
		if strings.HasSuffix(r.Path, "/answer") {
			answers++
		}
	}
	if answers != 1 {
		t.Errorf("%d answer requests, want 1", answers)
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// The fake drops the WebSocket mid-call and refuses reconnects for a
// while. The greeting ends during the gap (its PlaybackFinished is lost) and
// the caller presses 9 then (lost too: Asterisk does not replay). After the
// reconnect the plane resynchronises: the live call is kept, its playback is
// found finished, and the flow goes on with the digit pressed afterwards.
// A second call that hung up during the gap is ended by the resync.
func TestReconnectResyncsLiveCall(t *testing.T) {
	out := make(chan result, 2)
	e := start(t, menu(out), func(f *arifake.Server) {
		f.MediaDuration = func(uri string) time.Duration {
			if strings.HasSuffix(uri, "/menu") {
				return 300 * time.Millisecond
			}
			return 50 * time.Millisecond
		}
	})
	live := e.fake.Call(arifake.CallOptions{})
	other := e.fake.Call(arifake.CallOptions{})
	eventually(t, "both playing", func() bool {
		return strings.HasSuffix(live.Playing(), "/menu") && other.Playing() != ""
	})
	e.fake.Refuse(true)
	e.fake.DropConnections()
	live.Press('9')
	other.HangUp()
	eventually(t, "menu finished during the gap", func() bool { return live.Playing() == "" })
	time.Sleep(50 * time.Millisecond) // a few failed reconnects
	e.fake.Refuse(false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.fake.WaitConnections(ctx, 2); err != nil {
		t.Fatal(err)
	}
	r := <-out // the other call: ended by the resync
	if !errors.Is(r.err, ivr.ErrHungUp) {
		t.Errorf("call that hung up during the gap: %v, want ErrHungUp", r.err)
	}
	// The live call's Play returned after the resync; now it waits for a digit.
	eventually(t, "resync checked the playback", func() bool {
		return hasRequest(e.fake.Requests(), "GET", "/ari/playbacks/", 404)
	})
	live.Press('2')
	r = <-out
	if r.err != nil {
		t.Fatalf("live call after reconnect: %v", r.err)
	}
	if r.digit != '2' {
		t.Errorf("digit %q, want '2' (the '9' pressed while disconnected is lost, as on Asterisk)", r.digit)
	}
	eventually(t, "live call hung up", live.Gone)
	var lost bool
	for _, m := range e.fake.Emitted() {
		if m.Type == "ChannelDtmfReceived" && !m.Delivered {
			lost = true
		}
	}
	if !lost {
		t.Error("the fake delivered the DTMF pressed while disconnected")
	}
	if !hasRequest(e.fake.Requests(), "GET", "/ari/applications/hotline", 200) {
		t.Error("no application check on reconnect")
	}
}

// A call already in Stasis when the plane connects (hotlined restarted; its
// StasisStart went to nobody) is adopted.
func TestAdoptsCallsOnConnect(t *testing.T) {
	out := make(chan result, 1)
	var call *arifake.Call
	e := start(t, menu(out), func(f *arifake.Server) {
		call = f.Call(arifake.CallOptions{Exten: "s", Args: []string{"inbound", "+862312345"}})
	})
	eventually(t, "adopted call playing", func() bool { return call.Playing() != "" })
	call.Press('3')
	r := <-out
	if r.err != nil || r.digit != '3' || r.info.Dialled != "12345" {
		t.Fatalf("adopted call: %+v", r)
	}
	_ = e
}

func TestDialledNumber(t *testing.T) {
	cases := []struct {
		name string
		opts arifake.CallOptions
		vars map[string]string
		want string // "" = not a hotline call
	}{
		{"exten", arifake.CallOptions{Exten: "12345"}, nil, "12345"},
		{"args", arifake.CallOptions{Exten: "s", Args: []string{"inbound", "02312345"}}, nil, "12345"},
		{"not hotline", arifake.CallOptions{Exten: "10086"}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan ivr.CallInfo, 1)
			e := start(t, ari.HandlerFunc(func(ctx context.Context, c ivr.Call) {
				got <- c.Info()
			}), nil)
			call := e.fake.Call(tc.opts)
			if tc.want == "" {
				eventually(t, "rejected call hung up", call.Gone)
				select {
				case info := <-got:
					t.Fatalf("handler ran for a non-hotline number: %+v", info)
				default:
				}
				return
			}
			info := <-got
			if info.Dialled != tc.want {
				t.Errorf("dialled %q, want %q", info.Dialled, tc.want)
			}
			eventually(t, "call hung up after the handler returned", call.Gone)
		})
	}
}

// When Run's context ends, live calls go back to the dialplan (continue),
// not cut off.
func TestShutdownHandsCallsBack(t *testing.T) {
	var mu sync.Mutex
	var playErr error
	started := make(chan struct{})
	h := ari.HandlerFunc(func(ctx context.Context, c ivr.Call) {
		_ = c.Answer(ctx)
		close(started)
		err := c.Play(ctx, []string{"zh-CN/greeting"}, false)
		mu.Lock()
		playErr = err
		mu.Unlock()
	})
	e := start(t, h, longPrompts)
	call := e.fake.Call(arifake.CallOptions{})
	<-started
	eventually(t, "playing", func() bool { return call.Playing() != "" })
	e.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(playErr, context.Canceled) {
		t.Errorf("Play on shutdown: %v", playErr)
	}
	if call.Gone() || call.InStasis() {
		t.Errorf("call gone=%v inStasis=%v: want it alive and back in the dialplan", call.Gone(), call.InStasis())
	}
	if !hasRequest(e.fake.Requests(), "POST", "/ari/channels/"+call.ID()+"/continue", 204) {
		t.Error("no continue request")
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestPlayMissingPrompt(t *testing.T) {
	errs := make(chan error, 2)
	h := ari.HandlerFunc(func(ctx context.Context, c ivr.Call) {
		errs <- c.Play(ctx, []string{"zh-CN/menu"}, false)
		errs <- c.Play(ctx, []string{"zh-CN/greeting"}, false)
	})
	e := start(t, h, func(f *arifake.Server) {
		f.Missing = func(uri string) bool { return strings.HasSuffix(uri, "/greeting") }
	})
	call := e.fake.Call(arifake.CallOptions{})
	// Without Config.HasPrompt the plane learns it from the failed playback.
	for i := 0; i < 2; i++ {
		err := <-errs
		if i == 0 && err != nil {
			t.Errorf("first Play (fake has the file): %v", err)
		}
		if i == 1 && (err == nil || errors.Is(err, ivr.ErrHungUp)) {
			t.Errorf("Play of a missing sound file: %v, want an error", err)
		}
	}
	if call.State() != "Up" && !call.Gone() {
		t.Errorf("Play did not answer the call: %s", call.State())
	}
}

func TestPlayUnknownKeyWithHasPrompt(t *testing.T) {
	fake := arifake.New("hotline", "hotline", "secret")
	defer fake.Close()
	p, err := ari.New(ari.Config{URL: fake.URL(), User: "hotline", Password: "secret", App: "hotline",
		HasPrompt: func(k string) bool { return k == "zh-CN/greeting" },
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- p.Run(ctx, ari.HandlerFunc(func(ctx context.Context, c ivr.Call) {
			errs <- c.Play(ctx, []string{"zh-CN/greeting", "zh-CN/typo"}, false)
		}))
	}()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := fake.WaitConnections(wctx, 1); err != nil {
		t.Fatal(err)
	}
	fake.Call(arifake.CallOptions{})
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "zh-CN/typo") {
		t.Errorf("Play with an unknown key: %v", err)
	}
	for _, r := range fake.Requests() {
		if strings.HasSuffix(r.Path, "/play") {
			t.Errorf("a playback was requested: %+v", r)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Caller gives up before the answer (transcript early-hangup: CANCEL,
// ChannelHangupRequest{127}, StasisEnd): Answer reports ErrHungUp.
func TestEarlyHangup(t *testing.T) {
	gate := make(chan struct{})
	errs := make(chan error, 1)
	h := ari.HandlerFunc(func(ctx context.Context, c ivr.Call) {
		<-gate
		errs <- c.Answer(ctx)
	})
	e := start(t, h, nil)
	call := e.fake.Call(arifake.CallOptions{})
	call.HangUp()
	close(gate)
	if err := <-errs; !errors.Is(err, ivr.ErrHungUp) {
		t.Fatalf("Answer after CANCEL: %v", err)
	}
}
