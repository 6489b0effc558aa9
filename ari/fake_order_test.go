package ari_test

import (
	"bufio"
	"context"
	"fmt"
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
	switch e := ev.(type) {
	case *ari.StasisStart:
		sig += " state=" + e.Channel.State
	case *ari.ChannelStateChange:
		sig += " state=" + e.Channel.State
	case *ari.ChannelDTMFReceived:
		sig += " digit=" + e.Digit
	case *ari.PlaybackStarted:
		sig += " state=" + e.Playback.State
	case *ari.PlaybackFinished:
		sig += " state=" + e.Playback.State
	case *ari.ChannelHangupRequest:
		sig += " cause=" + ip(e.Cause) + " tech=" + ip(e.TechCause) + fmt.Sprintf(" soft=%v", e.Soft != nil && *e.Soft)
	case *ari.StasisEnd:
		sig += " state=" + e.Channel.State
	}
	return sig
}

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
		_ = c.RunStream(sctx, ari.StreamConfig{App: "hotline", MinBackoff: 10 * time.Millisecond}, col)
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

// TestFakeFollowsRecordedOrder drives the fake as the recorded controller
// drove Asterisk and compares the event sequences.
func TestFakeFollowsRecordedOrder(t *testing.T) {
	cases := []struct {
		name   string
		script func(ctx context.Context, f *arifake.Server, c *ari.Client, col *collector)
	}{
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
