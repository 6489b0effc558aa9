// Package test holds whole-server tests: hotlined and callsim built as real
// binaries, talking SIP and RTP over loopback, as a site would run them.
package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cq12345/hotline/telemetry"
)

// bin holds the binaries built once for the whole package.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hotline-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	build := exec.Command("go", "build", "-o", dir+"/", "../cmd/hotlined", "../cmd/callsim", "../cmd/hotlinectl")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.Exit(1)
	}
	if os.Getenv("HOTLINE_TEST_RACE") == "1" {
		// hotlined with the race detector (slower: run a few tests, e.g.
		// -run 'TestPlaneScenarios|TestAgent'); a race it reports fails
		// the test that ran it (Stop reads the log).
		race := exec.Command("go", "build", "-race", "-o", dir+"/", "../cmd/hotlined")
		race.Stdout, race.Stderr = os.Stdout, os.Stderr
		if err := race.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building hotlined -race:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one running hotlined.
type server struct {
	t        *testing.T
	cmd      *exec.Cmd
	SIP      string // host:port, UDP and TCP
	HTTP     string // host:port
	DataDir  string
	LogFile  string
	Trace    string
	exited   chan struct{}
	exitErr  error
	stopOnce sync.Once
}

// freePort returns a loopback port free for both UDP and TCP, for a
// process the test starts later (a callsim line behind a trunk URI written
// into a routing file). Ports come from below the kernel's ephemeral range
// (ip_local_port_range, 32768-60999 by default), which nothing that binds
// port 0 — hotlined's RTP sockets, other callsims — is ever given: a port
// picked from that range and released could be taken before the line
// binds it (a CI run once failed so). A counter keeps this process's picks
// apart; the bind checks keep anything else's.
func freePort(t *testing.T) int {
	t.Helper()
	for range 200 {
		port := int(portBase + portNext.Add(1)%portSpan)
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// The ports freePort hands out: [portBase, portBase+portSpan), starting at
// a point drawn per process so that two test processes rarely meet.
const (
	portBase = 20000
	portSpan = 12000
)

var portNext = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(rand.Int64N(portSpan))
	return &n
}()

// startServer starts hotlined on free loopback ports with a fresh data
// folder (or dataDir when given) and waits until /healthz answers.
func startServer(t *testing.T, dataDir string, args ...string) *server {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	// A port found free may be taken by another test's process (an RTP
	// socket on an OS-chosen port) before hotlined binds it: try again on
	// other ports.
	for attempt := 1; ; attempt++ {
		s, err := tryStartServer(t, dataDir, args...)
		if err == nil {
			return s
		}
		if attempt < 5 && strings.Contains(err.Error(), "address already in use") {
			t.Logf("hotlined could not bind (attempt %d), retrying on other ports", attempt)
			continue
		}
		t.Fatal(err)
	}
}

func tryStartServer(t *testing.T, dataDir string, args ...string) (*server, error) {
	t.Helper()
	s := &server{
		t:       t,
		SIP:     fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		HTTP:    fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		DataDir: dataDir,
		exited:  make(chan struct{}),
	}
	s.LogFile = filepath.Join(dataDir, fmt.Sprintf("hotlined-%d.log", time.Now().UnixNano()))
	s.Trace = filepath.Join(dataDir, fmt.Sprintf("spans-%d.jsonl", time.Now().UnixNano()))
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--routing-config") }) {
		args = append([]string{"--routing-config", "testdata/routing-fast.yaml"}, args...)
	}
	all := append([]string{
		"--sip-listen", s.SIP, "--http-listen", s.HTTP, "--data-dir", dataDir,
		"--trace-file", s.Trace, "--log-format", "json", "--log-level", "debug",
	}, args...)
	logf, err := os.Create(s.LogFile)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(filepath.Join(bin, "hotlined"), all...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	t.Cleanup(func() { s.Stop() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + s.HTTP + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("hotlined exited at start: %v\n%s", s.exitErr, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("hotlined not healthy after 20 s\n%s", s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for the process to exit.
func (s *server) Stop() {
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(60 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			s.t.Errorf("hotlined did not exit within 60 s of SIGTERM")
		}
		if log := s.Log(); strings.Contains(log, "WARNING: DATA RACE") {
			s.t.Errorf("hotlined reported a data race (HOTLINE_TEST_RACE):\n%s", log[strings.Index(log, "WARNING: DATA RACE"):])
		}
	})
}

// Kill ends hotlined with SIGKILL (a crash).
func (s *server) Kill() {
	s.stopOnce.Do(func() {
		s.cmd.Process.Kill()
		<-s.exited
	})
}

// Log returns what hotlined wrote so far.
func (s *server) Log() string {
	b, _ := os.ReadFile(s.LogFile)
	return string(b)
}

// callResult is callsim call's JSON output.
type callResult struct {
	SIPStatus    int      `json:"sip_status"`
	SIPReason    string   `json:"sip_reason"`
	Answered     bool     `json:"answered"`
	Codec        string   `json:"codec"`
	PromptsHeard []string `json:"prompts_heard"`
	RTPReceived  int      `json:"rtp_received"`
	Interarrival struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"interarrival_ms"`
	EndedBy       string            `json:"ended_by"`
	DurationMS    float64           `json:"duration_ms"`
	TonesReceived map[string]uint64 `json:"tones_received"`
	// TonesLongestRun: a held tone (ringback) as opposed to speech.
	TonesLongestRun map[string]uint64 `json:"tones_longest_run"`
	DTMFSent        json.RawMessage   `json:"dtmf_sent"`
	Raw             map[string]any    `json:"-"`
}

// callsim runs `callsim call` against s and decodes its JSON.
func (s *server) call(t *testing.T, args ...string) callResult {
	t.Helper()
	all := append([]string{"call", "--target", s.SIP, "--prompts-dir", "../prompts", "--json"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "callsim"), all...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var r callResult
	if jerr := json.Unmarshal(stdout.Bytes(), &r); jerr != nil {
		t.Fatalf("callsim %v: %v (json: %v)\nstdout: %s\nstderr: %s", args, err, jerr, stdout.String(), stderr.String())
	}
	json.Unmarshal(stdout.Bytes(), &r.Raw)
	t.Logf("callsim %s -> %s", strings.Join(args, " "), strings.TrimSpace(stdout.String()))
	return r
}

// heard reports whether the prompts were heard in this order (others may
// come between them).
func (r callResult) heard(keys ...string) bool {
	i := 0
	for _, h := range r.PromptsHeard {
		if i < len(keys) && h == keys[i] {
			i++
		}
	}
	return i == len(keys)
}

// mobile matches a mainland mobile number anywhere in text.
var mobile = regexp.MustCompile(`(^|[^0-9])(1[3-9][0-9]{9})([^0-9]|$)`)

// traceIDs matches trace and span ids in span files and logs: random hex
// that now and then holds eleven digits in a row shaped like a mobile
// number (a CI run once failed on span id 18028690307d73fe). They are
// blanked before the scan; nothing else is.
var traceIDs = regexp.MustCompile(`"(TraceID|SpanID|trace_id|span_id|traceId|spanId)":"[0-9a-f]{16,32}"`)

// uuids matches UUIDs (call ids, leg ids, playback ids): their last group,
// 12 hex digits, holds a mobile-shaped run now and then (about 3 in 10,000
// ids), and no number can be a UUID. Blanked before the scan too.
var uuids = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// assertNoUnmaskedNumbers scans files (logs, span files) for any of the
// given caller numbers and for any mobile-number-shaped run of digits.
func assertNoUnmaskedNumbers(t *testing.T, numbers []string, files ...string) {
	t.Helper()
	for _, f := range files {
		for _, leak := range scanLeaks(f, numbers) {
			t.Error(leak)
		}
	}
}

// scanLeaks returns one message per line of file f that carries one of
// numbers or a mobile-number-shaped run of digits, or why f could not be
// scanned.
func scanLeaks(f string, numbers []string) []string {
	b, err := os.ReadFile(f)
	if err != nil {
		return []string{fmt.Sprintf("scan %s: %v", f, err)}
	}
	if len(b) == 0 {
		return []string{fmt.Sprintf("scan %s: empty; the scan would prove nothing", f)}
	}
	var leaks []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		line := uuids.ReplaceAllString(traceIDs.ReplaceAllString(sc.Text(), `"$1":""`), "<uuid>")
		for _, num := range numbers {
			if strings.Contains(line, num) {
				// The message masks what it found: test output is a log too.
				leaks = append(leaks, fmt.Sprintf("%s:%d carries caller number %s unmasked: %.300s", filepath.Base(f), n,
					telemetry.MaskNumber(num), strings.ReplaceAll(line, num, "<"+telemetry.MaskNumber(num)+">")))
			}
		}
		if m := mobile.FindStringSubmatch(line); m != nil {
			leaks = append(leaks, fmt.Sprintf("%s:%d carries a mobile number %s: %.300s", filepath.Base(f), n,
				telemetry.MaskNumber(m[2]), strings.ReplaceAll(line, m[2], "<"+telemetry.MaskNumber(m[2])+">")))
		}
	}
	return leaks
}
