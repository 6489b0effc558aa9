package test

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// goroutineDump ends s with SIGQUIT: the Go runtime writes every
// goroutine's stack to stderr, which startServer sends to the log file
// (with GOTRACEBACK=all), and exits. It returns one stack per goroutine.
// This is how a test looks for goroutines leaked inside hotlined, which
// goleak, working in the test's own process, cannot see.
func (s *server) goroutineDump(t *testing.T) []string {
	t.Helper()
	sent := false
	s.stopOnce.Do(func() {
		sent = true
		s.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	if !sent {
		t.Fatal("goroutine dump: hotlined was already stopped")
	}
	log := s.Log()
	i := strings.Index(log, "\ngoroutine ")
	if i < 0 {
		t.Fatalf("goroutine dump: no stacks in the log after SIGQUIT:\n%s", tail(log, 2000))
	}
	var out []string
	for _, g := range strings.Split(log[i+1:], "\n\n") {
		if strings.HasPrefix(g, "goroutine ") {
			out = append(out, g)
		}
	}
	return out
}

// waitNoCalls waits until /healthz reports no call in progress.
func (s *server) waitNoCalls(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := s.health(t)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("/healthz still reports %d calls", n)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
