package flows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cq12345/hotline/flows/flowstest"
)

// lineChecker is a Checker for store tests that need no real flow language:
// every line containing "BROKEN" is a problem at that line.
func lineChecker(src []byte) []Problem {
	var ps []Problem
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, "BROKEN") {
			ps = append(ps, Problem{Path: "nodes", Line: i + 1, Message: "broken node"})
		}
	}
	return ps
}

func newStores(t *testing.T, n int) map[string][]*Store {
	t.Helper()
	out := map[string][]*Store{}
	for name, dsn := range flowstest.DSNs(t) {
		for i := 0; i < n; i++ {
			s, err := NewStore(context.Background(), flowstest.Open(t, dsn), lineChecker)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out[name] = append(out[name], s)
		}
	}
	return out
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	for name, ss := range newStores(t, 1) {
		t.Run(name, func(t *testing.T) {
			s := ss[0]
			const id = "chongqing-12345"
			v1, ps, err := s.SaveDraft(ctx, id, []byte("start: greet\n"), "first", "alice")
			if err != nil || len(ps) != 0 || v1.Version != 1 || v1.State != Draft {
				t.Fatalf("draft 1: %+v %v %v", v1, ps, err)
			}
			if _, err := s.Get(ctx, id, 0); !errors.Is(err, ErrNotFound) {
				t.Fatalf("active of an unpublished flow: %v", err)
			}
			if _, err := s.Publish(ctx, id, 1, "alice"); err != nil {
				t.Fatal(err)
			}
			// An invalid draft is saved, with its problems, but never published.
			v2, ps, err := s.SaveDraft(ctx, id, []byte("start: greet\nBROKEN a\nok\nBROKEN b\n"), "bad", "bob")
			if err != nil || v2.Version != 2 || len(ps) != 2 {
				t.Fatalf("draft 2: %+v %v %v", v2, ps, err)
			}
			_, err = s.Publish(ctx, id, 2, "bob")
			var inv *InvalidError
			if !errors.As(err, &inv) || len(inv.Problems) != 2 || inv.Problems[0].Line != 2 || inv.Problems[1].Line != 4 {
				t.Fatalf("publish invalid: %v", err)
			}
			if f, _ := s.Flow(ctx, id); f.ActiveVersion != 1 || f.LatestVersion != 2 {
				t.Fatalf("after refused publish: %+v", f)
			}
			// Publish of 0 means the latest, which is the invalid one.
			if _, err := s.Publish(ctx, id, 0, "bob"); !errors.As(err, &inv) {
				t.Fatalf("publish latest (invalid): %v", err)
			}
			if _, _, err := s.SaveDraft(ctx, id, []byte("start: menu\n"), "", "carol"); err != nil {
				t.Fatal(err)
			}
			if v, err := s.Publish(ctx, id, 0, "carol"); err != nil || v.Version != 3 || v.State != Published {
				t.Fatalf("publish latest: %+v %v", v, err)
			}
			// Publishing the active version again changes nothing.
			if _, err := s.Publish(ctx, id, 3, "carol"); err != nil {
				t.Fatal(err)
			}
			vs, err := s.Versions(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var states []string
			for _, v := range vs {
				states = append(states, fmt.Sprintf("%d:%s", v.Version, v.State))
			}
			if got := strings.Join(states, " "); got != "3:published 2:draft 1:superseded" {
				t.Fatalf("states: %s", got)
			}
			// Roll back to a never-published version: refused.
			if _, err := s.Rollback(ctx, id, 2, "dave"); !errors.Is(err, ErrBadRequest) {
				t.Fatalf("rollback to a draft: %v", err)
			}
			// Roll back to the previous published version.
			v, err := s.Rollback(ctx, id, 0, "dave")
			if err != nil || v.Version != 1 || v.State != Published {
				t.Fatalf("rollback: %+v %v", v, err)
			}
			if v, err := s.Get(ctx, id, 0); err != nil || v.Version != 1 || v.Source != "start: greet\n" {
				t.Fatalf("active after rollback: %+v %v", v, err)
			}
			// Nothing earlier than v1 was published.
			if _, err := s.Rollback(ctx, id, 0, "dave"); !errors.Is(err, ErrBadRequest) {
				t.Fatalf("rollback below v1: %v", err)
			}
			h, err := s.History(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for i, e := range h {
				if e.Seq != i+1 || e.At.IsZero() {
					t.Fatalf("event %d: %+v", i, e)
				}
				lines = append(lines, fmt.Sprintf("%s v%d<-v%d by %s", e.Action, e.Version, e.Previous, e.Actor))
			}
			want := "draft v1<-v0 by alice|publish v1<-v0 by alice|draft v2<-v0 by bob|draft v3<-v0 by carol|publish v3<-v1 by carol|rollback v1<-v3 by dave"
			if got := strings.Join(lines, "|"); got != want {
				t.Fatalf("history:\n got %s\nwant %s", got, want)
			}
			d, err := s.Diff(ctx, id, 1, 3)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(d, "--- chongqing-12345 v1") || !strings.Contains(d, "+++ chongqing-12345 v3") ||
				!strings.Contains(d, "\n-start: greet\n") || !strings.Contains(d, "\n+start: menu\n") {
				t.Fatalf("diff:\n%s", d)
			}
			if d, err := s.Diff(ctx, id, 1, 0); err != nil || d != "" {
				t.Fatalf("diff of equal versions: %q %v", d, err)
			}
			if _, err := s.Diff(ctx, id, 1, 9); !errors.Is(err, ErrNotFound) {
				t.Fatalf("diff with a missing version: %v", err)
			}
			l, err := s.List(ctx)
			if err != nil || len(l) != 1 || l[0].ID != id || l[0].ActiveVersion != 1 || l[0].LatestVersion != 3 || l[0].UpdatedBy != "dave" {
				t.Fatalf("list: %+v %v", l, err)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	ctx := context.Background()
	for name, ss := range newStores(t, 1) {
		t.Run(name, func(t *testing.T) {
			s := ss[0]
			for _, id := range []string{"", "Upper", "../etc", strings.Repeat("a", 65), "a b"} {
				if _, _, err := s.SaveDraft(ctx, id, []byte("x"), "", "a"); !errors.Is(err, ErrBadRequest) {
					t.Errorf("id %q: %v", id, err)
				}
			}
			if _, err := s.Publish(ctx, "nope", 1, "a"); !errors.Is(err, ErrNotFound) {
				t.Errorf("publish of a missing flow: %v", err)
			}
			if _, _, err := s.SaveDraft(ctx, "f", []byte("x"), "", ""); !errors.Is(err, ErrBadRequest) {
				t.Errorf("no actor: %v", err)
			}
		})
	}
}

// Two stores (as two hotlined processes) on one database publish at the
// same time: every version is kept, numbered without gaps, and the history
// is one unbroken chain of activations.
func TestConcurrentPublish(t *testing.T) {
	ctx := context.Background()
	const perStore = 8
	for name, ss := range newStores(t, 2) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 2*perStore)
			for si, s := range ss {
				for i := 0; i < perStore; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						actor := fmt.Sprintf("store%d", si)
						v, _, err := s.SaveDraft(ctx, "f", []byte(fmt.Sprintf("by: %s\nn: %d\n", actor, i)), "", actor)
						if err == nil {
							_, err = s.Publish(ctx, "f", v.Version, actor)
						}
						errs <- err
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			s := ss[0]
			vs, err := s.Versions(ctx, "f")
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != 2*perStore {
				t.Fatalf("%d versions, want %d", len(vs), 2*perStore)
			}
			seen := map[string]bool{}
			for i, v := range vs {
				if v.Version != 2*perStore-i {
					t.Fatalf("version numbers have a gap: %d at %d", v.Version, i)
				}
				full, err := s.Get(ctx, "f", v.Version)
				if err != nil {
					t.Fatal(err)
				}
				if seen[full.Source] {
					t.Fatalf("source stored twice: %q", full.Source)
				}
				seen[full.Source] = true
			}
			h, err := s.History(ctx, "f")
			if err != nil {
				t.Fatal(err)
			}
			prev, publishes := 0, 0
			for i, e := range h {
				if e.Seq != i+1 {
					t.Fatalf("history seq gap at %d: %+v", i, e)
				}
				if e.Action == ActionPublish {
					publishes++
					if e.Previous != prev {
						t.Fatalf("publish %d says previous v%d, but v%d was active", e.Seq, e.Previous, prev)
					}
					prev = e.Version
				}
			}
			if publishes < 1 {
				t.Fatal("no publish in history")
			}
			f, err := s.Flow(ctx, "f")
			if err != nil || f.ActiveVersion != prev {
				t.Fatalf("active %+v, last publish in history v%d (%v)", f, prev, err)
			}
		})
	}
}

func TestSeed(t *testing.T) {
	ctx := context.Background()
	for name, ss := range newStores(t, 2) {
		t.Run(name, func(t *testing.T) {
			if _, err := ss[0].Seed(ctx, "x", []byte("BROKEN\n"), "hotlined"); err == nil {
				t.Fatal("an invalid default flow was seeded")
			}
			var wg sync.WaitGroup
			imported := make([]bool, 2)
			for i, s := range ss {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := s.Seed(ctx, "chongqing-12345", []byte("start: greet\n"), "hotlined")
					if err != nil {
						t.Error(err)
					}
					imported[i] = ok
				}()
			}
			wg.Wait()
			if imported[0] == imported[1] {
				t.Fatalf("imported by %v, want exactly one", imported)
			}
			v, err := ss[1].Get(ctx, "chongqing-12345", 0)
			if err != nil || v.Version != 1 || v.State != Published || v.CreatedBy != "hotlined" {
				t.Fatalf("seeded: %+v %v", v, err)
			}
			if ok, err := ss[0].Seed(ctx, "chongqing-12345", []byte("other\n"), "hotlined"); ok || err != nil {
				t.Fatalf("second seed: %v %v", ok, err)
			}
			h, _ := ss[0].History(ctx, "chongqing-12345")
			if len(h) != 1 || h[0].Action != ActionImport {
				t.Fatalf("history: %+v", h)
			}
		})
	}
}
