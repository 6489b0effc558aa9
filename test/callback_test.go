package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 4, missed calls: a caller who hangs up while waiting in the queue
// (no agent available) gets a callback task linked to the call's case; an
// agent takes it; hotline rings the agent's phone, then calls the citizen
// through the callback trunk (a callsim line standing in for the citizen's
// phone) and bridges them.

// ctl runs hotlinectl as admin against s and returns its standard output.
func (s *server) ctl(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	all := append([]string{"--server", "http://" + s.HTTP, "--token-file", filepath.Join(s.DataDir, "admin.token")}, args...)
	cmd := exec.Command(filepath.Join(bin, "hotlinectl"), all...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hotlinectl %v: %v\n%s%s", args, err, out, stderr.String())
	}
	return out
}

type callbackTask struct {
	ID       string `json:"id"`
	Case     string `json:"case"`
	CallID   string `json:"call_id"`
	Queue    string `json:"queue"`
	Number   string `json:"number"` // masked
	State    string `json:"state"`
	Agent    string `json:"agent"`
	Attempts int    `json:"attempts"`
	Reason   string `json:"reason"`
}

func (s *server) callbacks(t *testing.T) []callbackTask {
	t.Helper()
	var l struct {
		Callbacks []callbackTask `json:"callbacks"`
	}
	out := s.ctl(t, nil, "--json", "callbacks", "list")
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatalf("callbacks list: %v: %s", err, out)
	}
	return l.Callbacks
}

