package cases_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cq12345/hotline/cases"
)

// BenchmarkCreateForCall measures the create the greeting waits on, from
// several goroutines at once (calls arrive concurrently): cases/s and the
// p99 latency, on each store, bare and behind Durable. make bench prints
// these figures; no test asserts on them.
func BenchmarkCreateForCall(b *testing.B) {
	var seq atomic.Int64
	for name, mk := range dsns(b) {
		for _, wrap := range []string{"sql", "durable", "store-down"} {
			b.Run(name+"/"+wrap, func(b *testing.B) {
				p := testProtector(b)
				s, _ := openSQL(b, mk(b), p, cases.DuePolicy{})
				var store cases.Store = s
				if wrap != "sql" {
					var inner cases.Store = s
					if wrap == "store-down" {
						// Every create goes to the journal: the latency a
						// call sees during an outage.
						fs := &faultyStore{Store: s}
						fs.mode.Store(down)
						inner = fs
					}
					j, err := cases.OpenJournal(filepath.Join(b.TempDir(), "journal"))
					if err != nil {
						b.Fatal(err)
					}
					d, err := cases.NewDurable(inner, cases.DurableConfig{Journal: j, Keys: p.Keys, Timeout: 2 * time.Second})
					if err != nil {
						b.Fatal(err)
					}
					defer d.Close()
					store = d
				}
				ctx := context.Background()
				var mu sync.Mutex
				lat := make([]time.Duration, 0, b.N)
				b.SetParallelism(4)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					for pb.Next() {
						t0 := time.Now()
						_, err := store.CreateForCall(ctx, cases.NewCall{CallID: fmt.Sprintf("bench-%d", seq.Add(1)),
							Caller: "13800138000", Dialled: "12345", Plane: "sip", Started: t0, Answered: t0})
						if err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
				elapsed := time.Since(start)
				b.StopTimer()
				if len(lat) == 0 {
					return
				}
				slices.Sort(lat)
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "cases/s")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			})
		}
	}
}
