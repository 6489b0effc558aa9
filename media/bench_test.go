package media

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// histogram counts interarrival times in 100 µs buckets up to 200 ms.
type histogram struct {
	buckets [2001]atomic.Uint64
	max     atomic.Int64
}

func (h *histogram) add(d time.Duration) {
	i := min(int(d/(100*time.Microsecond)), len(h.buckets)-1)
	h.buckets[i].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *histogram) reset() {
	for i := range h.buckets {
		h.buckets[i].Store(0)
	}
	h.max.Store(0)
}

// quantile returns the upper bound of the bucket holding quantile q.
func (h *histogram) quantile(q float64) time.Duration {
	var total uint64
	for i := range h.buckets {
		total += h.buckets[i].Load()
	}
	if total == 0 {
		return 0
	}
	target := uint64(q * float64(total))
	var acc uint64
	for i := range h.buckets {
		acc += h.buckets[i].Load()
		if acc > target {
			return time.Duration(i+1) * 100 * time.Microsecond
		}
	}
	return 200 * time.Millisecond
}

// interarrival returns an OnPacket that feeds h; last is the session's
// previous arrival (only its receive goroutine touches it).
func interarrival(h *histogram) func(*rtp.Header, []byte, time.Time) {
	var last time.Time
	return func(_ *rtp.Header, _ []byte, at time.Time) {
		if !last.IsZero() {
			h.add(at.Sub(last))
		}
		last = at
	}
}

func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPacer runs N calls between two engines on loopback with audio
// both ways, as callsim load against hotlined does, and reports per packet
// (one op = one packet sent, and received by the other engine):
//   - ns/op: wall time per packet (set by the pacing, not by CPU);
//   - cpu-ns/pkt: process CPU (both engines, send + receive) per packet;
//   - cpu-ms/call-min: the same scaled to one endpoint of one call for a
//     minute (3,000 packets sent and 3,000 received);
//   - p99-ms, max-ms: receiver interarrival; late-ticks; lost (sequence
//     gaps); pkts/sendmmsg, pkts/recvmmsg (mean batch sizes);
//     heap-B/session (heap in use per session, both engines).
//
// Run: go test -run '^$' -bench Pacer -benchtime 400000x ./media
func BenchmarkPacer(b *testing.B) {
	for _, calls := range []int{200, 1000, 2000} {
		b.Run(fmt.Sprintf("calls=%d", calls), func(b *testing.B) { benchPacer(b, calls) })
	}
}

func benchPacer(b *testing.B, calls int) {
	// MEDIA_BENCH_SOCKETS sets both pools (default 16; the answering side
	// grows to keep (socket, remote) pairs unique).
	socks, _ := strconv.Atoi(os.Getenv("MEDIA_BENCH_SOCKETS"))
	a := newEngine(b, Config{Sockets: socks})
	z := newEngine(b, Config{Sockets: socks})
	var hist histogram
	prompt := frames(50, 0)
	heap0 := heapInUse()
	var all []*Session
	lost := func() (n uint64) {
		for _, s := range all {
			n += s.Stats().Lost
		}
		return n
	}
	for range calls {
		sa, err := a.NewSession(SessionConfig{PayloadType: 8, OnPacket: interarrival(&hist)})
		if err != nil {
			b.Fatal(err)
		}
		sz, err := z.NewSession(SessionConfig{Remote: sa.LocalAddr(), PayloadType: 8, OnPacket: interarrival(&hist)})
		if err != nil {
			b.Fatal(err)
		}
		sa.SetRemote(sz.LocalAddr())
		sa.Play(prompt, PlayOptions{Loop: true})
		sz.Play(prompt, PlayOptions{Loop: true})
		all = append(all, sa, sz)
	}
	time.Sleep(time.Second) // every call talking
	heapPerSession := float64(heapInUse()-heap0) / float64(2*calls)
	hist.reset()
	lateA, lateZ := a.Stats().Late, z.Stats().Late
	sent0 := a.Stats().PacketsSent + z.Stats().PacketsSent
	recv0 := a.Stats().PacketsReceived + z.Stats().PacketsReceived
	calls0 := a.Stats().SendCalls + z.Stats().SendCalls
	rcalls0 := a.Stats().RecvCalls + z.Stats().RecvCalls
	lost0 := lost()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	start := time.Now()
	b.ResetTimer()
	for a.Stats().PacketsSent+z.Stats().PacketsSent-sent0 < uint64(b.N) {
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	wall := time.Since(start)
	sent := a.Stats().PacketsSent + z.Stats().PacketsSent - sent0
	recv := a.Stats().PacketsReceived + z.Stats().PacketsReceived - recv0
	_ = recv // receive counts lag sends by the packets in flight; lost counts gaps
	b.ReportMetric(float64(sent)/float64(a.Stats().SendCalls+z.Stats().SendCalls-calls0), "pkts/sendmmsg")
	b.ReportMetric(float64(recv)/float64(a.Stats().RecvCalls+z.Stats().RecvCalls-rcalls0), "pkts/recvmmsg")
	perPkt := float64(cpu.Nanoseconds()) / float64(sent)
	b.ReportMetric(perPkt, "cpu-ns/pkt")
	b.ReportMetric(perPkt*3000/1e6, "cpu-ms/call-min")
	b.ReportMetric(float64(cpu)/float64(wall), "cores")
	b.ReportMetric(float64(hist.quantile(0.99))/1e6, "p99-ms")
	b.ReportMetric(float64(hist.max.Load())/1e6, "max-ms")
	b.ReportMetric(float64(a.Stats().Late-lateA+z.Stats().Late-lateZ), "late-ticks")
	b.ReportMetric(float64(lost()-lost0), "lost")
	b.ReportMetric(heapPerSession, "heap-B/session")
	b.ReportMetric(float64(z.Stats().Sockets), "answer-sockets")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(sent), "allocs/pkt")
}

