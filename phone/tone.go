package phone

import (
	"math"

	"github.com/cq12345/hotline/prompts"
)

// What a phone sends when it has nothing to say: a frame looped for the
// whole call, so that the far end sees RTP (hotlined hangs up calls that
// send none) and measures a steady 20 ms stream.

// SilenceFrame is one 20 ms frame of digital silence in codec c.
func SilenceFrame(c prompts.Codec) []byte {
	f := make([]byte, prompts.FrameSize)
	for i := range f {
		f[i] = c.Silence()
	}
	return f
}

// ToneFrame is one 20 ms frame of a sine tone in codec c. hz should be a
// multiple of 50 so that the frame loops without a click (400 Hz: 8 periods).
func ToneFrame(c prompts.Codec, hz float64, amplitude int16) []byte {
	f := make([]byte, prompts.FrameSize)
	for i := range f {
		s := int16(float64(amplitude) * math.Sin(2*math.Pi*hz*float64(i)/8000))
		if c == prompts.PCMA {
			f[i] = linearToALaw(s)
		} else {
			f[i] = linearToMuLaw(s)
		}
	}
	return f
}

// linearToALaw encodes a 16-bit sample as G.711 A-law (ITU-T G.711 table 1a;
// the classic Sun reference algorithm on the 13-bit magnitude).
func linearToALaw(pcm int16) byte {
	v := int(pcm) >> 3 // 13-bit
	mask := 0xD5
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	segEnd := [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
	seg := 0
	for seg < 8 && v > segEnd[seg] {
		seg++
	}
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	aval := seg << 4
	if seg < 2 {
		aval |= (v >> 1) & 0x0F
	} else {
		aval |= (v >> seg) & 0x0F
	}
	return byte(aval ^ mask)
}

// linearToMuLaw encodes a 16-bit sample as G.711 µ-law (ITU-T G.711 table
// 2a, bias 0x84 on the 14-bit magnitude).
func linearToMuLaw(pcm int16) byte {
	const bias, clip = 0x84, 32635
	v := int(pcm)
	mask := 0xFF
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	v = min(v, clip) + bias
	seg := 0
	for t := v >> 8; t > 0; t >>= 1 {
		seg++ // seg ends as the position of the highest set bit, minus 7
	}
	uval := seg<<4 | (v>>(seg+3))&0x0F
	return byte(uval ^ mask)
}
