package sip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/media"
)

// sippPath finds sipp (Debian package sip-tester). Without it the test is
// skipped, except under CI=true, where a missing sipp is a failure.
func sippPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sipp is not installed (apt-get install sip-tester); CI=true requires it")
		}
		t.Skip("sipp not installed")
	}
	return p
}

// freePort returns a loopback port that was free a moment ago (sipp binds
// its own sockets, so the port has to be named on its command line).
func freePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// runSipp runs one scenario from testdata/sipp against target and returns
// its combined output; args are added to the command line.
func runSipp(t *testing.T, target string, scenario string, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	dir, err := filepath.Abs("testdata/sipp")
	if err != nil {
		t.Fatal(err)
	}
	return runSippIn(t, dir, target, scenario, timeout, args...)
}

// runSippIn runs sipp in dir (where the scenario and its pcaps are, and
// where sipp writes its trace files).
func runSippIn(t *testing.T, dir, target, scenario string, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	base := []string{target, "-sf", filepath.Join(dir, scenario),
		"-i", "127.0.0.1", "-p", strconv.Itoa(freePort(t, "udp")),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(freePort(t, "udp")),
		"-nostdin", "-timeout", strconv.Itoa(int(timeout/time.Second)-1) + "s", "-timeout_error",
	}
	cmd := exec.CommandContext(ctx, sippPath(t), append(base, args...)...)
	// play_pcap_audio paths are relative to the working directory.
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSipp runs the committed sipp scenarios against an in-process Server.
func TestSipp(t *testing.T) {
	sippPath(t)
	digits := make(chan byte, 4)
	srv := startServer(t, func(ctx context.Context, c ivr.Call) {
		if err := c.Play(ctx, []string{"zh-CN/greeting"}, true); err != nil {
			return
		}
		if d, err := c.ReadDigit(ctx, 10*time.Second); err == nil {
			digits <- d
		}
		<-c.Done()
	})
	target := srv.Addr().String()
	for _, sc := range []struct{ file, transport, want string }{
		{"uac_12345.xml", "u1", "200 to INVITE and BYE, RTP and an RFC 4733 digit"},
		{"uac_12345.xml", "t1", "the same over TCP"},
		{"uac_404.xml", "u1", "404"},
		{"uac_488.xml", "u1", "488"},
		{"uac_400.xml", "u1", "400"},
	} {
		t.Run(sc.file+"/"+sc.transport, func(t *testing.T) {
			out, err := runSipp(t, target, sc.file, 30*time.Second, "-m", "1", "-t", sc.transport)
			if err != nil {
				t.Fatalf("sipp %s (want %s): %v\n%s", sc.file, sc.want, err, out)
			}
			if sc.file != "uac_12345.xml" {
				return
			}
			select {
			case d := <-digits:
				if d != '1' {
					t.Fatalf("digit %q from dtmf_2833_1.pcap, want '1'", d)
				}
			case <-time.After(time.Second):
				t.Fatal("the RFC 4733 digit from sipp never reached ReadDigit")
			}
		})
	}
	waitFor(t, "calls released", 3*time.Second, func() bool { return srv.ActiveCalls() == 0 })
}

// TestSippLoad measures call setup rate and server CPU with sipp. It runs
// only with HOTLINE_SIPP_LOAD=<calls per second> (e.g. 300); the number of
// calls is HOTLINE_SIPP_CALLS (default 10 s worth).
func TestSippLoad(t *testing.T) {
	rate, _ := strconv.Atoi(os.Getenv("HOTLINE_SIPP_LOAD"))
	if rate <= 0 {
		t.Skip("set HOTLINE_SIPP_LOAD=<calls/s> to run")
	}
	sippPath(t)
	calls, _ := strconv.Atoi(os.Getenv("HOTLINE_SIPP_CALLS"))
	if calls <= 0 {
		calls = rate * 10
	}
	play := os.Getenv("HOTLINE_SIPP_NOPLAY") == ""
	srv := startServer(t, func(ctx context.Context, c ivr.Call) {
		if !play {
			_ = c.Answer(ctx)
		} else if err := c.Play(ctx, []string{"zh-CN/greeting"}, true); err != nil {
			return
		}
		<-c.Done()
	}, func(m *media.Config, c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
		m.Logger = c.Logger
		m.Shards = 0
	})
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	// sipp writes its response-time trace next to the scenario: use a
	// copy in a temporary directory.
	dir := t.TempDir()
	sc, err := os.ReadFile("testdata/sipp/uac_load.xml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "uac_load.xml"), sc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runSippIn(t, dir, srv.Addr().String(), "uac_load.xml", time.Duration(calls/rate+60)*time.Second,
		"-m", strconv.Itoa(calls), "-r", strconv.Itoa(rate), "-l", strconv.Itoa(rate*3), "-trace_rtt", "-rtt_freq", "1")
	wall := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
	if err != nil {
		t.Logf("sipp: %v\n%s", err, lastLines(out, 40))
	}
	t.Logf("%d calls offered at %d/s in %v: server CPU %v (%.0f µs per call, %.0f%% of one core)",
		calls, rate, wall.Round(time.Millisecond), cpu.Round(time.Millisecond),
		float64(cpu.Microseconds())/float64(calls), 100*cpu.Seconds()/wall.Seconds())
	t.Logf("sipp summary:\n%s", lastLines(out, 40))
	if rtts := readRTT(t, dir); len(rtts) > 0 {
		slices.Sort(rtts)
		q := func(p float64) float64 { return rtts[min(len(rtts)-1, int(p*float64(len(rtts))))] }
		t.Logf("INVITE->200 response time over %d calls: p50 %.2f ms, p99 %.2f ms, max %.2f ms", len(rtts), q(0.50), q(0.99), rtts[len(rtts)-1])
	}
	waitFor(t, "calls released", 10*time.Second, func() bool { return srv.ActiveCalls() == 0 })
}

// readRTT reads sipp's -trace_rtt file(s): "date;dateMs;responsetime;rtd_no".
func readRTT(t *testing.T, dir string) []float64 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	var out []float64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			parts := strings.Split(line, ";")
			if len(parts) < 3 {
				continue
			}
			if v, err := strconv.ParseFloat(parts[2], 64); err == nil {
				out = append(out, v)
			}
		}
	}
	return out
}

func lastLines(s string, n int) string {
	lines := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			lines++
			if lines > n {
				return s[i+1:]
			}
		}
	}
	return fmt.Sprint(s)
}