// waitCallback polls the callback list until one task satisfies ok.
func (s *server) waitCallback(t *testing.T, within time.Duration, ok func(callbackTask) bool) callbackTask {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		l := s.callbacks(t)
		for _, cb := range l {
			if ok(cb) {
				return cb
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no such callback task after %v: %+v", within, l)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestCallbackAfterAbandon(t *testing.T) {
	t.Parallel()
	const citizen = "13800138051"
	citizenPort := freePort(t)
	rc := routingWith(t, nil, "max_wait: 2m, overflow: flow, announce_first: 5m, ring_timeout: 8s, wrap_up: 1s")
	b, _ := os.ReadFile(rc)
	os.WriteFile(rc, append(b, fmt.Sprintf("callback_trunk: sip:127.0.0.1:%d\n", citizenPort)...), 0o600)
	s := startServer(t, "", "--routing-config", rc)
	// Agent 1001 exists and its phone is registered, but it is logged out:
	// nobody takes the caller.
	s.ctl(t, []string{"HOTLINE_AGENT_PASSWORD=pw-1001-secret"}, "agents", "add", "1001", "--name", "Agent 1001", "--extension", "1001", "--state", "logged-out")
	agent := agentPhone(t, s, "1001", "--talk", "12s", "--calls", "1", "--prompts-dir", "../prompts",
		"--tone-hz", "1900", "--detect-tone", "450,1500,1900")
	// The citizen's phone, reached through the callback trunk.
	// It rings 2 s before answering: the agent hears the ringback meanwhile.
	phone := startPhone(t, "line", "--number", citizen, "--listen", fmt.Sprintf("127.0.0.1:%d", citizenPort),
		"--answer-after", "2s", "--calls", "1", "--json", "--prompts-dir", "../prompts", "--tone-hz", "1500", "--detect-tone", "1500,1900")
	time.Sleep(time.Second) // registration

	// The caller presses 0, waits in the queue and gives up after 10 s.
	r := s.call(t, "--from", citizen, "--dtmf", "0", "--dtmf-after", "2s", "--hangup-after", "10s")
	if !r.heard("zh-CN/transferring-agent") || r.heard("zh-CN/agent-number-is") {
		t.Errorf("caller heard %v; want the queue and no agent", r.PromptsHeard)
	}
	cb := s.waitCallback(t, 10*time.Second, func(cb callbackTask) bool { return cb.State == "open" })
	t.Logf("callback task: %+v", cb)
	if cb.Case == "" || cb.Queue != "general" || cb.Number != "138****8051" {
		t.Errorf("callback task %+v: want the call's case, queue general, the masked number", cb)
	}
	// The task is linked to the case the abandoned call opened.
	var c struct {
		Number  string `json:"number"`
		CallID  string `json:"call_id"`
		Outcome string `json:"outcome"`
		Events  []struct {
			Kind    string `json:"kind"`
			Queue   string `json:"queue"`
			Agent   string `json:"agent"`
			Outcome string `json:"outcome"`
		} `json:"events"`
	}
	if out := s.ctl(t, nil, "--json", "cases", "show", cb.Case); json.Unmarshal(out, &c) != nil || c.Number != cb.Case {
		t.Fatalf("the callback's case %s: %s", cb.Case, out)
	}
	t.Logf("case %s: outcome %s, events %+v", c.Number, c.Outcome, c.Events)
	if c.Outcome != "abandoned" || c.CallID != cb.CallID {
		t.Errorf("case outcome %q call %q, want abandoned, the task's call %q", c.Outcome, c.CallID, cb.CallID)
	}

	// The agent logs in and takes the task: the agent's phone rings first,
	// then the citizen's, and they talk.
	s.ctl(t, nil, "agents", "state", "1001", "available")
	s.ctl(t, nil, "callbacks", "take", cb.ID, "--agent", "1001")
	ars, prs := agent.reports(t), phone.reports(t)
	if len(ars) != 1 || len(prs) != 1 {
		t.Fatalf("agent reports %d, citizen reports %d:\n%s\n%s", len(ars), len(prs), agent.out.String(), phone.out.String())
	}
	a, p := ars[0], prs[0]
	t.Logf("agent: answered %v heard %v tones %v; citizen: answered %v to %v tones %v",
		a["answered"], a["prompts_heard"], a["tones_received"], p["answered"], p["to"], p["tones_received"])
	if a["answered"] != true || p["answered"] != true {
		t.Fatalf("agent answered %v, citizen answered %v", a["answered"], p["answered"])
	}
	if heard, _ := a["prompts_heard"].([]any); len(heard) == 0 || heard[0] != "zh-CN/callback-connecting" {
		t.Errorf("the agent heard %v; want callback-connecting first", a["prompts_heard"])
	}
	// Audio both ways: at least 2 s of the other's tone, none of one's own.
	if n := tones(a, "1500"); n < 100 {
		t.Errorf("the agent heard %v frames of the citizen's tone", n)
	}
	if n := tones(p, "1900"); n < 100 {
		t.Errorf("the citizen heard %v frames of the agent's tone", n)
	}
	// While the citizen's phone rang, the agent heard the ringback (one
	// cadence opens with 50 frames of 450 Hz in a row).
	if run, _ := a["tones_longest_run"].(map[string]any); run["450"] == nil || run["450"].(float64) < 30 {
		t.Errorf("the agent heard no ringback while the citizen's phone rang: longest 450 Hz runs %v", a["tones_longest_run"])
	}
	if tones(a, "1900") > 25 || tones(p, "1500") > 25 {
		t.Errorf("own tone came back: agent %v, citizen %v", tones(a, "1900"), tones(p, "1500"))
	}
	done := s.waitCallback(t, 15*time.Second, func(x callbackTask) bool { return x.ID == cb.ID && x.State != "taken" && x.State != "open" })
	if done.State != "done" || done.Agent != "1001" || done.Case != cb.Case {
		t.Errorf("callback after the call: %+v; want done by 1001 on case %s", done, cb.Case)
	}
	// The citizen's phone saw the hotline's number, not its own.
	if strings.Contains(phone.out.String(), citizen) || strings.Contains(agent.out.String(), citizen) {
		t.Errorf("an unmasked number in the phones' reports")
	}
	// The case records the callback: a routed event naming the agent.
	var after struct {
		Agent   string `json:"agent"`
		Outcome string `json:"outcome"`
		Events  []struct {
			Kind    string `json:"kind"`
			Queue   string `json:"queue"`
			Agent   string `json:"agent"`
			Account string `json:"account"`
		} `json:"events"`
	}
	out := s.ctl(t, nil, "--json", "cases", "show", cb.Case)
	if err := json.Unmarshal(out, &after); err != nil || len(after.Events) == 0 {
		t.Fatalf("case after the callback: %v: %s", err, out)
	}
	last := after.Events[len(after.Events)-1]
	if last.Kind != "routed" || last.Agent != "1001" || last.Account != "callback "+cb.ID || after.Agent != "1001" || after.Outcome != "abandoned" {
		t.Errorf("case after the callback: agent %q outcome %q last event %+v; want routed to 1001 by callback %s, outcome still abandoned", after.Agent, after.Outcome, last, cb.ID)
	}
	s.Stop()
	assertNoUnmaskedNumbers(t, []string{citizen}, s.LogFile, s.Trace)
}
