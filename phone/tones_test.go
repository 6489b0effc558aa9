package phone

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/cq12345/hotline/prompts"
)

// mixFrames sums tones (amplitude 4000 each) and encodes the sum in c, as
// a conference mixer would.
func mixFrames(c prompts.Codec, hz ...float64) []byte {
	f := make([]byte, prompts.FrameSize)
	for i := range f {
		var s float64
		for _, h := range hz {
			s += 4000 * math.Sin(2*math.Pi*h*float64(i)/8000)
		}
		if c == prompts.PCMA {
			f[i] = linearToALaw(int16(s))
		} else {
			f[i] = linearToMuLaw(int16(s))
		}
	}
	return f
}

func TestToneDetector(t *testing.T) {
	watch := []float64{400, 700, 1100}
	tests := []struct {
		name  string
		frame func(prompts.Codec) []byte
		want  map[string]uint64 // per 10 frames fed
	}{
		{"one tone", func(c prompts.Codec) []byte { return ToneFrame(c, 700, 4000) }, map[string]uint64{"400": 0, "700": 10, "1100": 0}},
		{"two tones mixed", func(c prompts.Codec) []byte { return mixFrames(c, 400, 1100) }, map[string]uint64{"400": 10, "700": 0, "1100": 10}},
		{"three tones mixed", func(c prompts.Codec) []byte { return mixFrames(c, 400, 700, 1100) }, map[string]uint64{"400": 10, "700": 10, "1100": 10}},
		{"an unwatched tone", func(c prompts.Codec) []byte { return ToneFrame(c, 2000, 4000) }, map[string]uint64{"400": 0, "700": 0, "1100": 0}},
		{"silence", SilenceFrame, map[string]uint64{"400": 0, "700": 0, "1100": 0}},
		{"a quiet tone is silence", func(c prompts.Codec) []byte { return ToneFrame(c, 400, 50) }, map[string]uint64{"400": 0, "700": 0, "1100": 0}},
	}
	for _, tc := range tests {
		for _, c := range []prompts.Codec{prompts.PCMA, prompts.PCMU} {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				d := NewToneDetector(c, watch)
				for range 10 {
					d.Feed(tc.frame(c))
				}
				d.Feed([]byte{1, 2, 3}) // not a 20 ms frame: ignored
				got := d.Counts()
				for k, v := range tc.want {
					if got[k] != v {
						t.Errorf("%s Hz: %d frames, want %d (all: %v)", k, got[k], v, got)
					}
				}
			})
		}
	}
}

// TestToneLongestRun: a held tone is one run however long; silence or
// other audio between its frames starts a new run.
func TestToneLongestRun(t *testing.T) {
	c := prompts.PCMA
	tone, other := ToneFrame(c, 450, 4000), ToneFrame(c, 1100, 4000)
	d := NewToneDetector(c, []float64{450})
	feed := func(f []byte, n int) {
		for range n {
			d.Feed(f)
		}
	}
	feed(tone, 3)
	feed(SilenceFrame(c), 1)
	feed(tone, 7)
	feed(other, 2)
	feed(tone, 5)
	if got := d.LongestRuns()["450"]; got != 7 {
		t.Errorf("longest run %d, want 7", got)
	}
	if got := d.Counts()["450"]; got != 15 {
		t.Errorf("count %d, want 15", got)
	}
}

// TestTonesOverACall: each side sends its own tone and reports the other's.
func TestTonesOverACall(t *testing.T) {
	lib := loadLib(t)
	line := newTestPhone(t, lib)
	caller := newTestPhone(t, lib)
	reports := make(chan Report, 1)
	ctx, stop := context.WithCancel(context.Background())
	answered := make(chan error, 1)
	go func() {
		answered <- line.Answer(ctx, AnswerConfig{
			Script:   Script{Send: func(c prompts.Codec) []byte { return ToneFrame(c, 1100, 4000) }, DetectTones: []float64{400, 1100}},
			OnReport: func(r Report) { reports <- r },
		})
	}()
	defer func() {
		stop()
		if err := <-answered; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(10 * time.Millisecond)
	r := caller.Run(context.Background(), DialOptions{Target: line.SIPAddr("udp").String(), To: "110", From: "13800138000"},
		Script{Send: func(c prompts.Codec) []byte { return ToneFrame(c, 400, 4000) }, DetectTones: []float64{400, 1100}, HangupAfter: 1500 * time.Millisecond})
	if r.TonesReceived["1100"] < 50 || r.TonesReceived["400"] != 0 {
		t.Errorf("caller received tones %v; want about 75 frames of 1100 Hz and none of its own 400 Hz", r.TonesReceived)
	}
	b, _ := json.Marshal(r)
	validateReport(t, b)
	var lr Report
	select {
	case lr = <-reports:
	case <-time.After(3 * time.Second):
		t.Fatal("no report from the line")
	}
	if lr.TonesReceived["400"] < 50 || lr.TonesReceived["1100"] != 0 {
		t.Errorf("line received tones %v; want about 75 frames of 400 Hz and none of 1100 Hz", lr.TonesReceived)
	}
}
