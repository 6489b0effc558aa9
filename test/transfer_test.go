package test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAgentDesktopTransfersCaller: a caller talking with agent 1001 is sent
// on to the 12315 line from the agent's desktop (the API: hotlinectl calls
// transfer). The agent's phone is hung up, the caller reaches the callsim
// line acting as 12315, audio flows; a transfer to an unconfigured number
// is refused.
func TestAgentDesktopTransfersCaller(t *testing.T) {
	t.Parallel()
	linePort := freePort(t)
	cfg := routingWithLine(t, linePort, `queues:
  - {id: general, max_wait: 1m, overflow: flow, announce_first: 5m, ring_timeout: 8s, wrap_up: 1s}
  - {id: complaints}
  - {id: suggestions}
  - {id: followup}
`)
	s := startServer(t, "", "--routing-config", cfg)
	s.addAgents(t, "1001")
	agent := agentPhone(t, s, "1001", "--talk", "60s", "--calls", "1")
	line := startPhone(t, "line", "--number", "12315", "--listen", fmt.Sprintf("127.0.0.1:%d", linePort),
		"--talk", "4s", "--calls", "1", "--json")
	time.Sleep(1500 * time.Millisecond) // registration

	// The agent's desktop: the call id comes with the "connected" event.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	events, err := s.adminClient(t).AgentEvents(ctx, "1001")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan callResult, 1)
	go func() {
		done <- s.call(t, "--from", "13800138041", "--dtmf", "0", "--dtmf-after", "2s", "--hangup-after", "35s")
	}()
	var callID string
	for callID == "" {
		select {
		case ev := <-events:
			if ev.Kind == "connected" {
				callID = ev.Call
			}
		case <-ctx.Done():
			t.Fatal("the agent never got the call")
		}
	}
	time.Sleep(8 * time.Second) // the 工号 announcement, then a little talk
	ctl := func(args ...string) (string, error) {
		all := append([]string{"--server", "http://" + s.HTTP, "--token-file", filepath.Join(s.DataDir, "admin.token")}, args...)
		out, err := exec.Command(filepath.Join(bin, "hotlinectl"), all...).CombinedOutput()
		return string(out), err
	}
	if out, err := ctl("calls", "transfer", callID, "0085212345678"); err == nil || !strings.Contains(out, "toll-fraud") {
		t.Errorf("transfer to an unconfigured number: %v %s", err, out)
	}
	if out, err := ctl("calls", "transfer", callID, "12315"); err != nil {
		t.Fatalf("transfer: %v %s", err, out)
	}
	r := <-done
	reps := line.reports(t)
	if len(reps) != 1 || reps[0]["answered"] != true || num(reps[0], "rtp_received") < 100 {
		t.Fatalf("the 12315 line did not get the caller: %s", line.out.String())
	}
	areps := agent.reports(t)
	if len(areps) != 1 || areps[0]["ended_by"] != "remote" {
		t.Errorf("the agent's phone was not hung up by hotline: %s", agent.out.String())
	}
	if !r.heard("zh-CN/agent-number-is") {
		t.Errorf("caller heard %v", r.PromptsHeard)
	}
	s.Stop()
	if strings.Contains(line.out.String(), "13800138041") {
		t.Errorf("the caller's number reached the line: %s", line.out.String())
	}
	assertNoUnmaskedNumbers(t, []string{"13800138041"}, s.LogFile, s.Trace)
	if !strings.Contains(s.Log(), "refused: not a configured destination") {
		t.Error("the refused transfer was not logged")
	}
}
