// Command gen turns the prompt catalogue into audio: for every prompt and
// language it speaks the text with espeak-ng and converts it with sox to
// 8 kHz mono A-law and µ-law WAV. `make prompts` runs it; the output is
// committed so that building and running hotlined needs neither tool.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cq12345/hotline/prompts"
)

// voices maps a catalogue language to an espeak-ng voice.
var voices = map[string]string{"zh-CN": "cmn", "en": "en-gb"}

func main() {
	dir := flag.String("dir", "prompts", "folder holding catalogue.yaml; audio/ is written beside it")
	speed := flag.Int("speed", 190, "espeak-ng words per minute")
	flag.Parse()
	if err := run(*dir, *speed); err != nil {
		fmt.Fprintln(os.Stderr, "prompts:", err)
		os.Exit(1)
	}
}

func run(dir string, speed int) error {
	for _, tool := range []string{"espeak-ng", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed to generate prompts (apt-get install espeak-ng sox)", tool)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "catalogue.yaml"))
	if err != nil {
		return err
	}
	cat, err := prompts.ParseCatalogue(b)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "prompts")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, p := range cat.Prompts {
		for _, lang := range cat.Languages {
			voice := voices[lang]
			if voice == "" {
				return fmt.Errorf("no espeak-ng voice for language %q", lang)
			}
			raw := filepath.Join(tmp, "speech.wav")
			if err := sh("espeak-ng", "-v", voice, "-s", fmt.Sprint(speed), "-w", raw, p.Text[lang]); err != nil {
				return fmt.Errorf("%s/%s: %w", lang, p.ID, err)
			}
			out := filepath.Join(dir, "audio", lang)
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			for _, c := range []struct {
				codec    prompts.Codec
				enc, ext string
			}{{prompts.PCMA, "a-law", ".al"}, {prompts.PCMU, "u-law", ".ul"}} {
				// Raw G.711 from sox, wrapped by our own WAV writer so the
				// header is the canonical 18-byte fmt chunk.
				g711 := filepath.Join(tmp, "speech"+c.ext)
				if err := sh("sox", "-D", raw, "-r", "8000", "-c", "1", "-e", c.enc, "-b", "8", "-t", "raw", g711, "norm", "-3"); err != nil {
					return fmt.Errorf("%s/%s: %w", lang, p.ID, err)
				}
				samples, err := os.ReadFile(g711)
				if err != nil {
					return err
				}
				name := p.ID + map[prompts.Codec]string{prompts.PCMA: ".alaw.wav", prompts.PCMU: ".ulaw.wav"}[c.codec]
				if err := os.WriteFile(filepath.Join(out, name), prompts.WriteWAV(samples, c.codec), 0o644); err != nil {
					return err
				}
			}
		}
		fmt.Println("prompt", p.ID)
	}
	return nil
}

func sh(name string, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, stderr.String())
	}
	return nil
}
