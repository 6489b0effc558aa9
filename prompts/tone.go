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
		s := int16(math.Round(ringbackAmplitude * math.Sin(2*math.Pi*ringbackHz*float64(i)/rate)))
		if c == PCMU {
			out[i] = media.EncodeULaw(s)
		} else {
			out[i] = media.EncodeALaw(s)
		}
	}
	return out
}
