package ari

import (
	"bufio"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/routing"
)

// TestDeployDialplan checks deploy/asterisk/extensions.conf against what
// the plane expects: every extension that enters Stasis is a hotline
// number, passes it as Stasis(hotline,inbound,${EXTEN}), and the three
// forms issue 7 names are there; sounds the dialplan plays exist.
func TestDeployDialplan(t *testing.T) {
	f, err := os.Open("../deploy/asterisk/extensions.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exten := regexp.MustCompile(`^exten\s*=>\s*([^,]+),1,`)
	sound := regexp.MustCompile(`Playback\(([^)]+)\)`)
	// The file make sounds installs for a key: prompts/audio/<key>.alaw.wav.
	known := func(key string) bool {
		_, err := fs.Stat(prompts.Embedded(), "audio/"+key+".alaw.wav")
		return err == nil
	}
	var cur string
	stasis := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, ";") {
			continue
		}
		if m := exten.FindStringSubmatch(line); m != nil {
			cur = m[1]
		}
		if strings.Contains(line, "Stasis(") {
			if !strings.Contains(line, "Stasis(hotline,inbound,${EXTEN})") {
				t.Errorf("%s: %q: want Stasis(hotline,inbound,${EXTEN})", cur, line)
			}
			if _, ok := routing.HotlineNumber(cur); !ok {
				t.Errorf("extension %q enters Stasis but is not a hotline number", cur)
			}
			stasis[cur] = true
		}
		if m := sound.FindStringSubmatch(line); m != nil {
			key := strings.TrimPrefix(m[1], "hotline/")
			if !known(key) {
				t.Errorf("Playback(%s): no prompt %q", m[1], key)
			}
		}
	}
	for _, n := range []string{"12345", "02312345", "+862312345"} {
		if !stasis[n] {
			t.Errorf("extension %s does not enter Stasis(hotline)", n)
		}
	}
}
