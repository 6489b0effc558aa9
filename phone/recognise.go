package phone

import (
	"sort"
	"sync"
	"time"

	"github.com/cq12345/hotline/prompts"
)

// Prompt recognition: which prompts did the far end play to us?
//
// hotlined sends prompt audio bit-exactly (the 160-byte G.711 frames of
// prompts/audio/<lang>/<id>.{alaw,ulaw}.wav, one frame per 20 ms packet), so
// a received payload either is a frame of a prompt or is not. The rule, in
// full:
//
//  1. Index. For the negotiated codec, every 160-byte frame of every prompt
//     is indexed by its content. A frame whose content occurs at more than
//     one position (in two prompts, or twice in one prompt) is dropped: it
//     is silence or near-silence and says nothing about which prompt plays.
//     So is a constant frame (160 equal bytes: digital silence), even when
//     only one prompt happens to contain it, because any far end may send it.
//     What is left of prompt P are its U(P) "unique frames", numbered by rank
//     0..U(P)-1 in playing order.
//  2. Runs. Received payloads are looked up in arrival order; payloads not in
//     the index are ignored. A unique frame (P, rank r) continues the current
//     run when the run is of P and r > last-4 (forward, with gaps for loss
//     and for dropped ambiguous frames; up to 3 ranks back for reordering by
//     jitter) and r was not seen in the run yet (duplicates are ignored).
//     Anything else closes the run and opens a new one (another prompt, or P
//     again from further back: a replay).
//  3. Heard. A run of P is heard
//     - completely when it matched at least 80 % of U(P) (loss up to 20 %);
//     - cut (barge-in, hang-up, hold) when it starts at P's beginning (its
//     first rank is 0, 1 or 2) and its opening stretch matched at least
//     min(5, U(P)) frames and at least 80 % of the ranks it spans. The
//     opening stretch ends at the first jump of more than 10 ranks (200 ms
//     of the prompt missing: a hold, not loss), or with the run.
//     Runs that are neither are reported in the details but not heard.
//     Silence alone matches nothing, so it is never heard.
//  4. Start time. A run's start is the arrival time of the prompt's first
//     frame (ranked or not): the packet whose RTP sequence number is the
//     first matched packet's minus that frame's position in the prompt, taken
//     from a ring of the last 128 arrivals; if it is no longer there, the
//     first match's arrival minus 20 ms per frame before it.

// Thresholds of the rule above.
const (
	reorderWindow  = 4
	completeShare  = 0.8
	cutDensity     = 0.8
	cutMaxFirst    = 2
	cutMinFrames   = 5
	openingGap     = 10
	arrivalRingLen = 128 // power of two
	framePeriod    = 20 * time.Millisecond
)

type frameRef struct {
	prompt int32 // index into PromptIndex.keys
	rank   int32 // rank among the prompt's unique frames
	pos    int32 // position among all the prompt's frames
}

// PromptIndex maps frame contents to prompts for one codec. It is read-only
// once built and shared by all calls.
type PromptIndex struct {
	Codec  prompts.Codec
	keys   []string
	unique []int32 // prompt -> U(P)
	total  []int32 // prompt -> number of frames
	frames map[string]frameRef
}

// NewPromptIndex indexes every prompt of lib in codec c (rule 1).
func NewPromptIndex(lib *prompts.Library, c prompts.Codec) *PromptIndex {
	keys := lib.Keys()
	sort.Strings(keys)
	idx := &PromptIndex{Codec: c, keys: keys, unique: make([]int32, len(keys)), total: make([]int32, len(keys))}
	type seen struct {
		ref   frameRef
		count int
	}
	all := map[string]*seen{}
	for p, k := range keys {
		frames, _ := lib.Frames(k, c)
		idx.total[p] = int32(len(frames))
		for i, f := range frames {
			if constant(f) {
				continue
			}
			s := all[string(f)]
			if s == nil {
				all[string(f)] = &seen{ref: frameRef{prompt: int32(p), pos: int32(i)}, count: 1}
				continue
			}
			s.count++
		}
	}
	idx.frames = make(map[string]frameRef, len(all))
	for p, k := range keys {
		frames, _ := lib.Frames(k, c)
		var rank int32
		for _, f := range frames {
			s := all[string(f)]
			if s == nil || s.count != 1 {
				continue
			}
			ref := s.ref
			ref.rank = rank
			rank++
			idx.frames[string(f)] = ref
		}
		idx.unique[p] = rank
	}
	return idx
}

func constant(f []byte) bool {
	for _, b := range f[1:] {
		if b != f[0] {
			return false
		}
	}
	return true
}

// Unique returns U(P) for a prompt key, and whether the key exists.
func (x *PromptIndex) Unique(key string) (int, bool) {
	i := sort.SearchStrings(x.keys, key)
	if i == len(x.keys) || x.keys[i] != key {
		return 0, false
	}
	return int(x.unique[i]), true
}

// PromptRun is one run of a prompt's frames (rule 2), as reported.
type PromptRun struct {
	Key           string    `json:"key"`
	Heard         bool      `json:"heard"`
	Complete      bool      `json:"complete"`
	FramesMatched int       `json:"frames_matched"`
	FramesTotal   int       `json:"frames_total"` // U(P): the prompt's unique frames
	FirstRank     int       `json:"first_rank"`
	LastRank      int       `json:"last_rank"`
	Start         time.Time `json:"-"`
	AtMS          int64     `json:"at_ms"` // start, from the Recogniser's origin
}

