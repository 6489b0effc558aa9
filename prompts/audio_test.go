package prompts

import (
	"bytes"
	"testing"
)

func TestEmbeddedLibrary(t *testing.T) {
	lib, err := Load(Embedded())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lib.Catalogue.Prompts {
		for _, lang := range lib.Catalogue.Languages {
			for _, c := range []Codec{PCMA, PCMU} {
				fr, ok := lib.Frames(lang+"/"+p.ID, c)
				if !ok || len(fr) == 0 {
					t.Fatalf("%s/%s %s: no audio", lang, p.ID, c)
				}
				for _, f := range fr {
					if len(f) != FrameSize {
						t.Fatalf("frame of %d bytes", len(f))
					}
				}
			}
		}
	}
	if fr, _ := lib.Frames("zh-CN/greeting", PCMA); len(fr) < 50 {
		t.Errorf("greeting is only %d frames", len(fr))
	}
}

func TestWAVRoundTrip(t *testing.T) {
	for _, c := range []Codec{PCMA, PCMU} {
		in := []byte{1, 2, 3, 4, 5}
		out, err := ReadWAV(WriteWAV(in, c), c)
		if err != nil || !bytes.Equal(in, out) {
			t.Fatalf("%s: got %v, %v", c, out, err)
		}
		other := PCMA
		if c == PCMA {
			other = PCMU
		}
		if _, err := ReadWAV(WriteWAV(in, c), other); err == nil {
			t.Fatalf("%s read as %s", c, other)
		}
	}
	if _, err := ReadWAV([]byte("garbage"), PCMA); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestFramesPadding(t *testing.T) {
	fr := Frames(make([]byte, 161), PCMA)
	if len(fr) != 2 || fr[1][1] != 0xD5 {
		t.Fatalf("bad padding: %d frames", len(fr))
	}
}
