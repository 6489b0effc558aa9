package cases_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/sqldb"
)

// Fault modes of faultyStore.
const (
	up         int32 = iota
	down             // refuses at once, as a closed port does
	slow             // hangs until the caller's timeout
	lateCommit       // writes, then reports a timeout (the reply was lost)
)

// faultyStore injects outages in front of a real store. Reads pass.
type faultyStore struct {
	cases.Store
	mode atomic.Int32
}

func (f *faultyStore) fault(ctx context.Context) error {
	switch f.mode.Load() {
	case down:
		return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	case slow:
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *faultyStore) CreateForCall(ctx context.Context, n cases.NewCall) (*cases.Case, error) {
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	c, err := f.Store.CreateForCall(ctx, n)
	if err == nil && f.mode.Load() == lateCommit {
		return nil, context.DeadlineExceeded
	}
	return c, err
}

func (f *faultyStore) AppendEvent(ctx context.Context, e cases.Event) error {
	if err := f.fault(ctx); err != nil {
		return err
	}
	err := f.Store.AppendEvent(ctx, e)
	if err == nil && f.mode.Load() == lateCommit {
		return context.DeadlineExceeded
	}
	return err
}

func (f *faultyStore) AppendAudit(ctx context.Context, a cases.AuditEntry) error {
	if err := f.fault(ctx); err != nil {
		return err
	}
	return f.Store.AppendAudit(ctx, a)
}

func (f *faultyStore) ReserveNumbers(ctx context.Context, day string, n int) ([]string, error) {
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	return f.Store.(cases.NumberReserver).ReserveNumbers(ctx, day, n)
}

func newDurable(t *testing.T, s cases.Store, p *cases.Protector, journal string, block int) *cases.Durable {
	t.Helper()
	j, err := cases.OpenJournal(journal)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cases.NewDurable(s, cases.DurableConfig{Journal: j, Keys: p.Keys, Timeout: 150 * time.Millisecond,
		RetryEvery: 20 * time.Millisecond, ReserveBlock: block})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// call writes one call as the call path does: case, path, end.
func call(t *testing.T, s cases.Store, id string, at time.Time) *cases.Case {
	t.Helper()
	ctx := context.Background()
	c, err := s.CreateForCall(ctx, cases.NewCall{CallID: id, Caller: "13800138000", Dialled: "12345", Plane: "sip", Started: at, Answered: at})
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	for i, node := range []string{"welcome", "main", "queue"} {
		e := cases.NewEvent(c.ID, cases.EventPath)
		e.At, e.Node, e.Digits = at.Add(time.Duration(i+1)*time.Second), node, fmt.Sprint(i)
		if err := s.AppendEvent(ctx, e); err != nil {
			t.Fatalf("path %s: %v", id, err)
		}
	}
	e := cases.NewEvent(c.ID, cases.EventEnded)
	e.At, e.Outcome = at.Add(time.Minute), cases.OutcomeSelfService
	if err := s.AppendEvent(ctx, e); err != nil {
		t.Fatalf("end %s: %v", id, err)
	}
	return c
}

// checkCall asserts a call's case is stored once, with its events in order.
func checkCall(t *testing.T, s cases.Store, want *cases.Case) *cases.Case {
	t.Helper()
	ctx := context.Background()
	got, err := s.GetByCall(ctx, want.CallID)
	if err != nil {
		t.Fatalf("case of %s: %v", want.CallID, err)
	}
	if got.ID != want.ID || (want.Number != "" && got.Number != want.Number) {
		t.Errorf("case of %s: stored %s %s, the call was told %s %s", want.CallID, got.ID, got.Number, want.ID, want.Number)
	}
	evs, err := s.Events(ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, string(e.Kind)+":"+e.Node)
	}
	if w := "created: path:welcome path:main path:queue ended:"; strings.Join(kinds, " ") != w {
		t.Errorf("events of %s: %q, want %q", want.CallID, strings.Join(kinds, " "), w)
	}
	if got.Outcome != cases.OutcomeSelfService {
		t.Errorf("outcome of %s: %q", want.CallID, got.Outcome)
	}
	return got
}

func TestDurableOutage(t *testing.T) {
	for name, mk := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			p := testProtector(t)
			real, _ := openSQL(t, mk(t), p, cases.DuePolicy{})
			fs := &faultyStore{Store: real}
			d := newDurable(t, fs, p, filepath.Join(t.TempDir(), "journal"), 4)
			defer d.Close()
			t0 := time.Now()

			var told []*cases.Case
			told = append(told, call(t, d, "before", t0))
			if d.Journaling() {
				t.Fatal("journaling while the store is up")
			}
			fs.mode.Store(down)
			for i := 0; i < 10; i++ {
				told = append(told, call(t, d, fmt.Sprintf("during-%02d", i), t0.Add(time.Duration(i+1)*time.Second)))
			}
			a := cases.AuditEntry{Account: "sup-1", Role: "supervisor", CaseID: told[1].ID, Field: "caller", Reason: "call back"}
			if err := d.AppendAudit(ctx, a); err != nil {
				t.Fatal(err)
			}
			journaled, _, _ := d.Stats()
			if !d.Journaling() || journaled < 51 {
				t.Fatalf("store down: journaling %v, %d writes journaled, want 51", d.Journaling(), journaled)
			}
			if _, err := real.GetByCall(ctx, "during-00"); !errors.Is(err, cases.ErrNotFound) {
				t.Fatalf("journaled case already in the store: %v", err)
			}
			// The process that journaled a case still finds it, by call id
			// and by the number the caller was told.
			if got, err := d.GetByCall(ctx, "during-00"); err != nil || got.ID != told[1].ID {
				t.Errorf("journaled case by call id: %v, %v", got, err)
			}
			if got, err := d.Get(ctx, strings.ReplaceAll(told[1].Number, "-", "")); err != nil || got.ID != told[1].ID {
				t.Errorf("journaled case by number %s: %v, %v", told[1].Number, got, err)
			}
			// Three numbers were left in the reserved block: the first calls
			// of the outage can still be told theirs.
			withNumber := 0
			for _, c := range told[1:] {
				if c.Number != "" {
					withNumber++
				}
			}
			if withNumber != 3 {
				t.Errorf("%d journaled cases got a reserved number, want 3", withNumber)
			}
			if err := d.AppendEvent(ctx, cases.Event{CaseID: told[1].ID, Kind: "bogus"}); !errors.Is(err, cases.ErrInvalid) {
				t.Errorf("invalid event during outage: %v, want ErrInvalid (not journaled)", err)
			}

			fs.mode.Store(up)
			dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if err := d.Drain(dctx); err != nil {
				t.Fatal(err)
			}
			var numbers []string
			for _, c := range told {
				numbers = append(numbers, checkCall(t, real, c).Number)
			}
			if !slices.IsSorted(numbers) || len(slices.Compact(slices.Clone(numbers))) != len(numbers) {
				t.Errorf("numbers not unique and in call order: %v", numbers)
			}
			list, _ := real.List(ctx, cases.Filter{})
			if len(list) != len(told) {
				t.Errorf("%d cases stored, want %d", len(list), len(told))
			}
			trail, _ := real.ListAudit(ctx, cases.AuditFilter{CaseID: told[1].ID})
			if len(trail) != 1 {
				t.Errorf("audit entries after replay: %d, want 1", len(trail))
			}
			_, replayed, dropped := d.Stats()
			if replayed != journaled || dropped != 0 {
				t.Errorf("replayed %d of %d, dropped %d", replayed, journaled, dropped)
			}
			// Back to direct writes.
			after := call(t, d, "after", t0.Add(time.Hour))
			if d.Journaling() {
				t.Error("still journaling after the replay")
			}
			checkCall(t, real, after)
		})
	}
}