// BenchmarkDTMFToPrompt measures what issue 2 calls DTMF-to-next-prompt
// latency at the engine level: a plain UDP "phone" sends the first RFC 4733
// packet of a digit; the engine's OnDigit barges in (Stop, Play of the next
// prompt) as the IVR does; the phone stamps the first packet of the next
// prompt. Reported as p50-ms/p99-ms, with `bg` background calls (audio both
// ways) sharing the engines.
//
// Run: go test -run '^$' -bench DTMFToPrompt -benchtime 300x ./media
func BenchmarkDTMFToPrompt(b *testing.B) {
	for _, bg := range []int{0, 1000} {
		b.Run(fmt.Sprintf("bg=%d", bg), func(b *testing.B) { benchDTMFToPrompt(b, bg) })
	}
}

func benchDTMFToPrompt(b *testing.B, bg int) {
	ivr := newEngine(b, Config{})
	other := newEngine(b, Config{})
	prompt, next := frames(50, 0), frames(50, 100)
	for range bg {
		s1, err := ivr.NewSession(SessionConfig{PayloadType: 8})
		if err != nil {
			b.Fatal(err)
		}
		s2, err := other.NewSession(SessionConfig{Remote: s1.LocalAddr(), PayloadType: 8})
		if err != nil {
			b.Fatal(err)
		}
		s1.SetRemote(s2.LocalAddr())
		s1.Play(prompt, PlayOptions{Loop: true})
		s2.Play(prompt, PlayOptions{Loop: true})
	}
	phone, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer phone.Close()
	var s *Session
	s, err = ivr.NewSession(SessionConfig{
		Remote: phone.LocalAddr().(*net.UDPAddr).AddrPort(), PayloadType: 8, DTMFPayloadType: 101,
		OnDigit: func(byte) { s.Stop(); s.Play(next, PlayOptions{Loop: true}) },
	})
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	lat := make([]time.Duration, 0, b.N)
	buf := make([]byte, 1500)
	pkt := make([]byte, 16)
	b.ResetTimer()
	for i := range b.N {
		s.Play(prompt, PlayOptions{Loop: true})
		// Skip what is left of the previous next-prompt until the prompt
		// plays again; everything queued behind it is prompt audio.
		_ = phone.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			m, err := phone.Read(buf)
			if err != nil {
				b.Fatalf("prompt did not restart: %v", err)
			}
			if m > 12 && buf[12] < 100 {
				break
			}
		}
		time.Sleep(time.Duration(i%20) * time.Millisecond) // random phase against the grid
		h := rtp.Header{Version: 2, Marker: true, PayloadType: 101, SequenceNumber: uint16(i), Timestamp: uint32(i) * 8000, SSRC: 1}
		n, _ := h.MarshalTo(pkt)
		DTMFEvent{Event: 1, Volume: 10, Duration: 160}.MarshalTo(pkt[n:])
		t0 := time.Now()
		if _, err := phone.WriteToUDPAddrPort(pkt[:n+4], s.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		_ = phone.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			m, err := phone.Read(buf)
			if err != nil {
				b.Fatalf("no next prompt: %v", err)
			}
			if m > 12 && buf[12] >= 100 {
				lat = append(lat, time.Since(t0))
				break
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
}
