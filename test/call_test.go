package test

import (
	"time"

	"github.com/cq12345/hotline/cases"
	"os"
	"path/filepath"
	"testing"
)

// The e2e tests below are the issue-2 call path: callsim dials hotlined
// over loopback, hears the greeting and the main menu (recognised by exact
// audio match), presses a digit and hears what the flow does next.

func TestMenuDigitRFC4733(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	r := s.call(t, "--from", "13800138001", "--dtmf", "1", "--dtmf-mode", "rfc4733",
		"--dtmf-on", "zh-CN/main-menu", "--dtmf-after", "1500ms", "--hangup-after", "24s")
	checkDigitActedOn(t, r)
	s.Stop()
	assertNoUnmaskedNumbers(t, []string{"13800138001"}, s.LogFile, s.Trace)
}

func TestMenuDigitSIPInfo(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	r := s.call(t, "--from", "13800138002", "--dtmf", "1", "--dtmf-mode", "info",
		"--dtmf-on", "zh-CN/main-menu", "--dtmf-after", "1500ms", "--hangup-after", "24s")
	checkDigitActedOn(t, r)
	s.Stop()
	assertNoUnmaskedNumbers(t, []string{"13800138002"}, s.LogFile, s.Trace)
}

// checkDigitActedOn: key 1 in the main menu (consultation/help) barges into
// the menu prompt and leads to "transferring you to an agent" (the caller
// then waits in the queue; callsim hangs up).
func checkDigitActedOn(t *testing.T, r callResult) {
	t.Helper()
	if r.SIPStatus != 200 || !r.Answered || r.Codec != "PCMA" {
		t.Fatalf("call not answered with PCMA: %+v", r)
	}
	if !r.heard("zh-CN/greeting", "zh-CN/emergency-notice", "zh-CN/main-menu", "zh-CN/transferring-agent") {
		t.Errorf("prompts heard %v; want greeting, emergency notice, main menu, then transferring-agent", r.PromptsHeard)
	}
	if r.Interarrival.P99 > 40 || r.Interarrival.P99 < 10 {
		t.Errorf("interarrival p99 %.1f ms is off the 20 ms pacing", r.Interarrival.P99)
	}
}

func TestCallerHangsUp(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	r := s.call(t, "--from", "13800138003", "--hangup-after", "3s")
	if !r.Answered || r.EndedBy != "local" || !r.heard("zh-CN/greeting") {
		t.Fatalf("want an answered call that we hung up after the greeting started: %+v", r)
	}
	if r.RTPReceived < 100 {
		t.Errorf("only %d RTP packets in 3 s", r.RTPReceived)
	}
}

func TestUnknownNumberIs404(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	r := s.call(t, "--to", "12346", "--hangup-after", "1s")
	if r.SIPStatus != 404 || r.Answered {
		t.Fatalf("want 404 for 12346: %+v", r)
	}
}

func TestDialledForms(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	for _, to := range []string{"02312345", "+862312345", "862312345", "023-12345"} {
		r := s.call(t, "--to", to, "--hangup-after", "500ms")
		if r.SIPStatus != 200 {
			t.Errorf("dialled %s: status %d, want 200", to, r.SIPStatus)
		}
	}
}

func TestLateOfferAndTCP(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	r := s.call(t, "--no-sdp", "--transport", "tcp", "--codec", "PCMU", "--hangup-after", "9s")
	if !r.Answered || r.Codec != "PCMU" || !r.heard("zh-CN/greeting") {
		t.Fatalf("late offer over TCP with PCMU: %+v", r)
	}
}

// TestMain leaves nothing behind; the data folder of each server is a
// t.TempDir. This helper keeps the logs of a failed run for CI.
func keepLogs(t *testing.T, s *server) {
	t.Cleanup(func() {
		if t.Failed() {
			dst := filepath.Join(os.TempDir(), "hotline-e2e-logs")
			os.MkdirAll(dst, 0o755)
			b, _ := os.ReadFile(s.LogFile)
			os.WriteFile(filepath.Join(dst, t.Name()+".log"), b, 0o644)
		}
	})
}

// TestTypeAheadDuringGreeting: a caller who knows the menu presses 1 during
// the greeting; the greeting stops at once (barge-in on the first RFC 4733
// packet) and the key goes straight to the main menu.
func TestTypeAheadDuringGreeting(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	r := s.call(t, "--from", "13800138004", "--dtmf", "1", "--dtmf-after", "2s", "--hangup-after", "10s")
	if !r.heard("zh-CN/greeting", "zh-CN/transferring-agent") || r.heard("zh-CN/main-menu") {
		t.Fatalf("want greeting cut by the key, then transferring-agent without the menu: %v", r.PromptsHeard)
	}
	ms, ok := r.Raw["dtmf_to_next_prompt_ms"].(float64)
	if !ok || ms <= 0 || ms > 1000 {
		t.Errorf("dtmf_to_next_prompt_ms = %v; the next prompt should follow the key at once", r.Raw["dtmf_to_next_prompt_ms"])
	}
}

// TestCancelBeforeAnswer: hotlined lets the call ring; the caller gives up
// before the answer. The INVITE gets 487 and the call still has its case,
// outcome "abandoned before answer" (the connection rate counts it).
func TestCancelBeforeAnswer(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", "--ring-time", "5s")
	r := s.call(t, "--from", "13800138005", "--cancel-after", "700ms")
	if r.Answered || r.SIPStatus != 487 || r.EndedBy != "cancel" {
		t.Fatalf("want 487 and ended_by cancel: %+v", r)
	}
	cl := s.adminClient(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		l := allCases(t, cl)
		if len(l) == 1 && l[0].Outcome == cases.OutcomeAbandonedBeforeAnswer && l[0].Answered.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cases after a cancelled call: %+v; want one, abandoned before answer", l)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
