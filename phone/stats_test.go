package phone

import (
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	var h Histogram
	for i := 0; i < 98; i++ {
		h.Add(20 * time.Millisecond)
	}
	h.Add(35 * time.Millisecond)
	h.Add(300 * time.Millisecond)
	s := h.Summary()
	if s.P50 != 20.05 || s.P99 != 35.05 || s.Max != 300 || s.Count != 100 {
		t.Errorf("summary %+v", s)
	}
	var m Histogram
	m.Merge(&h)
	m.Add(2 * time.Second) // beyond the last bucket: kept as max
	if m.Count() != 101 || m.Max() != 2*time.Second || m.Quantile(1) != 2*time.Second {
		t.Errorf("merged count %d max %v q1 %v", m.Count(), m.Max(), m.Quantile(1))
	}
	if got := SummariseDurations([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}); got.P50 != 2 || got.Max != 3 {
		t.Errorf("SummariseDurations %+v", got)
	}
}

func TestSeqCounter(t *testing.T) {
	tests := []struct {
		name           string
		ssrcs          []uint32
		seqs           []uint16
		received, lost uint64
	}{
		{"in order", []uint32{1}, []uint16{10, 11, 12, 13}, 4, 0},
		{"gap", []uint32{1}, []uint16{10, 11, 14, 15}, 4, 2},
		{"wrap", []uint32{1}, []uint16{65534, 65535, 0, 2}, 4, 1},
		{"reorder", []uint32{1}, []uint16{10, 12, 11, 13}, 4, 0},
		{"reorder before first", []uint32{1}, []uint16{11, 10, 12}, 3, 0},
		{"new ssrc", []uint32{1, 1, 2, 2}, []uint16{10, 12, 500, 501}, 4, 1},
		{"duplicate", []uint32{1}, []uint16{10, 10, 11}, 3, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c seqCounter
			for i, s := range tc.seqs {
				ssrc := tc.ssrcs[0]
				if i < len(tc.ssrcs) {
					ssrc = tc.ssrcs[i]
				}
				c.add(ssrc, s)
			}
			rec, lost := c.totals()
			if rec != tc.received || lost != tc.lost {
				t.Errorf("received %d lost %d, want %d %d", rec, lost, tc.received, tc.lost)
			}
		})
	}
}

func TestNthCaller(t *testing.T) {
	for _, tc := range []struct {
		from string
		n    int64
		want string
	}{
		{"13800138000", 0, "13800138000"},
		{"13800138000", 1999, "13800139999"},
		{"99", 3, "02"},
		{"sip-user", 5, "sip-user"},
	} {
		if got := nthCaller(tc.from, tc.n); got != tc.want {
			t.Errorf("nthCaller(%q, %d) = %q, want %q", tc.from, tc.n, got, tc.want)
		}
	}
}
