package cases_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cq12345/hotline/cases"
)

func readAll(t *testing.T, j *cases.Journal, from int64) []string {
	t.Helper()
	var out []string
	if err := j.ReadFrom(from, func(p []byte, _ int64) error { out = append(out, string(p)); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestJournalAppendReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j", "journal")
	j, err := cases.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := j.Append([]byte(fmt.Sprintf("rec-%02d", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := readAll(t, j, 0); len(got) != 50 {
		t.Fatalf("%d records, want 50", len(got))
	}
	if err := j.Append(nil); err == nil {
		t.Error("empty record accepted")
	}
	j.Close()
	if err := j.Append([]byte("late")); err == nil {
		t.Error("append after close accepted")
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v, want 0600", st.Mode().Perm())
	}
	j2, err := cases.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	got := readAll(t, j2, 0)
	if len(got) != 50 || j2.TornBytes() != 0 {
		t.Fatalf("reopened: %d records, torn %d", len(got), j2.TornBytes())
	}
	seen := map[string]bool{}
	for _, r := range got {
		seen[r] = true
	}
	if len(seen) != 50 {
		t.Errorf("duplicates or losses: %d distinct", len(seen))
	}
}

// A record cut anywhere (kill -9 mid-write) or garbled is detected on open,
// cut off, and the records before it stand; appends go on after them.
func TestJournalTornTail(t *testing.T) {
	dir := t.TempDir()
	build := func(name string) (string, int64) {
		path := filepath.Join(dir, name)
		j, err := cases.OpenJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"one", "two", "three"} {
			if err := j.Append([]byte(r)); err != nil {
				t.Fatal(err)
			}
		}
		size := j.Size()
		j.Close()
		return path, size
	}
	for _, tc := range []struct {
		name   string
		mangle func(path string, size int64)
	}{
		{"cut in the payload", func(p string, size int64) { os.Truncate(p, size-2) }},
		{"cut in the header", func(p string, size int64) { os.Truncate(p, size-5-8+3) }},
		{"garbage appended", func(p string, _ int64) {
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte{0, 0, 0, 9, 1, 2, 3, 4, 'x'})
			f.Close()
		}},
		{"flipped byte in the last record", func(p string, size int64) {
			f, _ := os.OpenFile(p, os.O_WRONLY, 0)
			f.WriteAt([]byte{'X'}, size-1)
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, size := build(tc.name)
			tc.mangle(path, size)
			j, err := cases.OpenJournal(path)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			got := readAll(t, j, 0)
			want := []string{"one", "two"}
			if tc.name == "garbage appended" {
				want = []string{"one", "two", "three"}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || j.TornBytes() == 0 {
				t.Fatalf("after %s: %v (torn %d), want %v", tc.name, got, j.TornBytes(), want)
			}
			if err := j.Append([]byte("four")); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, j, 0); got[len(got)-1] != "four" || len(got) != len(want)+1 {
				t.Errorf("append after cut: %v", got)
			}
		})
	}
}

func TestJournalCheckpointAndReset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := cases.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"a", "b", "c"} {
		j.Append([]byte(r))
	}
	var afterB int64
	stop := errors.New("stop")
	j.ReadFrom(0, func(p []byte, next int64) error {
		if string(p) == "b" {
			afterB = next
			return stop
		}
		return nil
	})
	if err := j.SetCheckpoint(afterB); err != nil {
		t.Fatal(err)
	}
	if ok, _ := j.ResetIfReplayed(); ok {
		t.Fatal("reset with a record left")
	}
	j.Close()
	j, err = cases.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if j.Checkpoint() != afterB {
		t.Fatalf("checkpoint %d after reopen, want %d", j.Checkpoint(), afterB)
	}
	if got := readAll(t, j, j.Checkpoint()); fmt.Sprint(got) != "[c]" {
		t.Fatalf("from checkpoint: %v", got)
	}
	j.SetCheckpoint(j.Size())
	if ok, err := j.ResetIfReplayed(); !ok || err != nil || j.Size() != 0 || j.Checkpoint() != 0 {
		t.Fatalf("reset: %v %v size %d cp %d", ok, err, j.Size(), j.Checkpoint())
	}
	j.Append([]byte("d"))
	if got := readAll(t, j, j.Checkpoint()); fmt.Sprint(got) != "[d]" {
		t.Fatalf("after reset: %v", got)
	}
}

// Whatever bytes a crash leaves in the file, OpenJournal keeps a valid
// prefix of records, and appends after it read back.
func FuzzJournalOpen(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 3, 0x35, 0x2c, 0x4d, 0x2a, 'a', 'b', 'c'})
	f.Add([]byte{0, 0, 0, 9, 1, 2, 3, 4, 'x'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := filepath.Join(t.TempDir(), "journal")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		j, err := cases.OpenJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		before := readAll(t, j, 0)
		if j.Size()+j.TornBytes() != int64(len(raw)) {
			t.Fatalf("size %d + torn %d != %d", j.Size(), j.TornBytes(), len(raw))
		}
		if err := j.Append([]byte("next")); err != nil {
			t.Fatal(err)
		}
		after := readAll(t, j, 0)
		if len(after) != len(before)+1 || after[len(after)-1] != "next" {
			t.Fatalf("before %q after %q", before, after)
		}
	})
}

func TestJournalOneProcessAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := cases.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cases.OpenJournal(path); err == nil {
		t.Fatal("a second opener got the journal")
	}
	j.Close()
	j2, err := cases.OpenJournal(path)
	if err != nil {
		t.Fatalf("after close: %v", err)
	}
	j2.Close()
}
