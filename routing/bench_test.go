package routing

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// benchACD builds an ACD with agents agents (free of them free, the rest
// on calls) and calls waiting calls spread over the default queues, with
// skills: queue "complaints" needs the complaint skill, a tenth of the
// callers speak English.
func benchACD(b *testing.B, strategy string, agents, free, calls int) *Router {
	t0 := time.Now()
	r := &Router{queues: map[string]*queue{}, agents: map[string]*Agent{}, pending: map[string]bool{}, held: map[string]*held{}}
	for i, id := range DefaultQueues() {
		qc := testQueue(id)
		qc.Strategy = strategy
		qc.Priority = i % 2
		if id == "complaints" {
			qc.Skills = Skills{Appeals: []string{"complaint"}}
		}
		q := &queue{cfg: qc}
		r.queues[id] = q
		r.qorder = append(r.qorder, q)
	}
	for i := 0; i < agents; i++ {
		a := &Agent{ID: fmt.Sprint(10000 + i), Presence: Available, IdleSince: t0.Add(-time.Duration(i*7919%agents) * time.Second), Calls: i % 13}
		if i%2 == 0 {
			a.Skills.Appeals = []string{"complaint"}
		}
		if i%5 == 0 {
			a.Skills.Languages = []string{"zh-CN", "en"}
		}
		if i >= free {
			a.ReservedBy, a.ReservedUntil, a.Activity = "other", t0.Add(time.Hour), OnCall
		}
		r.agents[a.ID] = a
	}
	for i := 0; i < calls; i++ {
		q := r.qorder[i%len(r.qorder)]
		r.seq++
		w := &waiter{seq: r.seq, call: newFakeCall(fmt.Sprint("c", i), ""), joined: t0.Add(time.Duration(i) * time.Millisecond), lang: "zh-CN"}
		if i%10 == 0 {
			w.lang = "en"
		}
		r.enqueueLocked(q, w)
	}
	return r
}

func undo(r *Router, as []assignment) {
	for _, a := range as {
		a.w.ringing = ""
		delete(r.pending, a.agent.ID)
	}
}

// BenchmarkDecide: one ACD decision with 500 agents and 2,000 waiting
// calls. "one-free" is the steady state (an agent finishes wrap-up and
// gets the next call); "all-free" matches 500 agents at once; "none-free"
// is the cost of a tick with nobody free.
func BenchmarkDecide(b *testing.B) {
	for _, strategy := range []string{LongestIdle, RoundRobin, FewestCalls} {
		for _, c := range []struct {
			name string
			free int
		}{{"one-free", 1}, {"all-free", 500}, {"none-free", 0}} {
			b.Run(strategy+"/"+c.name, func(b *testing.B) {
				r := benchACD(b, strategy, 500, c.free, 2000)
				now := time.Now()
				n := 0
				b.ResetTimer()
				for b.Loop() {
					as := r.decide(now)
					n = len(as)
					b.StopTimer()
					undo(r, as)
					b.StartTimer()
				}
				b.ReportMetric(float64(n), "assigned/op")
			})
		}
	}
}

// BenchmarkReserve: one reservation and its release in the store (SQLite;
// PostgreSQL when HOTLINE_TEST_PG_DSN is set).
func BenchmarkReserve(b *testing.B) {
	dsns := map[string]string{"sqlite": b.TempDir() + "/bench.db"}
	if dsn := pgDSN(b); dsn != "" {
		dsns["postgres"] = dsn
	}
	for name, dsn := range dsns {
		b.Run(name, func(b *testing.B) {
			s := openStoreDSN(b, dsn)
			ctx := context.Background()
			s.AddAgent(ctx, NewAgent{ID: "1001", Name: "a", Extension: "8001", Password: "12345678", Presence: Available}, time.Now())
			for b.Loop() {
				now := time.Now()
				ok, err := s.Reserve(ctx, "1001", "bench", Ringing, "", now, now.Add(time.Minute))
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
				if _, err := s.Release(ctx, "1001", "bench", Release{Now: now}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
