package prompts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Codec is a G.711 variant, named by its RTP static payload type.
type Codec uint8

const (
	PCMU Codec = 0 // G.711 µ-law, RTP payload type 0
	PCMA Codec = 8 // G.711 A-law, RTP payload type 8
)

// FrameSize is one 20 ms G.711 frame at 8 kHz: 160 samples of one byte.
const FrameSize = 160

// Silence returns the byte that encodes silence in the codec.
func (c Codec) Silence() byte {
	if c == PCMA {
		return 0xD5
	}
	return 0xFF
}

func (c Codec) String() string {
	if c == PCMA {
		return "PCMA"
	}
	return "PCMU"
}

// Ext is the file suffix of the codec's audio files.
func (c Codec) ext() string {
	if c == PCMA {
		return ".alaw.wav"
	}
	return ".ulaw.wav"
}

// Library holds every prompt's audio, split into 20 ms frames ready to be
// sent as RTP payloads. It is read-only after Load and safe to share.
type Library struct {
	Catalogue *Catalogue
	frames    map[Codec]map[string][][]byte // codec -> "lang/id" -> frames
}

// Load reads catalogue.yaml and audio/<lang>/<id>.{alaw,ulaw}.wav from fsys.
// Every prompt must have audio in every language and codec.
func Load(fsys fs.FS) (*Library, error) {
	b, err := fs.ReadFile(fsys, "catalogue.yaml")
	if err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	cat, err := ParseCatalogue(b)
	if err != nil {
		return nil, err
	}
	lib := &Library{Catalogue: cat, frames: map[Codec]map[string][][]byte{PCMA: {}, PCMU: {}}}
	var problems []string
	for _, p := range cat.Prompts {
		for _, lang := range cat.Languages {
			for _, c := range []Codec{PCMA, PCMU} {
				name := path.Join("audio", lang, p.ID+c.ext())
				data, err := fs.ReadFile(fsys, name)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: %v", name, err))
					continue
				}
				samples, err := ReadWAV(data, c)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: %v", name, err))
					continue
				}
				lib.frames[c][lang+"/"+p.ID] = Frames(samples, c)
			}
		}
	}
	for _, c := range []Codec{PCMA, PCMU} {
		lib.frames[c][Ringback] = Frames(ringbackSamples(c), c)
		lib.frames[c][HoldMusic] = Frames(holdSamples(c), c)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("prompts: %d audio problems (run `make prompts`): %s", len(problems), strings.Join(problems, "; "))
	}
	return lib, nil
}

// Frames returns the audio of key ("zh-CN/greeting") in the codec as 160-byte
// frames. The slices are shared: never modify them.
func (l *Library) Frames(key string, c Codec) ([][]byte, bool) {
	f, ok := l.frames[c][key]
	return f, ok
}

// Keys lists every audio key ("lang/id", and the tones such as Ringback).
func (l *Library) Keys() []string {
	keys := make([]string, 0, len(l.frames[PCMA]))
	for k := range l.frames[PCMA] {
		keys = append(keys, k)
	}
	return keys
}

// Frames splits G.711 samples into 20 ms frames, padding the last with
// silence.
func Frames(samples []byte, c Codec) [][]byte {
	n := (len(samples) + FrameSize - 1) / FrameSize
	buf := make([]byte, n*FrameSize)
	copy(buf, samples)
	for i := len(samples); i < len(buf); i++ {
		buf[i] = c.Silence()
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = buf[i*FrameSize : (i+1)*FrameSize : (i+1)*FrameSize]
	}
	return out
}

// WAV format codes (RFC 2361): 6 is A-law, 7 is µ-law.
const (
	wavALaw  = 6
	wavMuLaw = 7
)

// ReadWAV returns the sample bytes of an 8 kHz mono G.711 WAV file in codec c.
func ReadWAV(b []byte, c Codec) ([]byte, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errors.New("not a RIFF/WAVE file")
	}
	want := uint16(wavMuLaw)
	if c == PCMA {
		want = wavALaw
	}
	var haveFmt bool
	r := b[12:]
	for len(r) >= 8 {
		id, size := string(r[0:4]), int(binary.LittleEndian.Uint32(r[4:8]))
		r = r[8:]
		if size > len(r) {
			return nil, fmt.Errorf("chunk %q truncated", id)
		}
		body := r[:size]
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, errors.New("short fmt chunk")
			}
			format := binary.LittleEndian.Uint16(body[0:2])
			channels := binary.LittleEndian.Uint16(body[2:4])
			rate := binary.LittleEndian.Uint32(body[4:8])
			bits := binary.LittleEndian.Uint16(body[14:16])
			if format != want || channels != 1 || rate != 8000 || bits != 8 {
				return nil, fmt.Errorf("want %s 8000 Hz mono 8-bit, got format %d, %d channels, %d Hz, %d bits", c, format, channels, rate, bits)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, errors.New("data chunk before fmt chunk")
			}
			return bytes.Clone(body), nil
		}
		r = r[size+size%2:]
	}
	return nil, errors.New("no data chunk")
}

// WriteWAV encodes G.711 samples as an 8 kHz mono WAV file.
func WriteWAV(samples []byte, c Codec) []byte {
	format := uint16(wavMuLaw)
	if c == PCMA {
		format = wavALaw
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, uint32(4+8+18+8+len(samples)+len(samples)%2))
	b.WriteString("WAVEfmt ")
	_ = binary.Write(&b, le, uint32(18))
	_ = binary.Write(&b, le, format)
	_ = binary.Write(&b, le, uint16(1))    // channels
	_ = binary.Write(&b, le, uint32(8000)) // rate
	_ = binary.Write(&b, le, uint32(8000)) // bytes per second
	_ = binary.Write(&b, le, uint16(1))    // block align
	_ = binary.Write(&b, le, uint16(8))    // bits per sample
	_ = binary.Write(&b, le, uint16(0))    // cbSize
	b.WriteString("data")
	_ = binary.Write(&b, le, uint32(len(samples)))
	b.Write(samples)
	if len(samples)%2 == 1 {
		b.WriteByte(0)
	}
	return b.Bytes()
}
