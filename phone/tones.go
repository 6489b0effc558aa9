package phone

import (
	"math"
	"strconv"

	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
)

// Tone detection: whose audio a phone hears. When every party of a bridged
// or three-party call sends its own tone (--tone-hz), each can tell which
// of the others reach it by the frequencies present in what it receives.
// Each received 20 ms frame is decoded from G.711 and the power at every
// watched frequency is measured with the Goertzel algorithm (one second-
// order filter per frequency, 160 samples), relative to the frame's whole
// energy: a pure tone on the bin scores 1, two equal tones mixed score
// about 0.5 each, speech rarely puts a tenth of its energy in one 50 Hz bin
// for long.

// toneShare is the share of a frame's energy a watched frequency must
// carry for the frame to count as carrying that tone.
const toneShare = 0.1

// toneFloor is the mean square below which a frame is silence (an
// amplitude of about 100 of 32767).
const toneFloor = 100 * 100

// ToneDetector counts, per watched frequency, the received frames that
// carry it. It is not safe for concurrent use: a call feeds it from its
// receive goroutine under its own lock.
type ToneDetector struct {
	codec  prompts.Codec
	hz     []float64
	coeff  []float64
	counts []uint64
	// run: consecutive frames carrying the tone up to the last one fed;
	// longest: the longest such run. A tone held for a while (a ringback
	// cadence: 50 frames) is told from speech this way, whose frames now
	// and then pass the share test but rarely several in a row.
	run, longest []uint64
	pcm          [prompts.FrameSize]float64
}

// NewToneDetector watches the frequencies hz (multiples of 50 Hz fall on a
// bin of a 20 ms frame) in audio of codec c.
func NewToneDetector(c prompts.Codec, hz []float64) *ToneDetector {
	d := &ToneDetector{codec: c, hz: hz, coeff: make([]float64, len(hz)), counts: make([]uint64, len(hz)),
		run: make([]uint64, len(hz)), longest: make([]uint64, len(hz))}
	for i, f := range hz {
		d.coeff[i] = 2 * math.Cos(2*math.Pi*f/8000)
	}
	return d
}

// Feed measures one received payload (160 bytes of G.711; others are
// ignored).
func (d *ToneDetector) Feed(payload []byte) {
	if len(payload) != prompts.FrameSize {
		return
	}
	var energy float64
	for i, b := range payload {
		var s int16
		if d.codec == prompts.PCMU {
			s = media.DecodeULaw(b)
		} else {
			s = media.DecodeALaw(b)
		}
		d.pcm[i] = float64(s)
		energy += d.pcm[i] * d.pcm[i]
	}
	n := float64(len(payload))
	if energy/n < toneFloor {
		clear(d.run)
		return
	}
	for i, coeff := range d.coeff {
		var s1, s2 float64
		for _, x := range d.pcm {
			s1, s2 = x+coeff*s1-s2, s1
		}
		power := s1*s1 + s2*s2 - coeff*s1*s2
		if 2*power/(n*energy) >= toneShare {
			d.counts[i]++
			d.run[i]++
			d.longest[i] = max(d.longest[i], d.run[i])
		} else {
			d.run[i] = 0
		}
	}
}

// Counts returns the frames counted per frequency, keyed by the frequency
// in Hz as a string (the JSON report's tones_received).
func (d *ToneDetector) Counts() map[string]uint64 {
	m := make(map[string]uint64, len(d.hz))
	for i, f := range d.hz {
		m[strconv.FormatFloat(f, 'f', -1, 64)] = d.counts[i]
	}
	return m
}

// LongestRuns returns, per frequency (keyed as in Counts), the longest run
// of consecutive received frames that carried it.
func (d *ToneDetector) LongestRuns() map[string]uint64 {
	m := make(map[string]uint64, len(d.hz))
	for i, f := range d.hz {
		m[strconv.FormatFloat(f, 'f', -1, 64)] = d.longest[i]
	}
	return m
}
