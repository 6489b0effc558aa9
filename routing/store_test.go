package routing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/sqldb"
)

// stores returns the databases a store test runs on: SQLite always,
// PostgreSQL when HOTLINE_TEST_PG_DSN is set.
func storeDSNs(t *testing.T) map[string]string {
	m := map[string]string{"sqlite": filepath.Join(t.TempDir(), "routing.db")}
	if dsn := pgDSN(t); dsn != "" {
		m["postgres"] = dsn
	}
	return m
}

func TestStoreAgents(t *testing.T) {
	for name, dsn := range storeDSNs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := openStoreDSN(t, dsn)
			now := time.Now()
			a, err := s.AddAgent(ctx, NewAgent{ID: "1001", Name: "张三", Extension: "8001", Password: "correct horse",
				Skills: Skills{Appeals: []string{"complaint"}, Languages: []string{"zh-CN", "en"}}}, now)
			if err != nil {
				t.Fatal(err)
			}
			if a.Presence != LoggedOut || a.Skills.Languages[1] != "en" || a.State(now) != LoggedOut {
				t.Fatalf("%+v", a)
			}
			if _, err := s.AddAgent(ctx, NewAgent{ID: "1002", Name: "x", Extension: "8001", Password: "12345678"}, now); !errors.Is(err, ErrAgentExists) {
				t.Fatalf("duplicate extension: %v", err)
			}
			for _, bad := range []NewAgent{{ID: "abc", Name: "x", Extension: "8002", Password: "12345678"}, {ID: "1003", Name: "x", Extension: "8003", Password: "short"},
				{ID: "1004", Name: "x", Extension: "8004", Password: "12345678", Presence: "on-call"}} {
				if _, err := s.AddAgent(ctx, bad, now); !errors.Is(err, ErrBadAgent) {
					t.Fatalf("%+v: %v", bad, err)
				}
			}
			// Only HA1 is kept: RFC 7616 H(user:realm:password).
			c, err := s.Credentials(ctx, "8001")
			if err != nil || c.AgentID != "1001" || c.Realm != DefaultRealm || c.HA1MD5 != HA1("MD5", "8001", "hotline", "correct horse") ||
				c.HA1SHA256 != HA1("SHA-256", "8001", "hotline", "correct horse") || len(c.HA1SHA256) != 64 {
				t.Fatalf("%+v %v", c, err)
			}
			var leaked int
			s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM routing_agents WHERE ha1_md5 LIKE '%horse%' OR name LIKE '%horse%'`).Scan(&leaked)
			if leaked != 0 {
				t.Fatal("password stored")
			}
			if _, err := s.SetPresence(ctx, "1001", Paused, "", now); !errors.Is(err, ErrBadAgent) {
				t.Fatalf("pause without reason: %v", err)
			}
			a, _ = s.SetPresence(ctx, "1001", Paused, "lunch", now)
			if a.StateLabel(now) != "paused:lunch" {
				t.Fatal(a.StateLabel(now))
			}
			// Paused: not reservable.
			if ok, _ := s.Reserve(ctx, "1001", "p1/c1", Ringing, "", now, now.Add(time.Minute)); ok {
				t.Fatal("reserved a paused agent")
			}
			s.SetPresence(ctx, "1001", Available, "", now)
			if ok, _ := s.Reserve(ctx, "1001", "p1/c1", Ringing, "2026112800001", now, now.Add(time.Minute)); !ok {
				t.Fatal("not reserved")
			}
			if err := s.RemoveAgent(ctx, "1001", now); !errors.Is(err, ErrAgentBusy) {
				t.Fatalf("remove during a call: %v", err)
			}
			a, _ = s.Agent(ctx, "1001")
			if a.State(now) != Ringing || a.Case != "2026112800001" {
				t.Fatalf("%+v", a)
			}
			// Two misses in a row pause the agent "no-answer".
			a, _ = s.Release(ctx, "1001", "p1/c1", Release{Missed: true, PauseAfter: 2, Now: now})
			if a.Missed != 1 || a.Presence != Available {
				t.Fatalf("%+v", a)
			}
			s.Reserve(ctx, "1001", "p1/c2", Ringing, "", now, now.Add(time.Minute))
			a, _ = s.Release(ctx, "1001", "p1/c2", Release{Missed: true, PauseAfter: 2, Now: now})
			if a.Presence != Paused || a.PauseReason != PauseNoAnswer {
				t.Fatalf("%+v", a)
			}
			// An answer resets the count; wrap-up blocks reservations until
			// it ends.
			a, _ = s.SetPresence(ctx, "1001", Available, "", now)
			if a.Missed != 0 {
				t.Fatal("manual change keeps misses")
			}
			s.Reserve(ctx, "1001", "p1/c3", Ringing, "", now, now.Add(time.Minute))
			a, _ = s.Release(ctx, "1001", "p1/c3", Release{Answered: true, WrapUntil: now.Add(10 * time.Second), Now: now})
			if a.Calls != 1 || a.State(now) != WrapUp || a.State(now.Add(11*time.Second)) != Available {
				t.Fatalf("%+v", a)
			}
			if ok, _ := s.Reserve(ctx, "1001", "p1/c4", Ringing, "", now.Add(5*time.Second), now.Add(time.Minute)); ok {
				t.Fatal("reserved during wrap-up")
			}
			if ok, _ := s.Reserve(ctx, "1001", "p1/c4", Ringing, "", now.Add(10*time.Second), now.Add(time.Minute)); !ok {
				t.Fatal("not reserved after wrap-up")
			}
			// A crashed holder's reservation expires.
			if ok, _ := s.Reserve(ctx, "1001", "p2/c5", Ringing, "", now.Add(30*time.Second), now.Add(2*time.Minute)); ok {
				t.Fatal("stole a live reservation")
			}
			if ok, _ := s.Reserve(ctx, "1001", "p2/c5", Ringing, "", now.Add(61*time.Second), now.Add(2*time.Minute)); !ok {
				t.Fatal("expired reservation not taken over")
			}
			if err := s.Hold(ctx, "1001", "p1/c4", OnCall, now.Add(3*time.Minute)); !errors.Is(err, ErrNoAgent) {
				t.Fatalf("old holder still holds: %v", err)
			}
			s.Release(ctx, "1001", "p2/c5", Release{Now: now})
			if err := s.RemoveAgent(ctx, "1001", now); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Agent(ctx, "1001"); !errors.Is(err, ErrNoAgent) {
				t.Fatal(err)
			}
		})
	}
}

// TestReservationRace: two stores (as two hotlined processes) on one
// database hammer the same agents; an agent is never held by two calls.
func TestReservationRace(t *testing.T) {
	for name, dsn := range storeDSNs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s1, s2 := openStoreDSN(t, dsn), openStoreDSN(t, dsn)
			const agents = 10
			now := time.Now()
			for i := 0; i < agents; i++ {
				if _, err := s1.AddAgent(ctx, NewAgent{ID: fmt.Sprint(1000 + i), Name: "a", Extension: fmt.Sprint(8000 + i), Password: "12345678", Presence: Available}, now); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			owner := map[string]string{}
			var wins, double atomic.Int64
			var wg sync.WaitGroup
			rounds := 60
			if name == "sqlite" {
				rounds = 20
			}
			for p, s := range []*SQLStore{s1, s2} {
				for g := 0; g < 6; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						rng := rand.New(rand.NewPCG(uint64(p), uint64(g)))
						for i := 0; i < rounds; i++ {
							id := fmt.Sprint(1000 + rng.IntN(agents))
							holder := fmt.Sprintf("p%d/g%d/c%d", p, g, i)
							now := time.Now()
							ok, err := s.Reserve(ctx, id, holder, Ringing, "", now, now.Add(time.Minute))
							if err != nil {
								t.Error(err)
								return
							}
							if !ok {
								continue
							}
							wins.Add(1)
							mu.Lock()
							if owner[id] != "" {
								double.Add(1)
							}
							owner[id] = holder
							mu.Unlock()
							time.Sleep(time.Millisecond)
							mu.Lock()
							delete(owner, id)
							mu.Unlock()
							if _, err := s.Release(ctx, id, holder, Release{Answered: true, Now: time.Now()}); err != nil {
								t.Error(err)
								return
							}
						}
					}()
				}
			}
			wg.Wait()
			if double.Load() != 0 {
				t.Fatalf("%d double reservations", double.Load())
			}
			var calls int64
			l, _ := s2.Agents(ctx)
			for _, a := range l {
				calls += int64(a.Calls)
				if a.ReservedBy != "" {
					t.Fatalf("left reserved: %+v", a)
				}
			}
			if wins.Load() == 0 || calls != wins.Load() {
				t.Fatalf("wins %d, calls booked %d", wins.Load(), calls)
			}
			t.Logf("%s: %d reservations won, none doubled", name, wins.Load())
		})
	}
}

// TestTwoRoutersOneStore: two ACDs (two processes) share the agents; an
// agent never rings for two calls at once.
func TestTwoRoutersOneStore(t *testing.T) {
	dsn := pgDSN(t)
	if dsn == "" {
		dsn = filepath.Join(t.TempDir(), "shared.db")
	}
	ctx := context.Background()
	d := newFakeDialer()
	var routers []*Router
	for i := 0; i < 2; i++ {
		s := openStoreDSN(t, dsn)
		r, err := New(Options{Config: &Config{Queues: []Queue{testQueue("general")}}, Store: s, Dialer: d,
			Tick: 5 * time.Millisecond, Refresh: 20 * time.Millisecond, Holder: fmt.Sprint("proc", i), Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		routers = append(routers, r)
	}
	for _, id := range []string{"1001", "1002"} {
		if _, err := routers[0].AddAgent(ctx, NewAgent{ID: id, Name: "a", Extension: "8" + id, Password: "12345678", Presence: Available}); err != nil {
			t.Fatal(err)
		}
		d.set(id, behaviour{answerAfter: 2 * time.Millisecond, talk: 15 * time.Millisecond})
	}
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newFakeCall(fmt.Sprint("c", i), "13800138000")
			out, err := routers[i%2].Route(ctx, c, queueDecision("general"))
			if err != nil || out.Status != "returned" {
				t.Errorf("call %d: %v %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	// Overlap check: the fake dialer logs ring starts; each agent's rings
	// must be at least answer+talk apart.
	last := map[string]time.Time{}
	for _, r := range d.ringLog() {
		if t0, ok := last[r.agent]; ok && r.at.Sub(t0) < 15*time.Millisecond {
			t.Fatalf("agent %s rang %s after its previous call started", r.agent, r.at.Sub(t0))
		}
		last[r.agent] = r.at
	}
	if n := len(d.ringLog()); n != 12 {
		t.Fatalf("%d rings for 12 calls", n)
	}
}

// TestCallbackNumbersSealed: a callback's number is sealed at rest (the
// cases key ring) and found again through its keyed hash.
func TestCallbackNumbersSealed(t *testing.T) {
	ctx := context.Background()
	key := make([]byte, 32)
	kr, err := cases.NewKeyRing("k1", map[string][]byte{"k1": key})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "cb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := OpenStore(ctx, db, StoreConfig{Sealer: kr, Hash: func(n string) string { return "h:" + n[len(n)-4:] }})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cb, created, err := s.AddCallback(ctx, Callback{Case: "2026112800001", CallID: "c1", Queue: "general", Number: "13800138000", Lang: "zh-CN"}, now)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	var raw string
	db.QueryRowContext(ctx, `SELECT number_sealed FROM routing_callbacks WHERE id = $1`, cb.ID).Scan(&raw)
	if !strings.HasPrefix(raw, "v1.k1.") || strings.Contains(raw, "138") {
		t.Fatalf("stored %q", raw)
	}
	if _, created, _ := s.AddCallback(ctx, Callback{Case: "2026112800002", CallID: "c2", Queue: "general", Number: "13800138000"}, now); created {
		t.Fatal("second open task for one number")
	}
	l, err := s.Callbacks(ctx, CallbackOpen)
	if err != nil || len(l) != 1 || l[0].Number != "13800138000" || l[0].Case != "2026112800001" {
		t.Fatalf("%+v %v", l, err)
	}
	if _, err := s.TakeCallback(ctx, cb.ID, "1001", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeCallback(ctx, cb.ID, "1002", now); !errors.Is(err, ErrNoCallback) {
		t.Fatalf("taken twice: %v", err)
	}
	s.FinishCallback(ctx, cb.ID, CallbackDone, "", now)
	if _, created, _ := s.AddCallback(ctx, Callback{Case: "2026112800003", CallID: "c3", Queue: "general", Number: "13800138000"}, now); !created {
		t.Fatal("a number whose task is done gets no new one")
	}
}
