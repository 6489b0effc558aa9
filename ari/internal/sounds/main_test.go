package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cq12345/hotline/prompts"
)

func TestInstall(t *testing.T) {
	out := t.TempDir()
	n, err := install(prompts.Embedded(), out)
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("only %d files installed", n)
	}
	raw, err := os.ReadFile(filepath.Join(out, "hotline", "zh-CN", "greeting.alaw"))
	if err != nil {
		t.Fatal(err)
	}
	wav, err := os.ReadFile("../../../prompts/audio/zh-CN/greeting.alaw.wav")
	if err != nil {
		t.Fatal(err)
	}
	samples, err := prompts.ReadWAV(wav, prompts.PCMA)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != string(samples) || len(raw) < 8000 {
		t.Fatalf("greeting.alaw: %d bytes, want the WAV's %d samples", len(raw), len(samples))
	}
	if _, err := os.Stat(filepath.Join(out, "hotline", "en", "greeting.ulaw")); err != nil {
		t.Error(err)
	}
	// The synthesised hold music, as the plane plays it
	// (sound:hotline/tone/hold): 16 s of A-law.
	for _, ext := range []string{".alaw", ".ulaw"} {
		if fi, err := os.Stat(filepath.Join(out, "hotline", "tone", "hold"+ext)); err != nil || fi.Size() != 16*8000 {
			t.Errorf("hold%s: %v, want 16 s of samples", ext, err)
		}
	}
	// Where sox is installed, our raw file is what sox -t al makes.
	if sox, err := exec.LookPath("sox"); err == nil {
		ref := filepath.Join(t.TempDir(), "ref.alaw")
		if out, err := exec.Command(sox, "../../../prompts/audio/zh-CN/greeting.alaw.wav", "-t", "al", ref).CombinedOutput(); err != nil {
			t.Fatalf("sox: %v %s", err, out)
		}
		b, err := os.ReadFile(ref)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(raw) {
			t.Errorf("sox made %d bytes, we made %d; they differ", len(b), len(raw))
		}
	}
}
