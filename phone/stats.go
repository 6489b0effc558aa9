package phone

import (
	"math"
	"slices"
	"time"
)

// Histogram of durations with 0.1 ms buckets up to 64 ms and 4 ms buckets up
// to about 1.1 s; the maximum is kept exactly. It costs 3.5 KiB, so a load
// run keeps one per call and merges them at the end.
type Histogram struct {
	buckets [histBuckets]uint32
	count   uint64
	max     time.Duration
}

const (
	histFine       = 640 // 0.1 ms buckets: 0-64 ms
	histFineWidth  = 100 * time.Microsecond
	histCoarse     = 256 // 4 ms buckets: 64 ms-1.088 s, then the last bucket
	histCoarseStep = 4 * time.Millisecond
	histBuckets    = histFine + histCoarse
)

func (h *Histogram) bucket(d time.Duration) int {
	if d < 0 {
		d = 0
	}
	if d < histFine*histFineWidth {
		return int(d / histFineWidth)
	}
	return min(histFine+int((d-histFine*histFineWidth)/histCoarseStep), histBuckets-1)
}

// mid is the value reported for a bucket: its middle.
func (h *Histogram) mid(b int) time.Duration {
	if b < histFine {
		return time.Duration(b)*histFineWidth + histFineWidth/2
	}
	return histFine*histFineWidth + time.Duration(b-histFine)*histCoarseStep + histCoarseStep/2
}

// Add records one value.
func (h *Histogram) Add(d time.Duration) {
	h.buckets[h.bucket(d)]++
	h.count++
	h.max = max(h.max, d)
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, n := range o.buckets {
		h.buckets[i] += n
	}
	h.count += o.count
	h.max = max(h.max, o.max)
}

// Count returns the number of values.
func (h *Histogram) Count() uint64 { return h.count }

// Max returns the largest value exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the q-quantile (0 < q <= 1) to the bucket's resolution,
// never above the maximum.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.count)))
	rank = max(rank, 1)
	var seen uint64
	for i, n := range h.buckets {
		seen += uint64(n)
		if seen >= rank {
			if i == histBuckets-1 {
				return h.max // the overflow bucket has no middle
			}
			return min(h.mid(i), h.max)
		}
	}
	return h.max
}

// Summary is a latency summary in milliseconds, as printed in JSON.
type Summary struct {
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Count uint64  `json:"count"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// Summary summarises h.
func (h *Histogram) Summary() Summary {
	return Summary{P50: ms(h.Quantile(0.5)), P99: ms(h.Quantile(0.99)), Max: ms(h.max), Count: h.count}
}

// SummariseDurations summarises exact values (setup latencies and the like).
func SummariseDurations(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(i, 0)]
	}
	return Summary{P50: ms(q(0.5)), P99: ms(q(0.99)), Max: ms(s[len(s)-1]), Count: uint64(len(s))}
}

// seqCounter counts received and lost packets of an RTP stream from its
// sequence numbers, as RFC 3550 appendix A.3 does: expected = highest
// extended sequence number - first + 1, lost = expected - received. A new
// SSRC starts a new count (a re-INVITE or a bridge may change it).
type seqCounter struct {
	ssrc     uint32
	started  bool
	base     uint32 // extended first sequence number
	highest  uint32 // extended highest sequence number
	received uint64
	// totals of earlier SSRCs
	doneExpected, doneReceived uint64
}

func (c *seqCounter) add(ssrc uint32, seq uint16) {
	if !c.started || ssrc != c.ssrc {
		c.fold()
		c.ssrc, c.started = ssrc, true
		c.base, c.highest = uint32(seq), uint32(seq)
		c.received = 1
		return
	}
	c.received++
	// Extend seq to the cycle closest to the highest seen.
	ext := c.highest&^0xffff | uint32(seq)
	switch delta := int32(ext - c.highest); {
	case delta < -0x8000:
		ext += 0x10000
	case delta > 0x8000:
		ext -= 0x10000
	}
	if int32(ext-c.highest) > 0 {
		c.highest = ext
	}
	if int32(ext-c.base) < 0 {
		c.base = ext // reordered packet from before the first one
	}
}

func (c *seqCounter) fold() {
	if !c.started {
		return
	}
	c.doneExpected += uint64(c.highest-c.base) + 1
	c.doneReceived += c.received
	c.started = false
}

// totals returns packets received and lost so far (lost never below 0:
// duplicates can make received exceed expected).
func (c *seqCounter) totals() (received, lost uint64) {
	exp, rec := c.doneExpected, c.doneReceived
	if c.started {
		exp += uint64(c.highest-c.base) + 1
		rec += c.received
	}
	if rec >= exp {
		return rec, 0
	}
	return rec, exp - rec
}
