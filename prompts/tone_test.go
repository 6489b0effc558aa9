package prompts

import (
	"math"
	"testing"

	"github.com/cq12345/hotline/media"
)

// TestRingback checks the synthesised ringback against its definition:
// 250 frames (5 s), the first 50 (1 s) a 450 Hz tone at about -10 dBm0,
// the rest silence, in both codecs.
func TestRingback(t *testing.T) {
	lib, err := Load(Embedded())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Codec{PCMA, PCMU} {
		t.Run(c.String(), func(t *testing.T) {
			frames, ok := lib.Frames(Ringback, c)
			if !ok {
				t.Fatalf("no %s in the library", Ringback)
			}
			if len(frames) != 250 {
				t.Fatalf("%d frames, want 250 (5 s)", len(frames))
			}
			decode := media.DecodeALaw
			if c == PCMU {
				decode = media.DecodeULaw
			}
			for i, f := range frames {
				pcm := make([]float64, len(f))
				var energy float64
				for j, b := range f {
					pcm[j] = float64(decode(b))
					energy += pcm[j] * pcm[j]
				}
				rms := math.Sqrt(energy / float64(len(f)))
				if i >= 50 {
					if rms > 10 {
						t.Fatalf("frame %d: rms %.0f in the silent part", i, rms)
					}
					continue
				}
				// -10 dBm0 is amplitude 7215, rms 5102; G.711 quantises
				// within a few per cent.
				if rms < 4800 || rms > 5400 {
					t.Fatalf("frame %d: rms %.0f, want about 5102 (-10 dBm0)", i, rms)
				}
				if share := power(pcm, 450) / energy; share < 0.95 {
					t.Fatalf("frame %d: %.2f of the energy at 450 Hz", i, share)
				}
			}
		})
	}
}

// power returns the energy of the frame at freq (Goertzel), scaled so that
// a pure tone at freq gives the frame's whole energy.
func power(x []float64, freq float64) float64 {
	w := 2 * math.Pi * freq / 8000
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s0 := v + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * p / float64(len(x))
}
