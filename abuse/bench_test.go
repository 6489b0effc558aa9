package abuse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

// populate fills e with n callers over the week before now: most call once
// or twice, a few often, some with a cut-off last call, a few flagged or
// with a measure.
func populate(e *engine, n int, now time.Time) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		k := keyOf(testHash(fmt.Sprintf("1%010d", i)))
		calls := 1
		switch p := r.IntN(100); {
		case p < 20:
			calls = 2
		case p < 28:
			calls = 3 + r.IntN(3)
		case p < 30:
			calls = 6 + r.IntN(10)
		}
		t := now.Add(-time.Duration(r.IntN(7*24*3600)) * time.Second)
		for j := 0; j < calls; j++ {
			at := t.Add(time.Duration(j) * 20 * time.Minute)
			if at.After(now) {
				break
			}
			e.arrive(k, at, false)
			e.with(k, true, func(st *callerState) {
				e.applyEnd(st, sec(at.Add(3*time.Minute)), r.IntN(10) == 0, r.IntN(200) == 0, at)
			})
		}
		if r.IntN(1000) == 0 {
			e.with(k, true, func(st *callerState) { e.applyFlag(st, sec(t), KindWarned, "w", t) })
		}
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMillionCallersMemory: the in-memory state of a million distinct
// callers stays within 256 MiB (issue 6).
func TestMillionCallersMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a million callers: not in -short")
	}
	now := t0
	before := heap()
	e := newEngine(DefaultPolicy())
	populate(e, 1_000_000, now)
	after := heap()
	mib := float64(after-before) / (1 << 20)
	t.Logf("%d callers: %.1f MiB of state (%.0f bytes per caller)", e.size(), mib, float64(after-before)/float64(e.size()))
	if e.size() < 990_000 {
		t.Fatalf("only %d callers held", e.size())
	}
	if mib > 256 {
		t.Errorf("state of a million callers takes %.1f MiB, over 256", mib)
	}
	runtime.KeepAlive(e)
}

// BenchmarkCheckMillion: the decision on an arriving call (hash, shard
// look-up, rules, event queued) with a million callers' state; reports
// p50/p99 per call and the state's memory.
func BenchmarkCheckMillion(b *testing.B) {
	ctx := context.Background()
	env := newEnv(b, dsns(b)["sqlite"](b), nil)
	now := t0
	before := heap()
	populate(env.svc.eng, 1_000_000, now)
	stateMiB := float64(heap()-before) / (1 << 20)
	// Callers: half known, half new; numbers built before timing.
	r := rand.New(rand.NewPCG(3, 4))
	var lat []time.Duration
	i := 0
	b.ResetTimer()
	for b.Loop() {
		var num string
		if i%2 == 0 {
			num = fmt.Sprintf("1%010d", r.IntN(1_000_000))
		} else {
			num = fmt.Sprintf("2%010d", i)
		}
		at := now.Add(time.Duration(i) * time.Millisecond)
		id := fmt.Sprintf("b%d", i)
		t := time.Now()
		env.svc.Check(ctx, CallStart{CallID: id, Caller: num, At: at})
		lat = append(lat, time.Since(t))
		env.svc.End(ctx, CallEnd{CallID: id, Ended: at.Add(time.Minute), Progress: true, Outcome: "self_service"})
		i++
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(stateMiB, "state-MiB")
	b.ReportMetric(float64(env.svc.Callers()), "callers")
}
