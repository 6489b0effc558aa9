package ari_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/ari"
	"github.com/cq12345/hotline/ari/arifake"
)

// signature is what must match between Asterisk and the fake: the event
// type and the fields a controller acts on.
func signature(ev ari.Event) string {
	sig := ev.EventType()
	ip := func(p *int) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	on := func(ch ari.Channel) string {
		n := ch.Name
		if i := strings.LastIndexByte(n, '-'); i > 0 {
			n = n[:i]
		}
		return " on=" + strings.TrimPrefix(n, "PJSIP/")
	}
	switch e := ev.(type) {
	case *ari.StasisStart:
		sig += on(e.Channel) + " state=" + e.Channel.State + " args=" + strings.Join(argRoles(e.Args), ",")
	case *ari.Dial:
		sig += on(e.Peer) + " status=" + e.Dialstatus
	case *ari.ChannelDestroyed:
		sig += on(e.Channel) + " state=" + e.Channel.State + fmt.Sprintf(" cause=%d tech=%s", e.Cause, ip(e.TechCause))
	case *ari.ChannelEnteredBridge:
		if e.Channel != nil {
			sig += on(*e.Channel)
		}
	case *ari.ChannelLeftBridge:
		sig += on(e.Channel)
	case *ari.ChannelStateChange:
		sig += on(e.Channel) + " state=" + e.Channel.State
	case *ari.ChannelDTMFReceived:
		sig += " digit=" + e.Digit
	case *ari.PlaybackStarted:
		sig += " state=" + e.Playback.State
	case *ari.PlaybackFinished:
		sig += " state=" + e.Playback.State
	case *ari.ChannelHangupRequest:
		sig += on(e.Channel) + " cause=" + ip(e.Cause) + " tech=" + ip(e.TechCause) + fmt.Sprintf(" soft=%v", e.Soft != nil && *e.Soft)
	case *ari.StasisEnd:
		sig += on(e.Channel) + " state=" + e.Channel.State
	}
	return sig
}

// argRoles keeps the role of Stasis args ("agent", "trunk") and drops the
// channel ids that follow, which differ between runs.
func argRoles(args []string) []string {
	if len(args) == 0 {
		return nil
	}
	return args[:1]
}

// notEmitted are event types the fake does not produce; they carry nothing
// the plane acts on (connected-line updates after a bridge).
var notEmitted = map[string]bool{"ChannelConnectedLine": true}

func recordedSignatures(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		ev, err := ari.DecodeEvent(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if notEmitted[ev.EventType()] {
			continue
		}
		out = append(out, signature(ev))
	}
	return out
}

// collector is a raw event-stream consumer: it records signatures.
type collector struct {
	mu   sync.Mutex
	sigs []string
	ids  map[string]string // playback ids by media
}

func (c *collector) Connected(context.Context, int) {}
func (c *collector) Disconnected(error)             {}
func (c *collector) Event(ev ari.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sigs = append(c.sigs, signature(ev))
}

func (c *collector) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.sigs...)
}

