package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTwoProcessesNeverDoubleBookAnAgent: two hotlined processes share one
// PostgreSQL and one agent (1001, whose phone registers with both). Callers
// on both processes press 0 at once; the agent reservation in the shared
// store must hand the agent one call at a time, whichever process holds it.
func TestTwoProcessesNeverDoubleBookAnAgent(t *testing.T) {
	t.Parallel()
	u := pgDatabase(t)
	dir1, dir2 := t.TempDir(), t.TempDir()
	writeKeys(t, dir1)
	// Processes sharing a database share its keys.
	os.MkdirAll(filepath.Join(dir2, "keys"), 0o700)
	for _, f := range []string{"case.keys", "hash.key"} {
		b, err := os.ReadFile(filepath.Join(dir1, "keys", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir2, "keys", f), b, 0o600)
	}
	// Callers wait up to a minute for the agent.
	rc := filepath.Join(t.TempDir(), "routing.yaml")
	os.WriteFile(rc, []byte("queues:\n  - {id: general, max_wait: 60s, overflow: flow, announce_first: 2m, ring_timeout: 8s, wrap_up: 500ms}\n"+
		"  - {id: complaints}\n  - {id: suggestions}\n  - {id: followup}\n"), 0o600)
	s1 := startServer(t, dir1, "--store", u.String(), "--routing-config", rc)
	s2 := startServer(t, dir2, "--store", u.String(), "--routing-config", rc)

	add := exec.Command(filepath.Join(bin, "hotlinectl"), "--server", "http://"+s1.HTTP, "--token-file", filepath.Join(dir1, "admin.token"),
		"agents", "add", "1001", "--name", "Agent One", "--extension", "1001", "--state", "available")
	add.Env = append(os.Environ(), "HOTLINE_AGENT_PASSWORD=s3cret-1001")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("agents add: %v\n%s", err, out)
	}
	for _, s := range []*server{s1, s2} {
		startPhone(t, "agent", "--target", s.SIP, "--user", "1001", "--password", "s3cret-1001",
			"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--talk", "4s", "--json")
	}
	time.Sleep(1500 * time.Millisecond) // registrations, and process 2 reads the agent

	// Three callers on each process press 0 during the greeting, all at once.
	var wg sync.WaitGroup
	for i, s := range []*server{s1, s2, s1, s2, s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.call(t, "--from", fmt.Sprintf("1380013805%d", i), "--dtmf", "0", "--dtmf-after", "1s", "--hangup-after", "45s")
		}()
	}
	wg.Wait()
	s1.Stop()
	s2.Stop()

	// The agent's calls, from both processes' logs: answered .. agent hung up.
	type span struct {
		from, to time.Time
		proc     int
	}
	var spans []span
	for p, s := range []*server{s1, s2} {
		open := map[string]time.Time{}
		sc := bufio.NewScanner(strings.NewReader(s.Log()))
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		for sc.Scan() {
			var l struct {
				Time   time.Time `json:"time"`
				Msg    string    `json:"msg"`
				Leg    string    `json:"leg"`
				CallID string    `json:"call_id"`
			}
			if json.Unmarshal(sc.Bytes(), &l) != nil || l.Leg != "agent 1001" {
				continue
			}
			switch l.Msg {
			case "leg answered":
				open[l.Leg] = l.Time
			case "far end hung up", "leg hangup":
				if from, ok := open[l.Leg]; ok {
					spans = append(spans, span{from, l.Time, p + 1})
					delete(open, l.Leg)
				}
			}
		}
		for _, from := range open {
			spans = append(spans, span{from, time.Now(), p + 1})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].from.Before(spans[j].from) })
	per := map[int]int{}
	for i, sp := range spans {
		per[sp.proc]++
		t.Logf("agent call %d on process %d: %s .. %s", i+1, sp.proc, sp.from.Format("15:04:05.000"), sp.to.Format("15:04:05.000"))
		if i > 0 && sp.from.Before(spans[i-1].to) {
			t.Errorf("agent 1001 double-booked: a call on process %d began at %s while one on process %d lasted until %s",
				sp.proc, sp.from.Format("15:04:05.000"), spans[i-1].proc, spans[i-1].to.Format("15:04:05.000"))
		}
	}
	if len(spans) < 3 || per[1] == 0 || per[2] == 0 {
		t.Errorf("the agent took %d calls (%v per process); want several, from both processes, for the test to mean anything", len(spans), per)
	}
}
