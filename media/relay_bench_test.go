package media

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestRelayLoad measures the bridge's data plane at scale: a hub process
// (this test binary re-run as a child, standing for hotlined) relays N
// bridged calls (2N sessions, media.Session.RelayTo both ways: what
// sip.Server.Bridge sets up per call) while this process plays the 2N
// phones (audio both ways, 50 packets/s each). Reported: the hub's CPU per
// bridged call-minute (its own getrusage, receive + rewrite + sendmmsg),
// and the relay latency added, from probe calls whose payload carries the
// send time, against the same loopback path without the hub.
//
// Run: HOTLINE_BENCH_RELAY=1 [HOTLINE_BENCH_CALLS=500] [HOTLINE_BENCH_SECONDS=20] \
//
//	go test -run TestRelayLoad -v ./media
func TestRelayLoad(t *testing.T) {
	if os.Getenv("HOTLINE_RELAY_HUB") == "1" {
		relayHub(t)
		return
	}
	if os.Getenv("HOTLINE_BENCH_RELAY") != "1" {
		t.Skip("set HOTLINE_BENCH_RELAY=1 to run the bridged-call load test")
	}
	calls := envInt("HOTLINE_BENCH_CALLS", 500)
	secs := envInt("HOTLINE_BENCH_SECONDS", 20)
	const probes = 10 // of the calls, with raw sockets and timestamps

	args := []string{"-test.run", "^TestRelayLoad$"}
	if p := os.Getenv("HOTLINE_BENCH_HUB_PROFILE"); p != "" {
		args = append(args, "-test.cpuprofile", p)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "HOTLINE_RELAY_HUB=1", "HOTLINE_BENCH_CALLS="+strconv.Itoa(calls))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	rd := bufio.NewReader(stdout)
	line := func() string {
		for {
			s, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("hub: %v", err)
			}
			if strings.HasPrefix(s, "HUB ") {
				return strings.TrimSpace(s[4:])
			}
		}
	}
	// The phones first, as the callers and agents whose offers and answers
	// give hotlined their addresses: the hub then creates every session
	// with its remote known, as the sip plane does for an inbound call.
	// (Sessions created with no remote wait to latch and each get a socket
	// of their own; an outbound leg is in that state only while it rings.)
	// Until the hub's addresses are known the phones send to the discard
	// port, which keeps their own pool small for the same reason.
	ph := newEngine(t, Config{Sockets: 16, InactivityTimeout: -1})
	var rxPhones countingRx
	frame := make([]byte, 160)
	for i := range frame {
		frame[i] = 0xd5
	}
	discard := netip.MustParseAddrPort("127.0.0.1:9")
	phoneAddrs := make([]string, 2*calls)
	phones := make([]*Session, 2*calls)
	var raw []*net.UDPConn
	for i := range 2 * calls {
		if i < 2*probes {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			raw = append(raw, c)
			phoneAddrs[i] = c.LocalAddr().String()
			continue
		}
		s, err := ph.NewSession(SessionConfig{Remote: discard, PayloadType: 8, OnPacket: rxPhones.on})
		if err != nil {
			t.Fatal(err)
		}
		phones[i] = s
		phoneAddrs[i] = s.LocalAddr().String()
	}
	b, _ := json.Marshal(phoneAddrs)
	fmt.Fprintf(stdin, "%s\n", b)
	var hubAddrs []string
	if err := json.Unmarshal([]byte(line()), &hubAddrs); err != nil {
		t.Fatal(err)
	}
	if s := line(); s != "READY" {
		t.Fatalf("hub: %q", s)
	}
	for i, s := range phones {
		if s != nil {
			s.SetRemote(netip.MustParseAddrPort(hubAddrs[i]))
		}
	}
	// The phones talk from now on.
	for _, s := range sessionsOf(ph) {
		s.Play([][]byte{frame}, PlayOptions{Loop: true})
	}

	// Probes: raw socket 2k sends through the hub to 2k+1 (and back);
	// baseline: the same raw sockets straight to each other.
	var viaHub, direct histogram
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for k := range probes {
		a, z := raw[2*k], raw[2*k+1]
		hubA := netip.MustParseAddrPort(hubAddrs[2*k])
		hubZ := netip.MustParseAddrPort(hubAddrs[2*k+1])
		for _, dir := range []struct {
			from *net.UDPConn
			to   netip.AddrPort
		}{{a, hubA}, {z, hubZ}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				timedSend(dir.from, dir.to, 8, stop)
			}()
		}
		for _, c := range []*net.UDPConn{a, z} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				probeRecv(c, &viaHub, &direct, stop)
			}()
		}
	}
	// Direct baseline: probe 0 also sends straight to probe 1 with a
	// marker (payload type 9) so the receiver files it under direct.
	wg.Add(1)
	go func() {
		defer wg.Done()
		timedSend(raw[0], raw[1].LocalAddr().(*net.UDPAddr).AddrPort(), 9, stop)
	}()

	time.Sleep(2 * time.Second) // every call talking
	viaHub.reset()
	direct.reset()
	rx0 := rxPhones.n.Load()
	fmt.Fprintln(stdin, "START")
	time.Sleep(time.Duration(secs) * time.Second)
	fmt.Fprintln(stdin, "STOP")
	var res struct {
		CPU, Wall         time.Duration
		Relayed, Sendmmsg uint64
		Received          uint64
		Recvmmsg          uint64
		Sockets           int
	}
	if err := json.Unmarshal([]byte(line()), &res); err != nil {
		t.Fatal(err)
	}
	rx := rxPhones.n.Load() - rx0
	close(stop)
	for _, c := range raw {
		_ = c.SetReadDeadline(time.Now())
	}
	wg.Wait()
	callMin := float64(calls) * res.Wall.Minutes()
	t.Logf("%d bridged calls for %v: hub CPU %v (%.1f%% of one core): %.0f ms CPU per bridged call-minute",
		calls, res.Wall.Round(time.Millisecond), res.CPU.Round(time.Millisecond), 100*res.CPU.Seconds()/res.Wall.Seconds(),
		float64(res.CPU.Milliseconds())/callMin)
	t.Logf("hub sockets %d", res.Sockets)
	t.Logf("hub received %d (%.1f packets per recvmmsg), relayed %d packets (%.0f/s), %.1f packets per send call; phones received %d",
		res.Received, float64(res.Received)/float64(max(res.Recvmmsg, 1)), res.Relayed, float64(res.Relayed)/res.Wall.Seconds(), float64(res.Relayed)/float64(max(res.Sendmmsg, 1)), rx)
	t.Logf("one-way latency through the hub p50 %v p99 %v max %v; direct loopback p50 %v p99 %v",
		viaHub.quantileFine(0.5), viaHub.quantileFine(0.99), time.Duration(viaHub.max.Load()), direct.quantileFine(0.5), direct.quantileFine(0.99))
	if res.Relayed < uint64(float64(calls)*2*50*res.Wall.Seconds()*0.9) {
		t.Errorf("hub relayed %d packets, want ~%d", res.Relayed, calls*2*50*int(res.Wall.Seconds()))
	}
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil && n > 0 {
		return n
	}
	return def
}

