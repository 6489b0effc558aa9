package phone

import (
	"context"
	"fmt"
	"io"
	"runtime/metrics"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cq12345/hotline/prompts"
)

// LoadConfig describes a load run: Calls calls started at Rate per second,
// each held Hold after its answer with RTP both ways, then ended by BYE.
type LoadConfig struct {
	Dial DialOptions // template: every call dials the same
	// FromStep numbers the callers: call i comes from Dial.From + i*FromStep
	// (when From is all digits), so that a server's per-caller limits
	// (abuse detection) do not see one caller dialling N times. 0: all calls
	// come from Dial.From.
	FromStep int64
	Calls    int
	Rate     float64       // calls started per second
	Hold     time.Duration // from the answer to our BYE
	// Optional DTMF: each call sends Digits as Script does.
	Digits     []byte
	DTMFMode   string
	DTMFAfter  time.Duration
	DTMFAnchor string
	Send       func(prompts.Codec) []byte
}

// LoadProgress is a snapshot for a live progress line.
type LoadProgress struct {
	Started, Up, Failed, Ended int64
	Elapsed                    time.Duration
}

// LoadReport is what `callsim load --json` prints.
type LoadReport struct {
	Calls        int     `json:"calls"`
	Rate         float64 `json:"rate"`
	HoldMS       int64   `json:"hold_ms"`
	Transport    string  `json:"transport"`
	SetupsOK     int     `json:"setups_ok"`
	SetupsFailed int     `json:"setups_failed"`
	// Failures counts failed setups by SIP status ("503") or by local
	// cause ("error", "cancel").
	Failures map[string]int `json:"failures"`
	// Calls answered that did not end with our BYE (the far end hung up
	// early, or our BYE failed).
	EndedEarly    int            `json:"ended_early"`
	EndedBy       map[string]int `json:"ended_by"`
	SetupLatency  Summary        `json:"setup_latency_ms"`
	SetupRate     float64        `json:"setup_rate"` // answers per second while setting up
	MaxConcurrent int64          `json:"max_concurrent"`
	Interarrival  Summary        `json:"interarrival_ms"`
	PacketsRecv   uint64         `json:"packets_received"`
	PacketsLost   uint64         `json:"packets_lost"`
	LossRatio     float64        `json:"loss_ratio"`
	PacketsSent   uint64         `json:"packets_sent"`
	DTMFToNext    *Summary       `json:"dtmf_to_next_prompt_ms,omitempty"`
	DTMFNoNext    int            `json:"dtmf_without_next_prompt,omitempty"`
	// Live heap of callsim (runtime/metrics, sampled twice a second): the
	// peak, and the peak divided by the peak of concurrent calls.
	HeapPeakBytes    uint64  `json:"heap_peak_bytes"`
	HeapPerCallBytes uint64  `json:"heap_per_call_bytes"`
	CPUUserMS        int64   `json:"cpu_user_ms"`
	CPUSystemMS      int64   `json:"cpu_system_ms"`
	CPUPerCallMinMS  float64 `json:"cpu_ms_per_call_minute"`
	DurationMS       int64   `json:"duration_ms"`
}

