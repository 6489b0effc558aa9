package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 4, emergencies: an agent brings 110 into a call with the caller
// (three-party, the plane mixes the legs' audio), then hands the call over
// and leaves. Each party sends its own tone and counts the tones it hears:
// caller 1500 Hz, agent 1900 Hz, the 110 line 1100 Hz (above the band
// where the prompts' speech carries most of its energy: the caller hears
// prompts too).

// routingWith writes a routing file with the default destinations, extra
// ones (YAML flow mappings) and fast queues; it returns its path.
func routingWith(t *testing.T, extra []string, queueOpts string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(`destinations:
  - {id: "12315", number: "12315", fallback: general, names: {zh-CN: 12315, en: 12315}}
  - {id: "12333", number: "12333", fallback: general, names: {zh-CN: 12333, en: 12333}}
  - {id: edu-bureau, number: "02363862437", calendar: edu-bureau, fallback: complaints, names: {zh-CN: 教育局, en: Education bureau}}
  - {id: sichuan-12345, number: "12345", fallback: general, names: {zh-CN: 四川12345, en: Sichuan 12345}}
`)
	for _, e := range extra {
		b.WriteString("  - " + e + "\n")
	}
	b.WriteString("queues:\n")
	for _, q := range []string{"general", "complaints", "suggestions", "followup", "supervisor"} {
		fmt.Fprintf(&b, "  - {id: %s, %s}\n", q, queueOpts)
	}
	path := filepath.Join(t.TempDir(), "routing.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tones returns how many received frames carried hz (a callsim report's
// tones_received).
func tones(m map[string]any, hz string) float64 {
	tr, _ := m["tones_received"].(map[string]any)
	f, _ := tr[hz].(float64)
	return f
}

const detectAll = "1100,1500,1900"

func TestThreePartyWith110(t *testing.T) {
	t.Parallel()
	linePort := freePort(t)
	rc := routingWith(t, []string{
		fmt.Sprintf(`{id: "110", number: "110", trunk: "sip:127.0.0.1:%d", names: {zh-CN: 110报警, en: Police 110}}`, linePort),
	}, "max_wait: 2m, overflow: flow, announce_first: 5m, ring_timeout: 8s, wrap_up: 1s")
	s := startServer(t, "", "--routing-config", rc)
	s.addAgents(t, "1001")
	line := startPhone(t, "line", "--number", "110", "--listen", fmt.Sprintf("127.0.0.1:%d", linePort),
		"--calls", "1", "--json", "--prompts-dir", "../prompts", "--tone-hz", "1100", "--detect-tone", detectAll)
	// The agent keys *1 once bridged (the 工号 announcement to the caller
	// takes about 6 s), talks with both for about 10 s, then hangs up: the
	// hand-over, the caller stays with 110.
	agent := agentPhone(t, s, "1001", "--talk", "20s", "--calls", "1", "--prompts-dir", "../prompts",
		"--tone-hz", "1900", "--detect-tone", detectAll,
		"--dtmf", "*1", "--dtmf-after", "9s", "--dtmf-gap", "300ms")
	time.Sleep(1500 * time.Millisecond) // registration

	r := s.call(t, "--from", "13800138041", "--dtmf", "0", "--dtmf-after", "2s", "--hangup-after", "40s",
		"--tone-hz", "1500", "--detect-tone", detectAll)
	if !r.heard("zh-CN/transferring-agent", "zh-CN/agent-number-is") {
		t.Errorf("caller heard %v; want an agent", r.PromptsHeard)
	}
	if r.EndedBy != "local" {
		t.Errorf("caller's call ended by %s (%v); want the caller's own hang-up, still connected to 110", r.EndedBy, r.Raw["error"])
	}
	ars, lrs := agent.reports(t), line.reports(t)
	if len(ars) != 1 || len(lrs) != 1 {
		t.Fatalf("agent reports %d, line reports %d:\n%s\n%s\n%s", len(ars), len(lrs), agent.out.String(), line.out.String(), s.Log())
	}
	a, l := ars[0], lrs[0]
	c := r.Raw
	t.Logf("tones (frames of 20 ms) caller %v, agent %v, 110 %v", c["tones_received"], a["tones_received"], l["tones_received"])
	if l["answered"] != true || l["to"] != "110" {
		t.Fatalf("the 110 line did not take a call for 110: %v", l)
	}
	if a["ended_by"] != "local" {
		t.Errorf("agent's call ended by %v; want the agent's own hang-up (hand-over)", a["ended_by"])
	}
	// Each hears the other two: at least 2 s of each other party's tone.
	const least = 100
	for _, x := range []struct {
		who  string
		m    map[string]any
		hear []string
	}{
		{"caller", c, []string{"1900", "1100"}},
		{"agent", a, []string{"1500", "1100"}},
		{"110", l, []string{"1500", "1900"}},
	} {
		for _, hz := range x.hear {
			if n := tones(x.m, hz); n < least {
				t.Errorf("%s heard %v frames of %s Hz; want at least %d", x.who, n, hz, least)
			}
		}
	}
	// Nobody's own tone comes back to them (each hears the others only).
	for who, x := range map[string]struct {
		m  map[string]any
		hz string
	}{"caller": {c, "1500"}, "agent": {a, "1900"}, "110": {l, "1100"}} {
		if n := tones(x.m, x.hz); n > 25 {
			t.Errorf("%s heard its own %s Hz in %v frames", who, x.hz, n)
		}
	}
	// Hand-over: after the agent left, caller and 110 still hear each
	// other (several seconds more of each other's tone than of the agent's).
	if d := tones(l, "1500") - tones(l, "1900"); d < 200 {
		t.Errorf("110 heard the caller only %v frames more than the agent: the caller did not stay with 110 after the agent left", d)
	}
	if d := tones(c, "1100") - tones(a, "1100"); d < 200 {
		t.Errorf("the caller heard 110 only %v frames more than the agent did: the caller did not stay with 110 after the agent left", d)
	}
	if !strings.Contains(s.Log(), "three-party call") || !strings.Contains(s.Log(), "agent left, caller stays with the emergency line") {
		t.Errorf("hotlined logged no three-party call and hand-over")
	}
	s.Stop()
	assertNoUnmaskedNumbers(t, []string{"13800138041"}, s.LogFile, s.Trace)
}
