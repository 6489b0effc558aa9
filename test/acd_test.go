package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// More of issue 4 over real SIP, whole server: queues with several agents,
// an agent who never answers, and a busy specialised line.

// addAgents creates available agents (id = extension) through hotlinectl.
func (s *server) addAgents(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		cmd := exec.Command(filepath.Join(bin, "hotlinectl"), "--server", "http://"+s.HTTP, "--token-file", filepath.Join(s.DataDir, "admin.token"),
			"agents", "add", id, "--name", "Agent "+id, "--extension", id, "--state", "available")
		cmd.Env = append(os.Environ(), "HOTLINE_AGENT_PASSWORD=pw-"+id+"-secret")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("agents add %s: %v\n%s", id, err, out)
		}
	}
}

// agentState returns an agent's presence and pause reason from the API.
func (s *server) agentState(t *testing.T, id string) (string, string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "hotlinectl"), "--server", "http://"+s.HTTP, "--token-file", filepath.Join(s.DataDir, "admin.token"),
		"agents", "list", "--json").Output()
	if err != nil {
		t.Fatalf("agents list: %v", err)
	}
	var l struct {
		Agents []struct {
			ID          string `json:"id"`
			Presence    string `json:"presence"`
			PauseReason string `json:"pause_reason"`
		} `json:"agents"`
	}
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatalf("agents list: %v: %s", err, out)
	}
	for _, a := range l.Agents {
		if a.ID == id {
			return a.Presence, a.PauseReason
		}
	}
	t.Fatalf("agent %s not listed: %s", id, out)
	return "", ""
}

func agentPhone(t *testing.T, s *server, id string, extra ...string) *phoneProc {
	args := append([]string{"agent", "--target", s.SIP, "--user", id, "--password", "pw-" + id + "-secret",
		"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--json"}, extra...)
	return startPhone(t, args...)
}

