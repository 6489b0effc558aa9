package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's "Agents and lines" walk-through, run as written: hotlined
// with deploy/local/routing.yaml, a callsim line for 12315, an agent created
// with hotlinectl and its registered phone, a caller who presses 0 and one
// who presses 4. Only the fixed ports are moved to free ones (and make run
// becomes the harness's hotlined with the same routing file), so that the
// walk-through cannot rot unnoticed.

// readmeSection returns the commands of a README section: its indented
// code lines, continuation lines joined, comments left out.
func readmeSection(t *testing.T, title string) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var cmds []string
	var cur strings.Builder
	for _, line := range strings.Split(sec, "\n") {
		if !strings.HasPrefix(line, "    ") {
			continue
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more)
			continue
		}
		cur.WriteString(line)
		cmds = append(cmds, cur.String())
		cur.Reset()
	}
	return cmds
}

func TestReadmeAgentsAndLines(t *testing.T) {
	t.Parallel()
	cmds := readmeSection(t, "Agents and lines")
	if len(cmds) < 5 {
		t.Fatalf("README walk-through has %d commands: %q", len(cmds), cmds)
	}
	// Fixed ports of the walk-through, moved to free ones.
	ports := map[string]string{}
	for _, p := range []string{"5070", "5071", "5072", "5080"} {
		ports["127.0.0.1:"+p] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	// One pass (strings.Replacer): a free port written in may not be
	// rewritten again by another pair (127.0.0.1:5060 -> 127.0.0.1:50701).
	move := func(s string) string {
		var pairs []string
		for from, to := range ports {
			pairs = append(pairs, from, to)
		}
		return strings.NewReplacer(pairs...).Replace(s)
	}
	// A working folder laid out like the repository: bin/, deploy/local/,
	// and var/ as hotlined's data folder (hotlinectl reads ./var/admin.token).
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}

	var s *server
	type bg struct {
		cmd  string
		out  *bytes.Buffer
		p    *exec.Cmd
		done chan struct{}
	}
	var phones []bg
	var calls []string // commands of the calls
	var results []callResult
	run := func(c string, out *bytes.Buffer) *exec.Cmd {
		cmd := exec.Command("bash", "-c", c)
		// Its own process group: bash may or may not exec the command, a
		// signal to the group reaches the phone either way.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOTLINE_SERVER=http://"+s.HTTP)
		cmd.Stdout = out
		cmd.Stderr = os.Stderr
		return cmd
	}
	for _, c := range cmds {
		t.Logf("README: %s", c)
		switch {
		case strings.HasSuffix(c, "make run"):
			// HOTLINE_ROUTING_CONFIG=FILE make run
			env, _, _ := strings.Cut(c, " ")
			k, file, _ := strings.Cut(env, "=")
			if k != "HOTLINE_ROUTING_CONFIG" {
				t.Fatalf("README starts hotlined with %q; the test knows HOTLINE_ROUTING_CONFIG=FILE make run", c)
			}
			rb, err := os.ReadFile(filepath.Join("..", file))
			if err != nil {
				t.Fatalf("the README's routing file: %v", err)
			}
			rc := filepath.Join(dir, file)
			os.MkdirAll(filepath.Dir(rc), 0o755)
			if err := os.WriteFile(rc, []byte(move(string(rb))), 0o600); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(dir, "var")
			os.MkdirAll(data, 0o700)
			s = startServer(t, data, "--routing-config", rc)
			ports["127.0.0.1:5060"] = s.SIP
		case s == nil:
			t.Fatalf("README runs %q before starting hotlined", c)
		case strings.HasSuffix(c, "&"):
			b := &bg{cmd: c, out: &bytes.Buffer{}, done: make(chan struct{})}
			b.p = run(move(strings.TrimSuffix(c, "&")), b.out)
			if err := b.p.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { b.p.Wait(); close(b.done) }()
			t.Cleanup(func() {
				select {
				case <-b.done:
				default:
					syscall.Kill(-b.p.Process.Pid, syscall.SIGKILL)
					<-b.done
				}
			})
			phones = append(phones, *b)
			time.Sleep(time.Second) // the phone registers
		case strings.Contains(c, "callsim call"):
			var out bytes.Buffer
			cmd := run(move(c), &out)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("README %q: %v\n%s", c, err, out.String())
				}
			case <-ctx.Done():
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				t.Fatalf("README %q did not end", c)
			}
			cancel()
			var r callResult
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("README %q: %v: %s", c, err, out.String())
			}
			json.Unmarshal(out.Bytes(), &r.Raw)
			t.Logf("-> heard %v, received %d packets", r.PromptsHeard, r.RTPReceived)
			calls, results = append(calls, c), append(results, r)
		default:
			var out bytes.Buffer
			if err := run(move(c), &out).Run(); err != nil {
				t.Fatalf("README %q: %v\n%s", c, err, out.String())
			}
		}
	}
	if s == nil {
		t.Fatal("the README never starts hotlined")
	}
	time.Sleep(time.Second) // the phones print their last reports
	reports := map[string][]map[string]any{}
	for _, b := range phones {
		syscall.Kill(-b.p.Process.Pid, syscall.SIGINT)
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			t.Errorf("README %q did not end on SIGINT", b.cmd)
			continue
		}
		role := "line"
		if strings.Contains(b.cmd, "callsim agent") {
			role = "agent"
		}
		for _, l := range strings.Split(b.out.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil {
				reports[role] = append(reports[role], m)
			}
		}
	}
	var sawAgent, saw12315 bool
	for i, c := range calls {
		r := results[i]
		switch {
		case strings.Contains(c, "--dtmf 0"):
			sawAgent = true
			if !r.heard("zh-CN/transferring-agent", "zh-CN/agent-number-is", "zh-CN/digit-1", "zh-CN/digit-0", "zh-CN/digit-0", "zh-CN/digit-1") {
				t.Errorf("the caller who pressed 0 heard %v; want agent 1001's number", r.PromptsHeard)
			}
		case strings.Contains(c, "--dtmf 4"):
			saw12315 = true
			if !r.heard("zh-CN/transferring-12315") || r.heard("zh-CN/transferring-agent") {
				t.Errorf("the caller who pressed 4 heard %v; want the 12315 transfer", r.PromptsHeard)
			}
		}
	}
	if !sawAgent || !saw12315 {
		t.Fatalf("README walk-through lacks a caller who presses 0 (%v) or 4 (%v)", sawAgent, saw12315)
	}
	if a := reports["agent"]; len(a) != 1 || a[0]["answered"] != true || num(a[0], "rtp_received") < 100 {
		t.Errorf("agent phone reports %v; want one call answered with the caller's audio", a)
	}
	if l := reports["line"]; len(l) != 1 || l[0]["answered"] != true || l[0]["to"] != "12315" || num(l[0], "rtp_received") < 100 {
		t.Errorf("12315 line reports %v; want one call to 12315 answered with the caller's audio", l)
	}
}
