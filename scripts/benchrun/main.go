// Command benchrun is the load part of `make bench`: it starts hotlined,
// drives it with `callsim load` at several sizes on loopback and prints
// hotlined's CPU per call-minute, memory per call, the receiver-side RTP
// interarrival, the setup rate reached and the DTMF-to-next-prompt latency.
// Figures depend on the machine: they are printed with its description and
// never asserted.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	binDir := flag.String("bin", "bin", "folder with hotlined and callsim")
	sizes := flag.String("calls", "200,1000,2000", "concurrent call counts")
	hold := flag.Duration("hold", 30*time.Second, "how long each call is held")
	rate := flag.Int("rate", 200, "calls started per second in the concurrency runs")
	setupCalls := flag.Int("setup-calls", 3000, "calls in the setup-rate run")
	setupRate := flag.Int("setup-rate", 600, "offered rate in the setup-rate run")
	flag.Parse()
	b := &bench{bin: *binDir}
	fmt.Printf("## Load figures (hotlined and callsim share this machine: %s, %d cores, %s)\n\n", cpuModel(), runtime.NumCPU(), runtime.Version())
	fmt.Println("| calls | hold | setups ok/failed | hotlined CPU ms per call-minute | hotlined RSS per call | heap per call | interarrival p99 / max (callsim) | hotlined pacer ticks late >5 ms / worst lag | packets lost | callsim CPU ms/call-min |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fail(err)
		}
		if err := b.concurrency(n, *rate, *hold); err != nil {
			fmt.Printf("| %d | %s | run failed: %v |\n", n, *hold, err)
		}
	}
	fmt.Println()
	if err := b.setupRate(*setupCalls, *setupRate); err != nil {
		fmt.Println("setup-rate run failed:", err)
	}
	if err := b.dtmfLatency(200); err != nil {
		fmt.Println("DTMF latency run failed:", err)
	}
}

type bench struct{ bin string }

type server struct {
	cmd       *exec.Cmd
	sip, http string
	dir       string
	pid       int
}

