package phone

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cq12345/hotline/prompts"
)

func loadLib(t testing.TB) *prompts.Library {
	t.Helper()
	lib, err := prompts.Load(prompts.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

// stream builds a received stream: frames with consecutive sequence numbers
// and 20 ms arrivals.
type pkt struct {
	seq     uint16
	payload []byte
	at      time.Time
}

func streamOf(t0 time.Time, seq0 uint16, parts ...[][]byte) []pkt {
	var out []pkt
	seq := seq0
	at := t0
	for _, p := range parts {
		for _, f := range p {
			out = append(out, pkt{seq: seq, payload: f, at: at})
			seq++
			at = at.Add(20 * time.Millisecond)
		}
	}
	return out
}

func silence(c prompts.Codec, n int) [][]byte {
	f := make([]byte, prompts.FrameSize)
	for i := range f {
		f[i] = c.Silence()
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// impair drops a share of packets and swaps some neighbours, as jitter does.
func impair(r *rand.Rand, in []pkt, loss, swap float64) []pkt {
	var out []pkt
	for _, p := range in {
		if r.Float64() < loss {
			continue
		}
		out = append(out, p)
	}
	for i := 1; i < len(out); i++ {
		if r.Float64() < swap {
			out[i-1], out[i] = out[i], out[i-1]
			out[i-1].at, out[i].at = out[i].at, out[i-1].at
		}
	}
	return out
}

func TestRecogniser(t *testing.T) {
	lib := loadLib(t)
	for _, codec := range []prompts.Codec{prompts.PCMA, prompts.PCMU} {
		idx := NewPromptIndex(lib, codec)
		greeting, _ := lib.Frames("zh-CN/greeting", codec)
		menu, _ := lib.Frames("zh-CN/main-menu", codec)
		if u, _ := idx.Unique("zh-CN/greeting"); u < 20 {
			t.Fatalf("%s: greeting has only %d unique frames", codec, u)
		}
		t0 := time.Unix(1000, 0)
		cases := []struct {
			name     string
			stream   []pkt
			heard    []string
			complete []bool
		}{
			{
				name:     "greeting then menu with loss and jitter",
				stream:   impair(rand.New(rand.NewPCG(1, 2)), streamOf(t0, 65000, silence(codec, 10), greeting, silence(codec, 5), menu, silence(codec, 10)), 0.05, 0.05),
				heard:    []string{"zh-CN/greeting", "zh-CN/main-menu"},
				complete: []bool{true, true},
			},
			{
				name:     "menu cut half-way by barge-in, then greeting again",
				stream:   streamOf(t0, 7, greeting, menu[:len(menu)/2], greeting),
				heard:    []string{"zh-CN/greeting", "zh-CN/main-menu", "zh-CN/greeting"},
				complete: []bool{true, false, true},
			},
			{
				name:     "greeting with a hold in the middle (40 %, gap, rest)",
				stream:   streamOf(t0, 100, greeting[:len(greeting)*4/10], greeting[len(greeting)*7/10:]),
				heard:    []string{"zh-CN/greeting"},
				complete: []bool{false},
			},
			{
				name:   "silence alone",
				stream: streamOf(t0, 0, silence(codec, 500)),
				heard:  []string{},
			},
			{
				name:   "menu joined in the middle is not heard",
				stream: streamOf(t0, 0, menu[len(menu)/2:len(menu)*3/4]),
				heard:  []string{},
			},
		}
		for _, tc := range cases {
			t.Run(codec.String()+"/"+tc.name, func(t *testing.T) {
				r := NewRecogniser(idx, t0)
				for _, p := range tc.stream {
					r.Feed(p.seq, p.payload, p.at)
				}
				runs := r.Runs()
				if got := Heard(runs); !slices.Equal(got, tc.heard) {
					t.Fatalf("heard %v, want %v (runs %+v)", got, tc.heard, runs)
				}
				var complete []bool
				for _, run := range runs {
					if run.Heard {
						complete = append(complete, run.Complete)
						if run.FramesMatched > run.FramesTotal || run.FramesMatched == 0 {
							t.Errorf("%s: matched %d of %d", run.Key, run.FramesMatched, run.FramesTotal)
						}
					}
				}
				if len(tc.complete) > 0 && !slices.Equal(complete, tc.complete) {
					t.Errorf("complete %v, want %v", complete, tc.complete)
				}
			})
		}
	}
}

// TestRecogniserStart checks rule 4: a run starts at the arrival of the
// prompt's first frame even when its leading frames are silence.
func TestRecogniserStart(t *testing.T) {
	lib := loadLib(t)
	idx := NewPromptIndex(lib, prompts.PCMA)
	menu, _ := lib.Frames("zh-CN/main-menu", prompts.PCMA)
	t0 := time.Unix(1000, 0)
	s := streamOf(t0, 65530, silence(prompts.PCMA, 50), menu)
	r := NewRecogniser(idx, t0)
	var started []string
	r.OnRunStart(func(key string, _ time.Time) { started = append(started, key) })
	for _, p := range s {
		r.Feed(p.seq, p.payload, p.at)
	}
	runs := r.Runs()
	if len(runs) != 1 || !runs[0].Heard {
		t.Fatalf("runs %+v", runs)
	}
	want := t0.Add(50 * 20 * time.Millisecond)
	if !runs[0].Start.Equal(want) {
		t.Errorf("start %v, want %v", runs[0].Start.Sub(t0), want.Sub(t0))
	}
	if got, ok := NextRunAfter(runs, t0.Add(time.Second)); !ok || got.Key != "zh-CN/main-menu" {
		t.Errorf("NextRunAfter = %+v, %v", got, ok)
	}
	if _, ok := NextRunAfter(runs, want.Add(time.Millisecond)); ok {
		t.Error("a run starting before t must not count as next")
	}
	if !slices.Equal(started, []string{"zh-CN/main-menu"}) {
		t.Errorf("OnRunStart saw %v", started)
	}
	select {
	case <-r.FirstStarted():
	default:
		t.Error("FirstStarted not closed")
	}
}

func BenchmarkRecogniserFeed(b *testing.B) {
	lib := loadLib(b)
	idx := NewPromptIndex(lib, prompts.PCMA)
	menu, _ := lib.Frames("zh-CN/main-menu", prompts.PCMA)
	r := NewRecogniser(idx, time.Now())
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.Feed(uint16(i), menu[i%len(menu)], now)
	}
}
