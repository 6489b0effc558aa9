package phone

import (
	"testing"

	"github.com/cq12345/hotline/prompts"
)

func TestG711Silence(t *testing.T) {
	// Zero encodes to the codecs' silence bytes.
	if got := linearToALaw(0); got != prompts.PCMA.Silence() {
		t.Errorf("A-law(0) = %#x, want %#x", got, prompts.PCMA.Silence())
	}
	if got := linearToMuLaw(0); got != prompts.PCMU.Silence() {
		t.Errorf("µ-law(0) = %#x, want %#x", got, prompts.PCMU.Silence())
	}
	// Known reference values (ITU-T G.711): full-scale positive.
	if got := linearToMuLaw(32767); got != 0x80 {
		t.Errorf("µ-law(max) = %#x, want 0x80", got)
	}
	if got := linearToALaw(32767); got != 0xAA {
		t.Errorf("A-law(max) = %#x, want 0xaa", got)
	}
	if got := linearToMuLaw(-32768); got != 0x00 {
		t.Errorf("µ-law(min) = %#x, want 0x00", got)
	}
	if f := ToneFrame(prompts.PCMA, 400, 8000); len(f) != 160 || constant(f) {
		t.Error("tone frame is not a tone")
	}
}