type countingRx struct{ n atomic.Uint64 }

func (c *countingRx) on(*rtp.Header, []byte, time.Time) { c.n.Add(1) }

func sessionsOf(e *Engine) []*Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Session, 0, len(e.sessions))
	for s := range e.sessions {
		out = append(out, s)
	}
	return out
}

// quantileFine is quantile with 100 µs buckets, as a duration.
func (h *histogram) quantileFine(q float64) time.Duration { return h.quantile(q) }

// timedSend sends a packet carrying its send time every 20 ms until stop:
// payload type 8 through the hub (probes), 9 straight to the other probe
// (the direct baseline; the receiver files packets by payload type).
func timedSend(c *net.UDPConn, to netip.AddrPort, pt uint8, stop chan struct{}) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	pkt := make([]byte, 12+160)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		h := rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: uint16(i), Timestamp: uint32(i) * 160, SSRC: uint32(pt)}
		n, _ := h.MarshalTo(pkt)
		binary.BigEndian.PutUint64(pkt[n:], uint64(time.Now().UnixNano()))
		_, _ = c.WriteToUDPAddrPort(pkt, to)
	}
}

func probeRecv(c *net.UDPConn, viaHub, direct *histogram, stop chan struct{}) {
	buf := make([]byte, 1500)
	var h rtp.Header
	for {
		n, err := c.Read(buf)
		select {
		case <-stop:
			return
		default:
		}
		if err != nil {
			continue
		}
		now := time.Now().UnixNano()
		hn, err := h.Unmarshal(buf[:n])
		if err != nil || n < hn+8 {
			continue
		}
		d := time.Duration(now - int64(binary.BigEndian.Uint64(buf[hn:])))
		if h.PayloadType == 9 {
			direct.add(d)
		} else {
			viaHub.add(d)
		}
	}
}

// relayHub is the child process: 2N sessions relaying pairwise.
func relayHub(t *testing.T) {
	calls := envInt("HOTLINE_BENCH_CALLS", 500)
	e, err := NewEngine(Config{IP: loopback, Sockets: envInt("HOTLINE_BENCH_HUB_SOCKETS", 16), InactivityTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	if !in.Scan() {
		t.Fatal("no phone addresses")
	}
	var phones []string
	if err := json.Unmarshal(in.Bytes(), &phones); err != nil {
		t.Fatal(err)
	}
	ss := make([]*Session, 2*calls)
	addrs := make([]string, 2*calls)
	for i := range ss {
		if ss[i], err = e.NewSession(SessionConfig{Remote: netip.MustParseAddrPort(phones[i]), PayloadType: 8}); err != nil {
			t.Fatal(err)
		}
		addrs[i] = ss[i].LocalAddr().String()
	}
	for i := 0; i < len(ss); i += 2 {
		ss[i].RelayTo(ss[i+1], nil)
		ss[i+1].RelayTo(ss[i], nil)
	}
	b, _ := json.Marshal(addrs)
	fmt.Printf("HUB %s\n", b)
	fmt.Println("HUB READY")
	in.Scan() // START
	st0, cpu0, t0 := e.Stats(), cpuTime(), time.Now()
	in.Scan() // STOP
	st1, cpu1, wall := e.Stats(), cpuTime(), time.Since(t0)
	out, _ := json.Marshal(map[string]any{
		"CPU": cpu1 - cpu0, "Wall": wall,
		"Relayed": st1.PacketsSent - st0.PacketsSent, "Sendmmsg": st1.SendCalls - st0.SendCalls,
		"Received": st1.PacketsReceived - st0.PacketsReceived, "Recvmmsg": st1.RecvCalls - st0.RecvCalls, "Sockets": st1.Sockets,
	})
	fmt.Printf("HUB %s\n", out)
}