type run struct {
	prompt    int32
	firstRank int32
	lastRank  int32
	matched   int32
	// the opening stretch (rule 3)
	openMatched int32
	openLast    int32
	openClosed  bool
	start       time.Time
	seen        []uint64 // bit per rank
}

type arrival struct {
	at  int64 // unix nanoseconds; 0 = empty
	seq uint16
}

// Recogniser follows the prompts in one received stream. It is safe for
// concurrent use (packets arrive on the media engine's goroutines, the
// results are read by the call's).
type Recogniser struct {
	mu      sync.Mutex
	idx     *PromptIndex
	origin  time.Time
	active  bool
	cur     run
	runs    []PromptRun
	ring    [arrivalRingLen]arrival
	started chan struct{} // closed when the first run starts
	onStart func(key string, start time.Time)
}

// NewRecogniser returns a recogniser over idx; times in the results are
// relative to origin (usually the answer).
func NewRecogniser(idx *PromptIndex, origin time.Time) *Recogniser {
	return &Recogniser{idx: idx, origin: origin, started: make(chan struct{})}
}

// OnRunStart registers f, called (under the recogniser's lock: keep it
// short) whenever a new run starts.
func (r *Recogniser) OnRunStart(f func(key string, start time.Time)) {
	r.mu.Lock()
	r.onStart = f
	r.mu.Unlock()
}

// FirstStarted is closed when the first prompt run starts.
func (r *Recogniser) FirstStarted() <-chan struct{} { return r.started }

// Feed takes one received audio payload with its RTP sequence number.
func (r *Recogniser) Feed(seq uint16, payload []byte, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring[seq&(arrivalRingLen-1)] = arrival{at: at.UnixNano(), seq: seq}
	if len(payload) != prompts.FrameSize {
		return
	}
	ref, ok := r.idx.frames[string(payload)] // no allocation: map lookup by converted key
	if !ok {
		return
	}
	if r.active && ref.prompt == r.cur.prompt && ref.rank > r.cur.lastRank-reorderWindow {
		w, b := ref.rank/64, uint64(1)<<(ref.rank%64)
		if r.cur.seen[w]&b != 0 {
			return // duplicate
		}
		r.cur.seen[w] |= b
		r.cur.matched++
		if !r.cur.openClosed {
			if ref.rank > r.cur.lastRank+openingGap {
				r.cur.openClosed = true
			} else {
				r.cur.openMatched++
				r.cur.openLast = max(r.cur.openLast, ref.rank)
			}
		}
		r.cur.firstRank = min(r.cur.firstRank, ref.rank)
		r.cur.lastRank = max(r.cur.lastRank, ref.rank)
		return
	}
	r.closeRun()
	start := at.Add(-time.Duration(ref.pos) * framePeriod)
	first := seq - uint16(ref.pos)
	if a := r.ring[first&(arrivalRingLen-1)]; a.at != 0 && a.seq == first && ref.pos < arrivalRingLen {
		start = time.Unix(0, a.at)
	}
	u := r.idx.unique[ref.prompt]
	r.cur = run{prompt: ref.prompt, firstRank: ref.rank, lastRank: ref.rank, matched: 1, openMatched: 1, openLast: ref.rank, start: start, seen: make([]uint64, u/64+1)}
	r.cur.seen[ref.rank/64] |= 1 << (ref.rank % 64)
	r.active = true
	if len(r.runs) == 0 {
		close(r.started)
	}
	// Reserve the run's place now so that runs are in start order.
	r.runs = append(r.runs, PromptRun{Key: r.idx.keys[ref.prompt], Start: start, AtMS: start.Sub(r.origin).Milliseconds()})
	if r.onStart != nil {
		r.onStart(r.idx.keys[ref.prompt], start)
	}
}

// closeRun judges the current run (rule 3) into its reserved place.
func (r *Recogniser) closeRun() {
	if !r.active {
		return
	}
	c := r.cur
	u := int(r.idx.unique[c.prompt])
	pr := &r.runs[len(r.runs)-1]
	pr.FramesMatched = int(c.matched)
	pr.FramesTotal = u
	pr.FirstRank = int(c.firstRank)
	pr.LastRank = int(c.lastRank)
	pr.Complete = u > 0 && float64(c.matched) >= completeShare*float64(u)
	span := int(c.openLast-c.firstRank) + 1
	cut := c.firstRank <= cutMaxFirst && int(c.openMatched) >= min(cutMinFrames, u) &&
		float64(c.openMatched) >= cutDensity*float64(span)
	pr.Heard = pr.Complete || cut
	r.active = false
	r.cur = run{}
}

// Runs closes the current run and returns every run so far, in start order.
func (r *Recogniser) Runs() []PromptRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active {
		// Judge a copy so that the stream may go on.
		saved := r.cur
		r.closeRun()
		out := append([]PromptRun(nil), r.runs...)
		r.cur, r.active = saved, true
		return out
	}
	return append([]PromptRun(nil), r.runs...)
}

// Heard returns the keys of the heard runs, in order.
func Heard(runs []PromptRun) []string {
	out := []string{}
	for _, r := range runs {
		if r.Heard {
			out = append(out, r.Key)
		}
	}
	return out
}

// NextRunAfter returns the first run whose start is at or after t.
func NextRunAfter(runs []PromptRun, t time.Time) (PromptRun, bool) {
	for _, r := range runs {
		if !r.Start.Before(t) {
			return r, true
		}
	}
	return PromptRun{}, false
}