func (b *bench) start() (*server, error) {
	dir, err := os.MkdirTemp("", "hotline-bench")
	if err != nil {
		return nil, err
	}
	s := &server{sip: freeAddr(), http: freeAddr(), dir: dir}
	log, _ := os.Create(filepath.Join(dir, "hotlined.log"))
	s.cmd = exec.Command(filepath.Join(b.bin, "hotlined"), "--sip-listen", s.sip, "--http-listen", s.http,
		"--data-dir", dir, "--log-level", "warn", "--rtp-sockets", "64")
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.pid = s.cmd.Process.Pid
	for i := 0; i < 200; i++ {
		if resp, err := http.Get("http://" + s.http + "/healthz"); err == nil {
			resp.Body.Close()
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("hotlined did not start (see %s)", dir)
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(s.dir)
}

// loadResult is the part of callsim load's JSON the report uses.
type loadResult struct {
	SetupsOK      int     `json:"setups_ok"`
	SetupsFailed  int     `json:"setups_failed"`
	SetupRate     float64 `json:"setup_rate"`
	SetupLatency  pct     `json:"setup_latency_ms"`
	Interarrival  pct     `json:"interarrival_ms"`
	PacketsLost   int     `json:"packets_lost"`
	PacketsRecv   int     `json:"packets_received"`
	DTMFToPrompt  pct     `json:"dtmf_to_next_prompt_ms"`
	CPUPerCallMin float64 `json:"cpu_ms_per_call_minute"`
}

type pct struct {
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Count int     `json:"count"`
}

func (b *bench) load(s *server, args ...string) (*exec.Cmd, *bytes.Buffer, error) {
	all := append([]string{"load", "--target", s.sip, "--json", "--media-sockets", "64"}, args...)
	cmd := exec.Command(filepath.Join(b.bin, "callsim"), all...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, io.Discard
	return cmd, &out, cmd.Start()
}

func (b *bench) concurrency(n, rate int, hold time.Duration) error {
	s, err := b.start()
	if err != nil {
		return err
	}
	defer s.stop()
	baseRSS, baseHeap := rss(s.pid), heapInuse(s.http)
	cmd, out, err := b.load(s, "--calls", strconv.Itoa(n), "--rate", strconv.Itoa(rate), "--hold", hold.String())
	if err != nil {
		return err
	}
	// Measure the steady state: every call up, none ended yet.
	ramp := time.Duration(n/rate)*time.Second + 3*time.Second
	window := hold - 6*time.Second
	time.Sleep(ramp)
	c0, t0 := cpuTime(s.pid), time.Now()
	// hotlined's own pacer punctuality over the window: jitter it adds,
	// apart from what callsim (on the same cores) measures on arrival.
	late0, ticks0 := promValue(s.http, "hotline_media_pacer_late_ticks_total"), promValue(s.http, "hotline_media_pacer_ticks_total")
	time.Sleep(window / 2)
	memRSS, memHeap := rss(s.pid), heapInuse(s.http)
	time.Sleep(window / 2)
	c1, t1 := cpuTime(s.pid), time.Now()
	late := promValue(s.http, "hotline_media_pacer_late_ticks_total") - late0
	ticks := promValue(s.http, "hotline_media_pacer_ticks_total") - ticks0
	maxLag := promValue(s.http, "hotline_media_pacer_max_lag_seconds")
	if err := cmd.Wait(); err != nil && out.Len() == 0 {
		return fmt.Errorf("callsim: %w", err)
	}
	var r loadResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return fmt.Errorf("callsim output: %w: %s", err, out.String())
	}
	callMinutes := float64(n) * t1.Sub(t0).Minutes()
	cpuMS := (c1 - c0).Seconds() * 1000 / callMinutes
	fmt.Printf("| %d | %s | %d/%d | %.1f | %s | %s | %.1f / %.1f ms | %.3f%% / %.1f ms | %d of %d | %.0f |\n",
		n, hold, r.SetupsOK, r.SetupsFailed, cpuMS, kib(float64(memRSS-baseRSS)/float64(n)),
		kib(float64(memHeap-baseHeap)/float64(n)), r.Interarrival.P99, r.Interarrival.Max,
		100*late/max(ticks, 1), maxLag*1000, r.PacketsLost, r.PacketsRecv, r.CPUPerCallMin)
	return nil
}

func (b *bench) setupRate(calls, rate int) error {
	s, err := b.start()
	if err != nil {
		return err
	}
	defer s.stop()
	cmd, out, err := b.load(s, "--calls", strconv.Itoa(calls), "--rate", strconv.Itoa(rate), "--hold", "2s")
	if err != nil {
		return err
	}
	c0 := cpuTime(s.pid)
	cmd.Wait()
	c1 := cpuTime(s.pid)
	var r loadResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return fmt.Errorf("callsim output: %w: %s", err, out.String())
	}
	fmt.Printf("## Call setup\n\n%d calls offered at %d/s (each held 2 s with RTP): %d set up, %d failed; setup rate reached %.0f/s; "+
		"INVITE→200 OK p50 %.1f ms, p99 %.1f ms; hotlined CPU %.2f ms per call (setup, 2 s of media, teardown).\n\n",
		calls, rate, r.SetupsOK, r.SetupsFailed, r.SetupRate, r.SetupLatency.P50, r.SetupLatency.P99,
		(c1-c0).Seconds()*1000/float64(max(r.SetupsOK, 1)))
	return nil
}

func (b *bench) dtmfLatency(n int) error {
	s, err := b.start()
	if err != nil {
		return err
	}
	defer s.stop()
	// The key is pressed during the greeting; the flow barges in and plays
	// the next prompt.
	cmd, out, err := b.load(s, "--calls", strconv.Itoa(n), "--rate", "50", "--hold", "10s", "--dtmf", "1", "--dtmf-after", "2s")
	if err != nil {
		return err
	}
	cmd.Wait()
	var r loadResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return fmt.Errorf("callsim output: %w: %s", err, out.String())
	}
	fmt.Printf("## DTMF to next prompt\n\n%d calls, digit 1 by RFC 4733 during the greeting: first RFC 4733 packet sent → first RTP packet of the next prompt received: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d measured).\n\n",
		n, r.DTMFToPrompt.P50, r.DTMFToPrompt.P99, r.DTMFToPrompt.Max, r.DTMFToPrompt.Count)
	return nil
}

// cpuTime is the process's user+system CPU time from /proc/PID/stat.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// rss is the resident set size in bytes.
func rss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// heapInuse reads go_memstats_heap_inuse_bytes from /metrics.
func heapInuse(addr string) int64 { return int64(promValue(addr, "go_memstats_heap_inuse_bytes")) }

// promValue reads one unlabelled sample from hotlined's /metrics (0 when
// missing).
func promValue(addr, name string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }

func freeAddr() string {
	for {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			fail(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			l.Close()
			return fmt.Sprintf("127.0.0.1:%d", port)
		}
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchrun:", err)
	os.Exit(1)
}
