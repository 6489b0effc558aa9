package media

// G.711 (ITU-T G.711) A-law and µ-law conversions, for the bridge (PCMA on
// one leg, PCMU on the other) and the three-party mixer. The tables are
// computed once and never written afterwards.

var (
	alawDecode [256]int16
	ulawDecode [256]int16
	// ALawToULaw and ULawToALaw translate a G.711 byte from one law to the
	// other (through linear PCM).
	ALawToULaw [256]byte
	ULawToALaw [256]byte
)

func init() {
	for i := range 256 {
		alawDecode[i] = decodeALaw(byte(i))
		ulawDecode[i] = decodeULaw(byte(i))
	}
	for i := range 256 {
		ALawToULaw[i] = EncodeULaw(alawDecode[i])
		ULawToALaw[i] = EncodeALaw(ulawDecode[i])
	}
}

// DecodeALaw returns the linear sample of an A-law byte.
func DecodeALaw(b byte) int16 { return alawDecode[b] }

// DecodeULaw returns the linear sample of a µ-law byte.
func DecodeULaw(b byte) int16 { return ulawDecode[b] }

func decodeALaw(a byte) int16 {
	a ^= 0x55
	t := int32(a&0x0f) << 4
	seg := (a & 0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

func decodeULaw(u byte) int16 {
	u = ^u
	t := (int32(u&0x0f) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// EncodeALaw encodes a linear sample as A-law.
func EncodeALaw(pcm int16) byte {
	p := int32(pcm)
	mask := byte(0xd5)
	if p < 0 {
		mask = 0x55
		p = -p - 1
	}
	p >>= 3
	seg := 0
	for lim := int32(0x1f); seg < 8 && p > lim; seg++ {
		lim = lim<<1 | 1
	}
	if seg >= 8 {
		return 0x7f ^ mask
	}
	aval := byte(seg << 4)
	if seg < 2 {
		aval |= byte(p>>1) & 0x0f
	} else {
		aval |= byte(p>>seg) & 0x0f
	}
	return aval ^ mask
}

// EncodeULaw encodes a linear sample as µ-law.
func EncodeULaw(pcm int16) byte {
	const bias, clip = 0x84, 32635
	p := int32(pcm)
	mask := byte(0xff)
	if p < 0 {
		p = -p
		mask = 0x7f
	}
	p = min(p, clip) + bias
	seg := 0
	for v := p >> 7; v > 1 && seg < 7; v >>= 1 {
		seg++
	}
	return (byte(seg<<4) | byte(p>>(seg+3))&0x0f) ^ mask
}
