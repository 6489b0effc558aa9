package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPublishWhileCallsInMenu: 50 calls are in the greeting/menu when a
// new flow version is published. Those calls finish on the version they
// started on; a call placed after the publish runs the new one.
func TestPublishWhileCallsInMenu(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	ctl := func(args ...string) string {
		t.Helper()
		all := append([]string{"--server", "http://" + s.HTTP, "--token-file", filepath.Join(s.DataDir, "admin.token")}, args...)
		out, err := exec.Command(filepath.Join(bin, "hotlinectl"), all...).CombinedOutput()
		if err != nil {
			t.Fatalf("hotlinectl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	// 50 callers who listen and press nothing; they stay in the flow's
	// greeting and menus for the whole hold.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	load := exec.CommandContext(ctx, filepath.Join(bin, "callsim"), "load", "--target", s.SIP,
		"--calls", "50", "--rate", "25", "--hold", "25s", "--from", "13900000000", "--json")
	var loadOut, loadErr bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadErr
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	waitCalls(t, s, 50, time.Minute)

	// Version 2: the emergency notice first, then the greeting.
	v1 := ctl("flows", "get", "chongqing-12345")
	v2 := strings.Replace(v1, "prompts: [greeting, emergency-notice]", "prompts: [emergency-notice, greeting]", 1)
	if v2 == v1 {
		t.Fatal("test setup: the welcome node's prompts were not found in the flow")
	}
	file := filepath.Join(t.TempDir(), "chongqing-12345.yaml")
	os.WriteFile(file, []byte(v2), 0o600)
	ctl("flows", "put", file)
	ctl("flows", "publish", "chongqing-12345")
	published := time.Now()

	// A new call gets version 2 (within a second of the publish).
	time.Sleep(time.Until(published.Add(time.Second)))
	r := s.call(t, "--from", "13900001000", "--hangup-after", "8s")
	if len(r.PromptsHeard) == 0 || r.PromptsHeard[0] != "zh-CN/emergency-notice" {
		t.Errorf("a call after the publish heard %v; want version 2 (emergency notice first)", r.PromptsHeard)
	}
	if err := load.Wait(); err != nil {
		t.Fatalf("callsim load: %v\n%s\n%s", err, loadOut.String(), loadErr.String())
	}
	var lr struct {
		SetupsOK     int `json:"setups_ok"`
		SetupsFailed int `json:"setups_failed"`
	}
	json.Unmarshal(loadOut.Bytes(), &lr)
	if lr.SetupsOK != 50 {
		t.Fatalf("load: %s", loadOut.String())
	}
	s.Stop()

	// The log says which version each call ran.
	versions := map[float64]int{}
	sc := bufio.NewScanner(strings.NewReader(s.Log()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "ivr ended" {
			versions[line["flow_version"].(float64)]++
		}
	}
	if versions[1] != 50 || versions[2] != 1 {
		t.Errorf("calls per flow version %v; want 50 on version 1 (started before the publish) and 1 on version 2", versions)
	}
}

// waitCalls waits until hotlined reports n calls in progress.
func waitCalls(t *testing.T, s *server, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + s.HTTP + "/healthz")
		if err == nil {
			var h struct{ Calls int }
			json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if h.Calls >= n {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("hotlined did not reach %d calls within %s", n, within)
}
