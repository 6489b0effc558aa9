package flows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cq12345/hotline/flows/flowstest"
	"github.com/cq12345/hotline/ivr"
)

// waitVersion polls live until flowID is at version, failing after limit.
// It returns how long it took.
func waitVersion(t *testing.T, live *Live, flowID string, version int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if _, v := live.Current(flowID); v == version {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			_, v := live.Current(flowID)
			t.Fatalf("%s still at v%d after %v, want v%d", flowID, v, limit, version)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// One process (store a) publishes; another (store b, its own pool on the
// same database) serves calls through Live. New calls see the publish within
// a second; a call that pinned the old flow keeps it.
func TestLiveFollowsPublishes(t *testing.T) {
	ctx := context.Background()
	env := flowstest.Env(t)
	load := LoaderFor(env)
	for name, dsn := range flowstest.DSNs(t) {
		t.Run(name, func(t *testing.T) {
			a, err := NewStore(ctx, flowstest.Open(t, dsn), load.Checker())
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewStore(ctx, flowstest.Open(t, dsn), load.Checker())
			if err != nil {
				t.Fatal(err)
			}
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

			if ok, err := a.Seed(ctx, "small", []byte(flowstest.SmallFlow), "hotlined"); !ok || err != nil {
				t.Fatalf("seed: %v %v", ok, err)
			}
			live := NewLive(b, load, nil)
			if f, v := live.Current("small"); f != nil || v != 0 {
				t.Fatalf("before refresh: %v %d", f, v)
			}
			if err := live.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			pinned, v := live.Current("small") // a call starts on v1
			if pinned == nil || v != 1 {
				t.Fatalf("after refresh: %v v%d", pinned, v)
			}
			rctx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); live.Run(rctx) }()
			defer func() { cancel(); wg.Wait() }()

			d, _, err := a.SaveDraft(ctx, "small", []byte(flowstest.SmallFlowV2), "4 to an agent", "alice")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Publish(ctx, "small", d.Version, "alice"); err != nil {
				t.Fatal(err)
			}
			took := waitVersion(t, live, "small", 2, time.Second)
			t.Logf("%s: publish by another process seen after %v", name, took)
			cur, _ := live.Current("small")
			if _, ok := cur.Node("to-12315"); ok {
				t.Fatal("v2 still has the 12315 node")
			}
			// The call that started on v1 still runs v1.
			if _, ok := pinned.Node("to-12315"); !ok {
				t.Fatal("the pinned v1 flow changed under its call")
			}
			// An invalid draft never reaches Live.
			if _, _, err := a.SaveDraft(ctx, "small", []byte(flowstest.BrokenFlow), "", "mallory"); err != nil {
				t.Fatal(err)
			}
			var inv *InvalidError
			if _, err := a.Publish(ctx, "small", 0, "mallory"); !errors.As(err, &inv) || len(inv.Problems) < 3 {
				t.Fatalf("broken publish: %v", err)
			}
			// Rollback through b (this process): seen at once via the poke.
			if _, err := b.Rollback(ctx, "small", 1, "bob"); err != nil {
				t.Fatal(err)
			}
			waitVersion(t, live, "small", 1, time.Second)
			if _, v := live.Current("small"); v != 1 {
				t.Fatalf("after rollback v%d", v)
			}
		})
	}
}

// A published version that this process cannot load (its environment lacks
// something the publisher had) is skipped: calls keep the previous version.
func TestLiveKeepsPreviousWhenLoadFails(t *testing.T) {
	ctx := context.Background()
	env := flowstest.Env(t)
	good := LoaderFor(env)
	for name, dsn := range flowstest.DSNs(t) {
		t.Run(name, func(t *testing.T) {
			s, err := NewStore(ctx, flowstest.Open(t, dsn), good.Checker())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Seed(ctx, "small", []byte(flowstest.SmallFlow), "hotlined"); err != nil {
				t.Fatal(err)
			}
			// This process knows no destination 12315.
			narrow := env
			narrow.Destinations = map[string]bool{}
			live := NewLive(s, LoaderFor(narrow), nil)
			live.cur["small"] = Pinned{Flow: mustLoad(t, good, flowstest.SmallFlowV2), Version: 7}
			err = live.Refresh(ctx)
			if err == nil || !strings.Contains(err.Error(), "12315") {
				t.Fatalf("refresh: %v", err)
			}
			if _, v := live.Current("small"); v != 7 {
				t.Fatalf("kept v%d, want the previous v7", v)
			}
			// The failure is remembered, not retried (and logged) every poll.
			if err := live.Refresh(ctx); err != nil {
				t.Fatalf("second refresh: %v", err)
			}
		})
	}
}

func mustLoad(t *testing.T, ld Loader, src string) *ivr.Flow {
	t.Helper()
	f, err := ld([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestProblemsOf(t *testing.T) {
	if ProblemsOf(nil) != nil {
		t.Fatal("problems from no error")
	}
	ps := ProblemsOf(errors.New("disk on fire"))
	if len(ps) != 1 || ps[0].Message != "disk on fire" {
		t.Fatalf("%+v", ps)
	}
	_, err := LoaderFor(flowstest.Env(t))([]byte(flowstest.BrokenFlow))
	ps = ProblemsOf(err)
	var lines []string
	for _, p := range ps {
		if p.Line == 0 || p.Path == "" {
			t.Errorf("problem without place: %+v", p)
		}
		lines = append(lines, p.String())
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{"nowhere", "no-such-queue", "no-such-prompt"} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem mentions %q:\n%s", want, all)
		}
	}
}
