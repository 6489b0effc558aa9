package test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAbuseLadder walks article 26 over SIP with a low-threshold policy:
// 3 calls in an hour warn (the warning plays, then the flow goes on); 3
// more restrict; 3 more ask for a block that a supervisor confirms; the
// blocked caller hears the notice (why, how long, appeal, 110/119/120) and
// the call ends; the supervisor lifts the block and the next call is
// ordinary. hotlined restarts twice on the way: counters and decisions
// survive.
func TestAbuseLadder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy := []string{"--abuse-policy", "testdata/abuse-policy.yaml"}
	s := startServer(t, dir, policy...)
	keepLogs(t, s)
	const caller = "13700137001"
	ctl := func(token string, args ...string) string {
		t.Helper()
		all := append([]string{"--server", "http://" + s.HTTP}, args...)
		if token == "" {
			all = append([]string{"--token-file", filepath.Join(dir, "admin.token")}, all...)
		} else {
			all = append([]string{"--token", token}, all...)
		}
		cmd := exec.Command(filepath.Join(bin, "hotlinectl"), all...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("hotlinectl %v: %v\n%s%s", args, err, out, stderr.String())
		}
		return string(out)
	}
	short := func(n int, want ...string) {
		t.Helper()
		r := s.call(t, "--from", caller, "--hangup-after", "2500ms")
		if !r.Answered || !r.heard(want...) {
			t.Fatalf("call %d: heard %v, want %v first", n, r.PromptsHeard, want)
		}
		if len(r.PromptsHeard) > 0 && r.PromptsHeard[0] != want[0] {
			t.Fatalf("call %d: first prompt %s, want %s", n, r.PromptsHeard[0], want[0])
		}
	}

	short(1, "zh-CN/greeting")
	short(2, "zh-CN/greeting")
	// Restart: the two calls still count.
	s.Stop()
	s = startServer(t, dir, policy...)
	keepLogs(t, s)
	// Third call: over the threshold, the warning, then the flow goes on.
	r := s.call(t, "--from", caller, "--hangup-after", "32s")
	if !r.heard("zh-CN/abuse-warning", "zh-CN/greeting") || r.PromptsHeard[0] != "zh-CN/abuse-warning" {
		t.Fatalf("call 3: heard %v, want the warning then the greeting", r.PromptsHeard)
	}
	short(4, "zh-CN/abuse-warning")
	short(5, "zh-CN/abuse-warning")
	short(6, "zh-CN/abuse-restricted") // 3 more after the warning
	short(7, "zh-CN/abuse-restricted")
	short(8, "zh-CN/abuse-restricted")
	short(9, "zh-CN/abuse-restricted") // a block is asked for: restricted until confirmed

	// The supervisor's queue has the pending block.
	sup := strings.TrimSpace(ctl("", "tokens", "create", "sup1", "--role", "supervisor"))
	var q struct {
		Decisions []struct {
			ID, Status, Caller string
			Measure            string
		}
	}
	if err := json.Unmarshal([]byte(ctl(sup, "--json", "abuse", "list", "--queue")), &q); err != nil {
		t.Fatal(err)
	}
	if len(q.Decisions) != 1 || q.Decisions[0].Measure != "blocked" || q.Decisions[0].Status != "pending" || q.Decisions[0].Caller != "137****7001" {
		t.Fatalf("queue: %+v", q.Decisions)
	}
	id := q.Decisions[0].ID
	show := ctl(sup, "abuse", "show", id)
	for _, w := range []string{"1小时内拨打了 3 次", "3 calls within one hour", "one step up", "待主管确认"} {
		if !strings.Contains(show, w) {
			t.Errorf("abuse show lacks %q:\n%s", w, show)
		}
	}
	ctl(sup, "abuse", "confirm", id, "--reason", "9 calls in an hour, no request")

	// Restart: the confirmed block holds.
	s.Stop()
	s = startServer(t, dir, policy...)
	keepLogs(t, s)
	r = s.call(t, "--from", caller, "--hangup-after", "0")
	if !r.heard("zh-CN/abuse-blocked", "zh-CN/abuse-blocked-for", "zh-CN/digit-2", "zh-CN/digit-4", "zh-CN/abuse-hours",
		"zh-CN/abuse-appeal", "zh-CN/emergency-notice") || r.heard("zh-CN/greeting") {
		t.Fatalf("blocked call: heard %v", r.PromptsHeard)
	}
	if r.EndedBy != "remote" {
		t.Fatalf("blocked call ended by %q, want remote (hotlined hangs up after the notice)", r.EndedBy)
	}

	// Evidence pack (CSV) and the lift.
	csv := ctl(sup, "abuse", "evidence", id, "--format", "csv", "--reason", "review before referral")
	if n := strings.Count(csv, "\ncall,"); n != 10 {
		t.Errorf("evidence has %d calls, want 10:\n%s", n, csv)
	}
	if !strings.Contains(csv, "refused_abusive") {
		t.Errorf("evidence lacks the refused call:\n%s", csv)
	}
	ctl(sup, "abuse", "lift", id, "--reason", "appeal accepted by phone")
	short(11, "zh-CN/greeting")
	if strings.Contains(ctl(sup, "abuse", "list", "--queue"), id) {
		t.Errorf("lifted decision still in the queue")
	}
	s.Stop()
	assertNoUnmaskedNumbers(t, []string{caller}, s.LogFile, s.Trace)
}
