package prompts

import (
	"math"

	"github.com/cq12345/hotline/media"
)

// Ringback is the audio key of China's ringback tone (回铃音): 450 Hz,
// 1 s on, 4 s off, about -10 dBm0 — the cadence of Asterisk's
// indications.conf [cn] "ring" and FreeSWITCH's cn-ring. It is one 5 s
// cadence, synthesised at Load (no file, no language): the router plays it
// in a loop to a caller while a line rings, so that the caller knows the
// call is going through rather than hear silence.
const Ringback = "tone/ringback"

// HoldMusic is the audio key of the music a caller hears while waiting in
// a queue, between the announcements: a soft pentatonic melody of 32 notes
// (16 s, looped), synthesised at Load like Ringback. A wait is never
// silent: the caller knows the line is alive, and RTP keeps flowing, so no
// carrier media timeout ends a long wait.
const HoldMusic = "tone/hold"

// Ringback tone parameters.
const (
	ringbackHz  = 450
	ringbackOn  = 1000 // ms
	ringbackOff = 4000 // ms
	// -10 dBm0: G.711's full-scale sine is +3.14 dBm0 at amplitude 32767,
	// so 13.14 dB below it.
	ringbackAmplitude = 7215
)

// ringbackSamples returns one cadence of the ringback tone in codec c.
func ringbackSamples(c Codec) []byte {
	const rate = 8000
	on, total := rate*ringbackOn/1000, rate*(ringbackOn+ringbackOff)/1000
	out := make([]byte, total)
	for i := range out {
		if i >= on {
			out[i] = c.Silence()
			continue
		}
		out[i] = encode(c, ringbackAmplitude*math.Sin(2*math.Pi*ringbackHz*float64(i)/rate))
	}
	return out
}

// Hold music: notes of the C major pentatonic scale (Hz), 0 a rest.
const (
	g4, a4, c5, d5, e5, g5, a5 = 392.00, 440.00, 523.25, 587.33, 659.26, 783.99, 880.00
)

var holdMelody = [...]float64{
	e5, g5, a5, g5, e5, d5, c5, d5,
	e5, g5, e5, d5, c5, a4, g4, 0,
	a4, c5, d5, e5, g5, a5, g5, e5,
	d5, e5, d5, c5, a4, c5, c5, 0,
}

const (
	holdNoteMs    = 500
	holdAmplitude = 2600 // peak, about -19 dBm0: under the prompts' level
)

// holdSamples returns the hold music in codec c. Each note: a sine with a
// quarter-strength second harmonic, a 20 ms attack, a decay to a third,
// and a 40 ms release, so that notes join without clicks.
func holdSamples(c Codec) []byte {
	const rate = 8000
	per := rate * holdNoteMs / 1000
	out := make([]byte, 0, per*len(holdMelody))
	for _, f := range holdMelody {
		for i := range per {
			var v float64
			if f > 0 {
				t := float64(i) / rate
				env := math.Exp(-2.2 * t)
				if a := float64(i) / (rate * 0.02); a < 1 {
					env *= a
				}
				if r := float64(per-i) / (rate * 0.04); r < 1 {
					env *= r
				}
				v = holdAmplitude * env * (math.Sin(2*math.Pi*f*t) + 0.25*math.Sin(4*math.Pi*f*t)) / 1.25
			}
			out = append(out, encode(c, v))
		}
	}
	return out
}

// encode rounds a linear sample and encodes it in codec c.
func encode(c Codec, v float64) byte {
	s := int16(math.Round(v))
	if c == PCMU {
		return media.EncodeULaw(s)
	}
	return media.EncodeALaw(s)
}
