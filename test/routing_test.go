package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cq12345/hotline/sqldb"
)

// Issue 4 end to end: real SIP on both sides. A callsim agent registers
// with hotlined and takes a caller who pressed 0; a caller who chose 12315
// reaches a callsim line acting as the 12315 line.

// phoneProc is a callsim agent or line running in the background; it prints
// one JSON object per call.
type phoneProc struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	cancel context.CancelFunc
	done   chan struct{}
}

func startPhone(t *testing.T, args ...string) *phoneProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	p := &phoneProc{cancel: cancel, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, filepath.Join(bin, "callsim"), args...)
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// reports waits for the phone to exit (after --calls N) and decodes its
// per-call JSON lines.
func (p *phoneProc) reports(t *testing.T) []map[string]any {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("phone did not finish")
	}
	var rs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(p.out.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			rs = append(rs, m)
		}
	}
	return rs
}

func num(m map[string]any, k string) float64 {
	f, _ := m[k].(float64)
	return f
}

func TestAgentTakesCallerWhoPressed0(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	ctl := func(env []string, args ...string) {
		t.Helper()
		all := append([]string{"--server", "http://" + s.HTTP, "--token-file", filepath.Join(s.DataDir, "admin.token")}, args...)
		cmd := exec.Command(filepath.Join(bin, "hotlinectl"), all...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("hotlinectl %v: %v\n%s", args, err, out)
		}
	}
	ctl([]string{"HOTLINE_AGENT_PASSWORD=s3cret-1001"}, "agents", "add", "1001", "--name", "Agent One", "--extension", "1001", "--state", "available")

	// A wrong password is refused: callsim agent exits with an error.
	bad := exec.Command(filepath.Join(bin, "callsim"), "agent", "--target", s.SIP, "--user", "1001",
		"--password", "wrong", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--calls", "1")
	if out, err := bad.CombinedOutput(); err == nil {
		t.Errorf("an agent phone registered with a wrong password: %s", out)
	}

	agent := startPhone(t, "agent", "--target", s.SIP, "--user", "1001", "--password", "s3cret-1001",
		"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--talk", "12s", "--calls", "1", "--json",
		"--prompts-dir", "../prompts",
		// Article 26: the agent keys *7 once bridged (the 工号 announcement
		// takes about 6 s): the plane catches it as a harassment flag and
		// passes nothing to the caller.
		"--dtmf", "*7", "--dtmf-after", "8s", "--dtmf-gap", "400ms")
	// The caller hears the agent's number (工号, about 6 s) before the bridge
	// comes up: the agent talks 12 s, so about 6 s of it are bridged.
	time.Sleep(time.Second) // registration

	// 0 during the greeting: the language node sends 0 to a person.
	r := s.call(t, "--from", "13800138031", "--dtmf", "0", "--dtmf-after", "2s", "--hangup-after", "60s")
	if !r.heard("zh-CN/greeting", "zh-CN/transferring-agent", "zh-CN/agent-number-is", "zh-CN/digit-1", "zh-CN/digit-0", "zh-CN/digit-0", "zh-CN/digit-1") {
		t.Errorf("caller heard %v; want transferring, then the agent's number 1001", r.PromptsHeard)
	}
	// After the agent hangs up the caller is back in the flow: case
	// number, then the survey.
	if !r.heard("zh-CN/agent-number-is", "zh-CN/your-case-number-is", "zh-CN/survey") {
		t.Errorf("caller heard %v; want the case number and the survey after the agent leg", r.PromptsHeard)
	}
	reps := agent.reports(t)
	if len(reps) != 1 {
		t.Fatalf("agent reports: %s", agent.out.String())
	}
	a := reps[0]
	t.Logf("agent report: %v", a)
	if a["answered"] != true || num(a, "rtp_received") < 100 {
		t.Errorf("the agent did not get the caller's audio through the bridge: %v", a)
	}
	// While the caller hears the 工号, the agent hears the whisper, not
	// silence.
	if heard, _ := a["prompts_heard"].([]any); !slices.Contains(heard, any("zh-CN/agent-whisper")) {
		t.Errorf("the agent heard %v; want the whisper before the bridge", heard)
	}
	if r.RTPReceived < 300 {
		t.Errorf("caller received only %d packets", r.RTPReceived)
	}
	if n, _ := r.Raw["dtmf_received"].(float64); n != 0 {
		t.Errorf("the caller received %v telephone-event packets: the agent's *7 must not reach the caller", n)
	}
	s.Stop()
	assertNoUnmaskedNumbers(t, []string{"13800138031"}, s.LogFile, s.Trace)
	// The flag is in the article-26 store, on the caller's call.
	db, err := sqldb.Open(context.Background(), filepath.Join(s.DataDir, "hotline.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var flags int
	if err := db.QueryRow(`SELECT COUNT(*) FROM abuse_events WHERE kind = 'flag' AND call_id <> ''`).Scan(&flags); err != nil {
		t.Fatal(err)
	}
	if flags != 1 {
		t.Errorf("%d article-26 flags recorded, want 1 (the agent's *7)", flags)
	}
}

// shortQueues: queues that overflow after 3 s and announce nothing, for
// tests about lines rather than agents.
const shortQueues = `queues:
  - {id: general, max_wait: 3s, overflow: flow, announce_first: 1m}
  - {id: complaints, max_wait: 3s, overflow: flow, announce_first: 1m}
  - {id: suggestions, max_wait: 3s, overflow: flow, announce_first: 1m}
  - {id: followup, max_wait: 3s, overflow: flow, announce_first: 1m}
`

func TestCallerReaches12315Line(t *testing.T) {
	t.Parallel()
	linePort := freePort(t)
	cfg := routingWithLine(t, linePort, shortQueues)
	s := startServer(t, "", "--routing-config", cfg)
	line := startPhone(t, "line", "--number", "12315", "--listen", fmt.Sprintf("127.0.0.1:%d", linePort),
		"--talk", "4s", "--calls", "1", "--json", "--prompts-dir", "../prompts")
	time.Sleep(300 * time.Millisecond)

	r := s.call(t, "--from", "13800138032", "--dtmf", "4", "--dtmf-after", "2s", "--hangup-after", "40s")
	if !r.heard("zh-CN/greeting", "zh-CN/transferring-12315") {
		t.Errorf("caller heard %v; want transferring to 12315", r.PromptsHeard)
	}
	reps := line.reports(t)
	if len(reps) != 1 {
		t.Fatalf("line reports: %s", line.out.String())
	}
	l := reps[0]
	t.Logf("line report: %v", l)
	if l["answered"] != true || num(l, "rtp_received") < 100 {
		t.Errorf("the 12315 line did not get the caller's audio: %v", l)
	}
	if r.RTPReceived < 250 {
		t.Errorf("caller received only %d packets", r.RTPReceived)
	}
	s.Stop()
	// Privacy: the line saw the hotline's number, not the caller's.
	if strings.Contains(line.out.String(), "13800138032") {
		t.Errorf("the caller's number reached the line: %s", line.out.String())
	}
	assertNoUnmaskedNumbers(t, []string{"13800138032"}, s.LogFile, s.Trace)
}

// TestTransferEarlyMedia: a line that rings with early media (183 Session
// Progress with SDP and its own tone, as a carrier's ringback or 彩铃 does)
// is heard by the caller instead of hotline's ringback; once it answers,
// caller and line talk through the bridge as usual.
func TestTransferEarlyMedia(t *testing.T) {
	t.Parallel()
	linePort := freePort(t)
	cfg := routingWithLine(t, linePort, shortQueues)
	s := startServer(t, "", "--routing-config", cfg)
	line := startPhone(t, "line", "--number", "12315", "--listen", fmt.Sprintf("127.0.0.1:%d", linePort),
		"--answer-after", "3s", "--early-media-hz", "600", "--tone-hz", "1100", "--detect-tone", "450,600",
		"--talk", "4s", "--calls", "1", "--json")
	time.Sleep(300 * time.Millisecond)

	r := s.call(t, "--from", "13800138033", "--dtmf", "4", "--dtmf-after", "2s", "--hangup-after", "40s",
		"--detect-tone", "450,600,1100")
	t.Logf("caller: tones %v, longest runs %v", r.TonesReceived, r.TonesLongestRun)
	if !r.heard("zh-CN/greeting", "zh-CN/transferring-12315") {
		t.Errorf("caller heard %v; want transferring to 12315", r.PromptsHeard)
	}
	// 3 s of early media is 150 frames of 600 Hz in a row.
	if n := r.TonesLongestRun["600"]; n < 100 {
		t.Errorf("the caller heard %d frames of the line's early media in a row, want about 150", n)
	}
	// The early media came at once: hotline's ringback was cut short.
	if n := r.TonesLongestRun["450"]; n >= 30 {
		t.Errorf("the caller heard %d frames of ringback in a row despite the early media", n)
	}
	if n := r.TonesReceived["1100"]; n < 100 {
		t.Errorf("the caller heard %d frames of the line's tone after the answer", n)
	}
	reps := line.reports(t)
	if len(reps) != 1 {
		t.Fatalf("line reports: %s", line.out.String())
	}
	l := reps[0]
	if l["answered"] != true || num(l, "rtp_received") < 100 {
		t.Errorf("the 12315 line did not get the caller's audio: %v", l)
	}
	// The relay is one way: the ringback never reached the line.
	if run, _ := l["tones_longest_run"].(map[string]any); run["450"] != nil && run["450"].(float64) >= 30 {
		t.Errorf("the line heard the ringback: %v", l["tones_longest_run"])
	}
	s.Stop()
	assertNoUnmaskedNumbers(t, []string{"13800138033"}, s.LogFile, s.Trace)
	if !strings.Contains(s.Log(), "relaying early media") {
		t.Errorf("hotlined did not log the early media relay")
	}
}

// TestTrunkDigestAuth: a line behind a trunk that authenticates (407
// Proxy Authentication Required, as carriers' trunks do) is reached with
// --trunk-user/--trunk-password; with a wrong password the transfer fails
// as rejected and the caller goes on to the fallback. The password is
// never logged.
func TestTrunkDigestAuth(t *testing.T) {
	t.Parallel()
	linePort := freePort(t)
	cfg := routingWithLine(t, linePort, shortQueues)
	line := startPhone(t, "line", "--number", "12315", "--listen", fmt.Sprintf("127.0.0.1:%d", linePort),
		"--auth-user", "cq12345", "--auth-password", "trunk-s3cret", "--talk", "3s", "--calls", "1", "--json")
	time.Sleep(300 * time.Millisecond)

	for _, tc := range []struct {
		name, password string
		reached        bool
		wantLog        string // a line hotlined logs about it
	}{
		{"no credentials", "", false, "the trunk asks for digest authentication"},
		{"wrong password", "not-the-s3cret", false, "the trunk refused the trunk credentials"},
		{"right password", "trunk-s3cret", true, ""},
	} {
		args := []string{"--routing-config", cfg}
		if tc.password != "" {
			args = append(args, "--trunk-user", "cq12345", "--trunk-password", tc.password)
		}
		s := startServer(t, "", args...)
		r := s.call(t, "--from", "13800138034", "--dtmf", "4", "--dtmf-after", "2s", "--hangup-after", "12s")
		s.Stop()
		log := s.Log()
		if !r.heard("zh-CN/transferring-12315") {
			t.Errorf("%s: caller heard %v; want transferring to 12315", tc.name, r.PromptsHeard)
		}
		if tc.password != "" && strings.Contains(log, tc.password) {
			t.Errorf("%s: the trunk password is in hotlined's log", tc.name)
		}
		if tc.wantLog != "" && !strings.Contains(log, tc.wantLog) {
			t.Errorf("%s: hotlined did not log %q:\n%s", tc.name, tc.wantLog, log)
		}
		if tc.reached && strings.Contains(log, "the trunk refused") {
			t.Errorf("%s: hotlined logged a refusal:\n%s", tc.name, log)
		}
		if !tc.reached && !r.heard("zh-CN/line-unavailable", "zh-CN/transferring-agent") {
			// The 12315 destination's fallback is the general queue.
			t.Errorf("%s: caller heard %v; want the fallback to the agents' queue", tc.name, r.PromptsHeard)
		}
	}
	reps := line.reports(t)
	if len(reps) != 1 || reps[0]["answered"] != true || num(reps[0], "rtp_received") < 50 {
		t.Fatalf("line reports (want one answered call, the authenticated one): %s", line.out.String())
	}
}

// routingWithLine writes a routing file in which the 12315 destination's
// trunk is a callsim line on 127.0.0.1:linePort (the other destinations as
// seeded, without trunks), followed by queues (a "queues:" YAML block),
// and returns its path.
func routingWithLine(t *testing.T, linePort int, queues string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "routing.yaml")
	err := os.WriteFile(f, []byte(fmt.Sprintf(`destinations:
  - {id: "12315", number: "12315", trunk: "sip:127.0.0.1:%d", fallback: general, names: {zh-CN: 12315, en: 12315}}
  - {id: "12333", number: "12333", fallback: general, names: {zh-CN: 12333, en: 12333}}
  - {id: edu-bureau, number: "02363862437", calendar: edu-bureau, fallback: complaints, names: {zh-CN: 教育局, en: Education bureau}}
  - {id: sichuan-12345, number: "12345", fallback: general, names: {zh-CN: 四川12345, en: Sichuan 12345}}
`, linePort)+queues), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