// A slow store makes writes time out: they are journaled; a write whose
// reply was lost after it committed is replayed without a duplicate.
func TestDurableSlowStoreAndLostReplies(t *testing.T) {
	ctx := context.Background()
	p := testProtector(t)
	real, _ := openSQL(t, filepath.Join(t.TempDir(), "c.db"), p, cases.DuePolicy{})
	fs := &faultyStore{Store: real}
	d := newDurable(t, fs, p, filepath.Join(t.TempDir(), "journal"), -1)
	defer d.Close()
	t0 := time.Now()
	var told []*cases.Case
	for i, mode := range []int32{lateCommit, slow} {
		fs.mode.Store(mode)
		told = append(told, call(t, d, fmt.Sprintf("c%d", i), t0.Add(time.Duration(i)*time.Second)))
		fs.mode.Store(up)
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if err := d.Drain(dctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	for _, c := range told {
		checkCall(t, real, c)
	}
	if j, _, _ := d.Stats(); j == 0 {
		t.Error("nothing journaled")
	}
}

// Records left in a journal by a crashed process (with a torn tail) are
// replayed by the next one; replaying the same journal twice (a lost
// checkpoint) duplicates nothing.
func TestDurableRestartReplaysJournal(t *testing.T) {
	ctx := context.Background()
	p := testProtector(t)
	dir := t.TempDir()
	real, _ := openSQL(t, filepath.Join(dir, "c.db"), p, cases.DuePolicy{})
	fs := &faultyStore{Store: real}
	fs.mode.Store(down)
	jpath := filepath.Join(dir, "journal")
	d := newDurable(t, fs, p, jpath, -1)
	t0 := time.Now()
	var told []*cases.Case
	for i := 0; i < 5; i++ {
		told = append(told, call(t, d, fmt.Sprintf("c%d", i), t0.Add(time.Duration(i)*time.Second)))
	}
	// The "crash": snapshot the journal as the dead process left it, with
	// half a record at its end.
	raw, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	crashed := filepath.Join(dir, "crashed")
	os.WriteFile(crashed, append(slices.Clone(raw), 0, 0, 1, 0, 0xde, 0xad), 0o600)
	os.WriteFile(filepath.Join(dir, "again"), raw, 0o600)

	fs.mode.Store(up)
	for _, path := range []string{crashed, filepath.Join(dir, "again")} {
		d2 := newDurable(t, fs, p, path, -1)
		if !d2.Journaling() {
			t.Fatal("a journal with records did not start in journaling mode")
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if err := d2.Drain(dctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		d2.Close()
	}
	for _, c := range told {
		checkCall(t, real, c)
	}
	if list, _ := real.List(ctx, cases.Filter{}); len(list) != len(told) {
		t.Errorf("%d cases, want %d", len(list), len(told))
	}
}

// TestDurableKill9 runs a writer in a child process, kills it with SIGKILL
// while it writes (its store failing now and then, so part of the writes
// are only journaled), and checks that every case the child reported as
// created is in the store after a restart drains the journal.
func TestDurableKill9(t *testing.T) {
	if dir := os.Getenv("HOTLINE_CASES_KILL9_CHILD"); dir != "" {
		kill9Child(dir)
		return
	}
	dir := t.TempDir()
	if _, err := cases.LoadProtector(filepath.Join(dir, "keys"), true, nil); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestDurableKill9$")
	cmd.Env = append(os.Environ(), "HOTLINE_CASES_KILL9_CHILD="+dir, cases.EnvKeys+"=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	told := map[string]string{} // call id -> case id
	numbers := map[string]string{}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "created" {
			continue
		}
		told[f[1]] = f[2]
		if len(f) == 4 {
			numbers[f[1]] = f[3]
		}
		if len(told) == 150 {
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	cmd.Wait()
	if len(told) < 150 {
		t.Fatalf("child reported %d cases before it ended", len(told))
	}
	t.Setenv(cases.EnvKeys, "")
	p, err := cases.LoadProtector(filepath.Join(dir, "keys"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := openSQL(t, filepath.Join(dir, "hotline.db"), p, cases.DuePolicy{})
	d := newDurable(t, real, p, filepath.Join(dir, "journal"), -1)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	_, replayed, _ := d.Stats()
	for callID, caseID := range told {
		c, err := real.GetByCall(ctx, callID)
		if err != nil {
			t.Errorf("call %s was told case %s: %v", callID, caseID, err)
			continue
		}
		if c.ID != caseID || (numbers[callID] != "" && numbers[callID] != c.Number) {
			t.Errorf("call %s: stored %s %s, told %s %s", callID, c.ID, c.Number, caseID, numbers[callID])
		}
	}
	t.Logf("kill -9 after %d cases: all found; %d writes replayed from the journal on restart", len(told), replayed)
}

func kill9Child(dir string) {
	ctx := context.Background()
	p, err := cases.LoadProtector(filepath.Join(dir, "keys"), false, nil)
	if err != nil {
		panic(err)
	}
	db, err := sqldb.Open(ctx, filepath.Join(dir, "hotline.db"))
	if err != nil {
		panic(err)
	}
	real, err := cases.OpenSQL(ctx, db, cases.SQLConfig{Protector: p})
	if err != nil {
		panic(err)
	}
	fs := &faultyStore{Store: real}
	j, err := cases.OpenJournal(filepath.Join(dir, "journal"))
	if err != nil {
		panic(err)
	}
	d, err := cases.NewDurable(fs, cases.DurableConfig{Journal: j, Keys: p.Keys, Timeout: 100 * time.Millisecond, RetryEvery: 10 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	for i := 0; ; i++ {
		// The store goes down for 20 calls out of every 50.
		if i%50 == 10 {
			fs.mode.Store(down)
		} else if i%50 == 30 {
			fs.mode.Store(up)
		}
		c, err := d.CreateForCall(ctx, cases.NewCall{CallID: fmt.Sprintf("k%04d", i), Caller: "13800138000", Started: time.Now()})
		if err != nil {
			panic(err)
		}
		e := cases.NewEvent(c.ID, cases.EventPath)
		e.Node = "welcome"
		if err := d.AppendEvent(ctx, e); err != nil {
			panic(err)
		}
		fmt.Printf("created %s %s %s\n", c.CallID, c.ID, c.Number)
	}
}
