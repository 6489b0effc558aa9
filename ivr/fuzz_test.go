package ivr_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
)

// FuzzLoad: the loader and validator never panic, and never return both a
// flow and an error; a flow they accept simulates without panicking.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"flows", "testdata/valid", "testdata/invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("name: x\nstart: a\nnodes: {a: {kind: goto, next: a}}\n"))
	env := testEnv(f)
	env.Includes = ivr.FSIncludes{FS: os.DirFS("testdata/valid")}
	f.Fuzz(func(t *testing.T, src []byte) {
		fl, err := ivr.Load(src, env)
		if (fl == nil) == (err == nil) {
			t.Fatalf("flow %v with error %v", fl != nil, err)
		}
		if fl != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, _ = ivr.Simulate(ctx, fl, env, ivr.SimOptions{Caller: "13800138000", At: time.Date(2026, 10, 10, 2, 0, 0, 0, time.UTC), Digits: []string{"1", "", "9", "0"}})
		}
	})
}