// TestThreeAgentsTenCallers: every one of 10 callers reaches one of 3
// agents; each hears an agent's number, audio flows both ways through the
// bridge, and the agents go through wrap-up back to available.
func TestThreeAgentsTenCallers(t *testing.T) {
	t.Parallel()
	rc := filepath.Join(t.TempDir(), "routing.yaml")
	os.WriteFile(rc, []byte("queues:\n  - {id: general, max_wait: 2m, overflow: flow, announce_first: 5m, ring_timeout: 8s, wrap_up: 1s}\n"+
		"  - {id: complaints}\n  - {id: suggestions}\n  - {id: followup}\n"), 0o600)
	s := startServer(t, "", "--routing-config", rc)
	s.addAgents(t, "1001", "1002", "1003")
	var phones []*phoneProc
	for _, id := range []string{"1001", "1002", "1003"} {
		phones = append(phones, agentPhone(t, s, id, "--talk", "8s"))
	}
	time.Sleep(1500 * time.Millisecond)

	results := make([]callResult, 10)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 300 * time.Millisecond)
			results[i] = s.call(t, "--from", fmt.Sprintf("1380013806%d", i), "--dtmf", "0", "--dtmf-after", "1s", "--hangup-after", "100s")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if !r.heard("zh-CN/transferring-agent", "zh-CN/agent-number-is", "zh-CN/agent-at-your-service") {
			t.Errorf("caller %d heard %v; want an agent's number", i, r.PromptsHeard)
		}
	}
	for _, p := range phones {
		p.cancel()
	}
	total := 0
	for i, p := range phones {
		reps := p.reports(t)
		for _, a := range reps {
			if a["answered"] == true {
				total++
				if num(a, "rtp_received") < 50 {
					t.Errorf("agent %d got no audio through the bridge: %v", i+1, a)
				}
			}
		}
		if len(reps) == 0 {
			t.Errorf("agent %d took no call: the strategy should spread 10 calls over 3 agents", i+1)
		}
	}
	if total != 10 {
		t.Errorf("agents answered %d calls, want 10", total)
	}
	for _, id := range []string{"1001", "1002", "1003"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			p, _ := s.agentState(t, id)
			if p == "available" {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("agent %s is %q after wrap-up, want available", id, p)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// TestAgentWhoNeverAnswers: agent 1001's phone rings and rings; the call
// goes back to its place and agent 1002 takes it; after 2 misses in a row
// 1001 is paused "no-answer".
func TestAgentWhoNeverAnswers(t *testing.T) {
	t.Parallel()
	rc := filepath.Join(t.TempDir(), "routing.yaml")
	os.WriteFile(rc, []byte("queues:\n  - {id: general, max_wait: 2m, overflow: flow, announce_first: 5m, ring_timeout: 3s, wrap_up: 500ms, max_misses: 2}\n"+
		"  - {id: complaints}\n  - {id: suggestions}\n  - {id: followup}\n"), 0o600)
	s := startServer(t, "", "--routing-config", rc)
	s.addAgents(t, "1001")
	agentPhone(t, s, "1001", "--no-answer")
	time.Sleep(time.Second)
	// Alone in the queue, 1001 is rung twice and misses both: paused.
	first := make(chan callResult, 1)
	go func() {
		first <- s.call(t, "--from", "13800138071", "--dtmf", "0", "--dtmf-after", "1s", "--hangup-after", "60s")
	}()
	deadline := time.Now().Add(45 * time.Second)
	for {
		p, reason := s.agentState(t, "1001")
		if p == "paused" {
			if !strings.Contains(reason, "no") {
				t.Errorf("1001 paused for %q, want no-answer", reason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("1001 never paused after missed calls (presence %q)", p)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Now 1002 logs in: the waiting caller, still at its place, reaches it.
	s.addAgents(t, "1002")
	agentPhone(t, s, "1002", "--talk", "8s")
	r := <-first
	if !r.heard("zh-CN/transferring-agent", "zh-CN/agent-number-is", "zh-CN/digit-1", "zh-CN/digit-0", "zh-CN/digit-0", "zh-CN/digit-2") {
		t.Errorf("the waiting caller heard %v; want agent 1002's number", r.PromptsHeard)
		for _, l := range strings.Split(s.Log(), "\n") {
			if strings.Contains(l, "routing") || strings.Contains(l, "leg") || strings.Contains(l, "regist") {
				t.Log(l)
			}
		}
	}
	if p, _ := s.agentState(t, "1001"); p != "paused" {
		t.Errorf("1001 is %q; a paused agent must stay paused", p)
	}
}

// TestBusyLineFallsBack: the 12315 line answers 486 Busy; the flow's
// fallback puts the caller in the 12345 queue.
func TestBusyLineFallsBack(t *testing.T) {
	t.Parallel()
	linePort := freePort(t)
	rc := routingWithLine(t, linePort, `queues:
  - {id: general, max_wait: 3s, overflow: flow, announce_first: 1m}
  - {id: complaints}
  - {id: suggestions}
  - {id: followup}
`)
	s := startServer(t, "", "--routing-config", rc)
	line := startPhone(t, "line", "--number", "12315", "--listen", fmt.Sprintf("127.0.0.1:%d", linePort), "--busy", "--json")
	time.Sleep(300 * time.Millisecond)
	r := s.call(t, "--from", "13800138072", "--dtmf", "4", "--dtmf-after", "2s", "--hangup-after", "20s")
	if !r.heard("zh-CN/transferring-12315", "zh-CN/line-unavailable", "zh-CN/transferring-agent") {
		t.Errorf("heard %v; want the 12315 attempt, \"line unavailable\", then the 12345 queue", r.PromptsHeard)
	}
	line.cancel()
}

// agentHeard returns the agent's number (工号) a caller heard: the digits
// announced after agent-number-is.
func (r callResult) agentHeard() string {
	var id strings.Builder
	in := false
	for _, k := range r.PromptsHeard {
		switch {
		case k == "zh-CN/agent-number-is":
			in = true
			id.Reset()
		case in && strings.HasPrefix(k, "zh-CN/digit-"):
			id.WriteString(strings.TrimPrefix(k, "zh-CN/digit-"))
		case in:
			return id.String()
		}
	}
	return id.String()
}

// TestStrategyOrder: callers reach agents in the queue strategy's order.
// Agents log in (logged-out -> available) at known, spaced times; callers
// come one at a time, each after the previous call ended, and each tells
// which agent it reached by the number (工号) it heard.
//   - longest-idle (the default): 1003, 1001, 1002 log in in that order: the
//     first three callers reach them in that order, the fourth the one whose
//     call ended first (1003).
//   - round-robin: the same log-ins, but the calls go by id: 1001, 1002,
//     1003, 1001.
//   - fewest-calls: 1001 alone takes two calls; then 1002 logs in and gets
//     the next two (fewer calls), although 1001 has been idle longer.
func TestStrategyOrder(t *testing.T) {
	t.Parallel()
	// Steps: "+ID" logs agent ID in; "ID" is a caller expected to reach ID.
	for _, tc := range []struct {
		strategy string
		steps    []string
	}{
		{"longest-idle", []string{"+1003", "+1001", "+1002", "1003", "1001", "1002", "1003"}},
		{"round-robin", []string{"+1003", "+1001", "+1002", "1001", "1002", "1003", "1001"}},
		{"fewest-calls", []string{"+1001", "1001", "1001", "+1002", "1002", "1002"}},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			t.Parallel()
			rc := filepath.Join(t.TempDir(), "routing.yaml")
			os.WriteFile(rc, []byte("queues:\n  - {id: general, strategy: "+tc.strategy+
				", max_wait: 2m, overflow: flow, announce_first: 5m, ring_timeout: 8s, wrap_up: 500ms}\n"+
				"  - {id: complaints}\n  - {id: suggestions}\n  - {id: followup}\n  - {id: supervisor}\n"), 0o600)
			s := startServer(t, "", "--routing-config", rc)
			phones := map[string]*phoneProc{}
			for _, st := range tc.steps {
				if id, ok := strings.CutPrefix(st, "+"); ok {
					s.ctl(t, []string{"HOTLINE_AGENT_PASSWORD=pw-" + id + "-secret"}, "agents", "add", id, "--name", "Agent "+id, "--extension", id, "--state", "logged-out")
					phones[id] = agentPhone(t, s, id)
				}
			}
			time.Sleep(time.Second) // registrations
			var got, want []string
			answers := map[string]int{}
			for i, st := range tc.steps {
				if id, ok := strings.CutPrefix(st, "+"); ok {
					s.ctl(t, nil, "agents", "state", id, "available")
					time.Sleep(1100 * time.Millisecond) // idle times a second apart; the router's refresh
					continue
				}
				r := s.call(t, "--from", fmt.Sprintf("138001380%02d", 80+i), "--dtmf", "0", "--dtmf-after", "1s", "--hangup-after", "11s")
				got, want = append(got, r.agentHeard()), append(want, st)
				answers[st]++
				time.Sleep(1500 * time.Millisecond) // wrap-up (500 ms) and the router's refresh
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: callers reached agents %v, want %v", tc.strategy, got, want)
			}
			// Each phone answered as many calls as the callers say.
			for id, p := range phones {
				p.cancel()
				answered := 0
				for _, rep := range p.reports(t) {
					if rep["answered"] == true {
						answered++
					}
				}
				if answered != answers[id] {
					t.Errorf("%s: agent %s's phone answered %d calls, want %d", tc.strategy, id, answered, answers[id])
				}
			}
		})
	}
}