// Load runs a load test and returns its report. progress, when not nil, is
// called about twice a second (on a goroutine of Load's, stopped before Load
// returns) and once at the end. Cancelling ctx stops starting calls and
// hangs up the calls up.
func (p *Phone) Load(ctx context.Context, cfg LoadConfig, progress func(LoadProgress)) LoadReport {
	start := time.Now()
	cpu0 := cpuTime()
	rep := LoadReport{
		Calls: cfg.Calls, Rate: cfg.Rate, HoldMS: cfg.Hold.Milliseconds(), Transport: cfg.Dial.Transport,
		Failures: map[string]int{}, EndedBy: map[string]int{},
	}
	if rep.Transport == "" {
		rep.Transport = "udp"
	}
	var (
		started, up, failed, ended atomic.Int64
		maxUp                      atomic.Int64
		mu                         sync.Mutex
		setups                     []time.Duration
		dtmfLat                    []time.Duration
		iat                        Histogram
		firstInvite, lastAnswer    time.Time
		wg                         sync.WaitGroup
	)
	setups = make([]time.Duration, 0, cfg.Calls)
	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	var heapPeak uint64
	progressDone.Add(1)
	go func() {
		defer progressDone.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			select {
			case <-t.C:
				if progress != nil {
					progress(LoadProgress{Started: started.Load(), Up: up.Load(), Failed: failed.Load(), Ended: ended.Load(), Elapsed: time.Since(start)})
				}
				metrics.Read(sample)
				if sample[0].Value.Kind() == metrics.KindUint64 {
					h := sample[0].Value.Uint64()
					heapPeak = max(heapPeak, h)
				}
			case <-stopProgress:
				return
			}
		}
	}()
	script := Script{
		Digits: cfg.Digits, DTMFMode: cfg.DTMFMode, DTMFAfter: cfg.DTMFAfter, DTMFAnchor: cfg.DTMFAnchor,
		HangupAfter: cfg.Hold, Send: cfg.Send,
		OnAnswered: func() {
			n := up.Add(1)
			for {
				m := maxUp.Load()
				if n <= m || maxUp.CompareAndSwap(m, n) {
					break
				}
			}
		},
	}
	interval := time.Duration(float64(time.Second) / max(cfg.Rate, 0.001))
launch:
	for i := 0; i < cfg.Calls; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				break launch
			}
		}
		started.Add(1)
		wg.Add(1)
		dial := cfg.Dial
		dial.From = nthCaller(cfg.Dial.From, int64(i)*cfg.FromStep)
		go func() {
			defer wg.Done()
			r := p.Run(ctx, dial, script)
			if r.Answered {
				up.Add(-1)
			} else {
				failed.Add(1)
			}
			ended.Add(1)
			mu.Lock()
			defer mu.Unlock()
			rep.EndedBy[r.EndedBy]++
			if !r.Answered {
				rep.SetupsFailed++
				key := strconv.Itoa(r.SIPStatus)
				if r.SIPStatus == 0 || r.EndedBy == EndedError {
					key = r.EndedBy
					if r.SIPStatus != 0 {
						key += "-" + strconv.Itoa(r.SIPStatus)
					}
				}
				rep.Failures[key]++
				return
			}
			rep.SetupsOK++
			if r.EndedBy != EndedLocal {
				rep.EndedEarly++
			}
			setups = append(setups, time.Duration(r.SetupMS*float64(time.Millisecond)))
			inviteAt := r.answeredAt.Add(-time.Duration(r.SetupMS * float64(time.Millisecond)))
			if firstInvite.IsZero() || inviteAt.Before(firstInvite) {
				firstInvite = inviteAt
			}
			if r.answeredAt.After(lastAnswer) {
				lastAnswer = r.answeredAt
			}
			iat.Merge(r.iat)
			rep.PacketsRecv += r.RTPReceived
			rep.PacketsLost += r.RTPLost
			rep.PacketsSent += r.RTPSent
			for _, ev := range r.DTMFSent.Events {
				if ev.NextPromptMS != nil {
					dtmfLat = append(dtmfLat, time.Duration(*ev.NextPromptMS*float64(time.Millisecond)))
				} else {
					rep.DTMFNoNext++
				}
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	progressDone.Wait()
	if progress != nil {
		progress(LoadProgress{Started: started.Load(), Up: up.Load(), Failed: failed.Load(), Ended: ended.Load(), Elapsed: time.Since(start)})
	}

	rep.SetupLatency = SummariseDurations(setups)
	if span := lastAnswer.Sub(firstInvite); rep.SetupsOK > 1 && span > 0 {
		rep.SetupRate = float64(rep.SetupsOK) / span.Seconds()
	}
	rep.MaxConcurrent = maxUp.Load()
	rep.HeapPeakBytes = heapPeak
	if rep.MaxConcurrent > 0 {
		rep.HeapPerCallBytes = heapPeak / uint64(rep.MaxConcurrent)
	}
	rep.Interarrival = iat.Summary()
	if total := rep.PacketsRecv + rep.PacketsLost; total > 0 {
		rep.LossRatio = float64(rep.PacketsLost) / float64(total)
	}
	if len(cfg.Digits) > 0 {
		s := SummariseDurations(dtmfLat)
		rep.DTMFToNext = &s
	}
	cpu := cpuTime().sub(cpu0)
	rep.CPUUserMS, rep.CPUSystemMS = cpu.user.Milliseconds(), cpu.sys.Milliseconds()
	if callMin := float64(rep.SetupsOK) * cfg.Hold.Minutes(); callMin > 0 {
		rep.CPUPerCallMinMS = float64((cpu.user + cpu.sys).Milliseconds()) / callMin
	}
	rep.DurationMS = time.Since(start).Milliseconds()
	return rep
}

// nthCaller adds n to a number made of digits, keeping its length (it
// wraps around instead of growing).
func nthCaller(from string, n int64) string {
	if n == 0 || from == "" || len(from) > 18 {
		return from
	}
	v, err := strconv.ParseInt(from, 10, 64)
	if err != nil || v < 0 {
		return from
	}
	mod := int64(1)
	for range len(from) {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", len(from), (v+n)%mod)
}

type cpuUsage struct{ user, sys time.Duration }

func cpuTime() cpuUsage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuUsage{}
	}
	return cpuUsage{user: time.Duration(ru.Utime.Nano()), sys: time.Duration(ru.Stime.Nano())}
}