// drive connects a raw client to a fresh fake and runs script.
func drive(t *testing.T, script func(ctx context.Context, f *arifake.Server, c *ari.Client, col *collector)) []string {
	t.Helper()
	f := arifake.New("hotline", "hotline", "secret")
	defer f.Close()
	f.MediaDuration = func(uri string) time.Duration {
		if strings.Contains(uri, "demo-congrats") {
			return 30 * time.Second
		}
		return 50 * time.Millisecond
	}
	c, err := ari.NewClient(ari.ClientConfig{URL: f.URL(), User: "hotline", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	col := &collector{}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.RunStream(sctx, ari.StreamConfig{App: "hotline", MinBackoff: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, col)
	}()
	if err := f.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	script(ctx, f, c, col)
	time.Sleep(50 * time.Millisecond) // let the last frames arrive
	scancel()
	<-done
	return col.get()
}

func waitLen(t *testing.T, col *collector, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d events", n), func() bool { return len(col.get()) >= n })
}

type scenario struct {
	name   string
	script func(ctx context.Context, f *arifake.Server, c *ari.Client, col *collector)
}

// TestFakeFollowsRecordedOrder drives the fake as the recorded controller
// drove Asterisk and compares the event sequences.
func TestFakeFollowsRecordedOrder(t *testing.T) {
	cases := []scenario{
		{"barge-in", func(ctx context.Context, f *arifake.Server, c *ari.Client, col *collector) {
			call := f.Call(arifake.CallOptions{})
			must(t, c.ChannelsAnswer(ctx, call.ID()))
			_, err := c.ChannelsPlay(ctx, call.ID(), ari.ChannelsPlayParams{Media: []string{"sound:demo-congrats"}, PlaybackID: "pb1"})
			must(t, err)
			call.Press('1')
			must(t, c.PlaybacksStop(ctx, "pb1"))
			_, err = c.ChannelsPlay(ctx, call.ID(), ari.ChannelsPlayParams{Media: []string{"sound:digits/1"}})
			must(t, err)
			waitLen(t, col, 7)
			must(t, c.ChannelsHangup(ctx, call.ID(), ari.ChannelsHangupParams{Reason: "normal"}))
		}},
		{"caller-hangup-during-playback", func(ctx context.Context, f *arifake.Server, c *ari.Client, col *collector) {
			call := f.Call(arifake.CallOptions{})
			must(t, c.ChannelsAnswer(ctx, call.ID()))
			_, err := c.ChannelsPlay(ctx, call.ID(), ari.ChannelsPlayParams{Media: []string{"sound:demo-congrats"}})
			must(t, err)
			call.HangUp()
		}},
		{"early-hangup", func(ctx context.Context, f *arifake.Server, c *ari.Client, col *collector) {
			call := f.Call(arifake.CallOptions{})
			call.HangUp()
			err := c.ChannelsAnswer(ctx, call.ID())
			if !errorsIsNotFound(err) {
				t.Errorf("late answer: %v, want ErrNotFound", err)
			}
		}},
		{"ws-reconnect", func(ctx context.Context, f *arifake.Server, c *ari.Client, col *collector) {
			call := f.Call(arifake.CallOptions{})
			must(t, c.ChannelsAnswer(ctx, call.ID()))
			_, err := c.ChannelsPlay(ctx, call.ID(), ari.ChannelsPlayParams{Media: []string{"sound:demo-congrats"}})
			must(t, err)
			waitLen(t, col, 3)
			f.Refuse(true)
			f.DropConnections()
			call.Press('1') // lost: nobody connected
			f.Refuse(false)
			must(t, f.WaitConnections(ctx, 2))
			must(t, c.ChannelsHangup(ctx, call.ID(), ari.ChannelsHangupParams{Reason: "normal"}))
		}},
	}
	// bridgeCall is the recorded controller's set-up: answer, mixing bridge,
	// originate the endpoint into the app with appArgs role,<caller>.
	bridgeCall := func(ctx context.Context, f *arifake.Server, c *ari.Client, endpoint, role string) (*arifake.Call, *ari.Bridge, *ari.Channel) {
		call := f.Call(arifake.CallOptions{})
		must(t, c.ChannelsAnswer(ctx, call.ID()))
		br, err := c.BridgesCreate(ctx, ari.BridgesCreateParams{Type: "mixing", Name: "call-" + call.ID()})
		must(t, err)
		leg, err := c.ChannelsOriginate(ctx, ari.ChannelsOriginateParams{Endpoint: endpoint, App: "hotline",
			AppArgs: role + "," + call.ID(), CallerID: `"hotline" <12345>`, Timeout: 1})
		must(t, err)
		return call, br, leg
	}
	cases = append(cases,
		scenario{"bridge-to-agent", func(ctx context.Context, f *arifake.Server, c *ari.Client, col *collector) {
			f.SetEndpoint("PJSIP/agent1", arifake.Endpoint{AnswerAfter: 50 * time.Millisecond})
			call, br, leg := bridgeCall(ctx, f, c, "PJSIP/agent1", "agent")
			waitLen(t, col, 8) // ... StasisStart(agent)
			must(t, c.BridgesAddChannel(ctx, br.ID, ari.BridgesAddChannelParams{Channel: []string{call.ID(), leg.ID}}))
			f.Channel(leg.ID).HangUp()
			waitLen(t, col, 14)
			must(t, c.ChannelsHangup(ctx, call.ID(), ari.ChannelsHangupParams{Reason: "normal"}))
			waitLen(t, col, 17)
			must(t, c.BridgesDestroy(ctx, br.ID))
		}},
		scenario{"transfer-12315", func(ctx context.Context, f *arifake.Server, c *ari.Client, col *collector) {
			f.SetEndpoint("PJSIP/12315@trunk12315", arifake.Endpoint{AnswerAfter: 50 * time.Millisecond})
			call, br, leg := bridgeCall(ctx, f, c, "PJSIP/12315@trunk12315", "trunk")
			waitLen(t, col, 8)
			must(t, c.BridgesAddChannel(ctx, br.ID, ari.BridgesAddChannelParams{Channel: []string{call.ID(), leg.ID}}))
			call.HangUp()
			waitLen(t, col, 13)
			must(t, c.ChannelsHangup(ctx, leg.ID, ari.ChannelsHangupParams{Reason: "normal"}))
			waitLen(t, col, 17)
			must(t, c.BridgesDestroy(ctx, br.ID))
		}},
		scenario{"agent-no-answer", func(ctx context.Context, f *arifake.Server, c *ari.Client, col *collector) {
			for i, ep := range []arifake.Endpoint{{NoAnswer: true}, {Busy: true}} {
				f.SetEndpoint("PJSIP/agent1", ep)
				call, br, _ := bridgeCall(ctx, f, c, "PJSIP/agent1", "agent")
				waitLen(t, col, []int{6, 16}[i]) // ChannelDestroyed(agent)
				_, err := c.ChannelsPlay(ctx, call.ID(), ari.ChannelsPlayParams{Media: []string{"sound:vm-nobodyavail"}})
				must(t, err)
				waitLen(t, col, []int{8, 18}[i])
				must(t, c.ChannelsHangup(ctx, call.ID(), ari.ChannelsHangupParams{Reason: "normal"}))
				must(t, c.BridgesDestroy(ctx, br.ID)) // never used: no BridgeDestroyed
				waitLen(t, col, []int{10, 20}[i])
			}
		}},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := recordedSignatures(t, tc.name)
			got := drive(t, tc.script)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("fake event order differs from Asterisk's:\n got:\n  %s\n want:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func errorsIsNotFound(err error) bool { return err != nil && errorsIs(err, ari.ErrNotFound) }
