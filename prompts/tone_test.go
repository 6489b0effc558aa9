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

// TestHoldMusic: 16 s of music, never silent for long (rests are one
// note), never louder than the prompts, in both codecs.
func TestHoldMusic(t *testing.T) {
	lib, err := Load(Embedded())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Codec{PCMA, PCMU} {
		frames, ok := lib.Frames(HoldMusic, c)
		if !ok || len(frames) != 800 {
			t.Fatalf("%s: %d frames, want 800 (16 s)", c, len(frames))
		}
		decode := media.DecodeALaw
		if c == PCMU {
			decode = media.DecodeULaw
		}
		silent, run, peak := 0, 0, 0
		for _, f := range frames {
			var e float64
			for _, b := range f {
				v := int(decode(b))
				e += float64(v * v)
				peak = max(peak, v, -v)
			}
			if math.Sqrt(e/float64(len(f))) < 100 {
				silent++
				if silent > run {
					run = silent
				}
			} else {
				silent = 0
			}
		}
		if run > 30 {
			t.Errorf("%s: %d silent frames in a row, want at most a rest (25)", c, run)
		}
		if peak > 3000 || peak < 2000 {
			t.Errorf("%s: peak %d, want about 2600", c, peak)
		}
	}
}