func (c cpuUsage) sub(o cpuUsage) cpuUsage { return cpuUsage{c.user - o.user, c.sys - o.sys} }

// WriteText prints a short human summary of a load run.
func (r *LoadReport) WriteText(w io.Writer) error {
	fails := make([]string, 0, len(r.Failures))
	for k, n := range r.Failures {
		fails = append(fails, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(fails)
	_, err := fmt.Fprintf(w, "load: %d calls at %.0f/s held %.1f s over %s in %.1f s\n"+
		"setups: %d ok, %d failed %v; latency p50 %.1f p99 %.1f max %.1f ms; %.0f setups/s; max %d concurrent\n"+
		"RTP: received %d, lost %d (%.4f%%), sent %d; interarrival p50 %.2f p99 %.2f max %.2f ms\n",
		r.Calls, r.Rate, float64(r.HoldMS)/1000, r.Transport, float64(r.DurationMS)/1000,
		r.SetupsOK, r.SetupsFailed, fails, r.SetupLatency.P50, r.SetupLatency.P99, r.SetupLatency.Max, r.SetupRate, r.MaxConcurrent,
		r.PacketsRecv, r.PacketsLost, 100*r.LossRatio, r.PacketsSent, r.Interarrival.P50, r.Interarrival.P99, r.Interarrival.Max)
	if err != nil {
		return err
	}
	if r.DTMFToNext != nil {
		if _, err := fmt.Fprintf(w, "DTMF to next prompt: p50 %.1f p99 %.1f max %.1f ms over %d digits (%d without a next prompt)\n",
			r.DTMFToNext.P50, r.DTMFToNext.P99, r.DTMFToNext.Max, r.DTMFToNext.Count, r.DTMFNoNext); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(w, "callsim CPU: user %.1f s, system %.1f s (%.1f ms per call-minute); heap peak %.1f MiB (%.1f KiB per call)\n",
		float64(r.CPUUserMS)/1000, float64(r.CPUSystemMS)/1000, r.CPUPerCallMinMS, float64(r.HeapPeakBytes)/(1<<20), float64(r.HeapPerCallBytes)/1024)
	return err
}
