// Command sounds installs hotline's prompts as Asterisk sound files:
// prompts/audio/<lang>/<id>.alaw.wav and .ulaw.wav (8 kHz mono G.711 WAV,
// embedded in the prompts package) become <out>/hotline/<lang>/<id>.alaw
// and .ulaw, headerless G.711 as Asterisk's format_pcm reads them. Asterisk
// picks the file that needs no transcoding for the channel's codec, and the
// ari plane plays them as "sound:hotline/<lang>/<id>".
//
//	go run ./ari/internal/sounds -out /var/lib/asterisk/sounds
//
// The sox equivalent, for one file: sox greeting.alaw.wav -t al greeting.alaw
//
// The audio hotline synthesises (prompts.HoldMusic, played as
// "sound:hotline/tone/hold") is written too, as <out>/hotline/tone/<id>.alaw
// and .ulaw. The ringback is not: the plane plays Asterisk's own
// tone:ring;tonezone=cn.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cq12345/hotline/prompts"
)

func main() {
	out := flag.String("out", "/var/lib/asterisk/sounds", "Asterisk's sounds directory (astdatadir/sounds)")
	flag.Parse()
	n, err := install(prompts.Embedded(), *out)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("installed %d files under %s\n", n, filepath.Join(*out, "hotline"))
}

// install converts every audio/<lang>/<id>.{alaw,ulaw}.wav of fsys.
func install(fsys fs.FS, out string) (int, error) {
	n := 0
	err := fs.WalkDir(fsys, "audio", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var codec prompts.Codec
		var ext string
		switch {
		case strings.HasSuffix(p, ".alaw.wav"):
			codec, ext = prompts.PCMA, ".alaw"
		case strings.HasSuffix(p, ".ulaw.wav"):
			codec, ext = prompts.PCMU, ".ulaw"
		default:
			return nil
		}
		rel := strings.TrimPrefix(p, "audio/") // <lang>/<id>.alaw.wav
		lang, file := path.Split(rel)
		id := strings.TrimSuffix(strings.TrimSuffix(file, ".wav"), ext)
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		samples, err := prompts.ReadWAV(b, codec)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		dir := filepath.Join(out, "hotline", filepath.FromSlash(strings.TrimSuffix(lang, "/")))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, id+ext), samples, 0o644); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, err
	}
	lib, err := prompts.Load(fsys)
	if err != nil {
		return n, err
	}
	dir := filepath.Join(out, "hotline", "tone")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return n, err
	}
	for _, key := range []string{prompts.HoldMusic} {
		for _, c := range []struct {
			codec prompts.Codec
			ext   string
		}{{prompts.PCMA, ".alaw"}, {prompts.PCMU, ".ulaw"}} {
			frames, _ := lib.Frames(key, c.codec)
			var raw []byte
			for _, f := range frames {
				raw = append(raw, f...)
			}
			if err := os.WriteFile(filepath.Join(dir, path.Base(key)+c.ext), raw, 0o644); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
