package ivr_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cq12345/hotline/ivr"
)

// Each file in testdata/invalid says in "# want:" lines which problems Load
// must list (a substring of "line N: path: message"). Load must fail with a
// *ValidationError and no flow.
func TestInvalidCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	env := testEnv(t)
	env.Includes = ivr.FSIncludes{FS: os.DirFS("testdata/invalid/includes")}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for _, line := range strings.Split(string(src), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, w)
				}
			}
			if len(wants) == 0 {
				t.Fatal("no # want: lines")
			}
			f, err := ivr.Load(src, env)
			if f != nil {
				t.Error("Load returned a flow for an invalid source")
			}
			var ve *ivr.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValidationError", err)
			}
			var got []string
			for _, p := range ve.Problems {
				if p.Path == "" || p.Message == "" {
					t.Errorf("problem without path or message: %+v", p)
				}
				got = append(got, p.String())
			}
			for _, w := range wants {
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("missing problem %q; got:\n  %s", w, strings.Join(got, "\n  "))
				}
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("problems:\n  %s", strings.Join(got, "\n  "))
			}
		})
	}
}

func TestValidFlows(t *testing.T) {
	env := testEnv(t)
	env.Includes = ivr.FSIncludes{FS: os.DirFS("testdata/valid")}
	src, err := os.ReadFile("testdata/valid/every-kind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ivr.Load(src, env)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "every-kind" || len(f.Languages()) != 2 {
		t.Errorf("name %q languages %v", f.Name(), f.Languages())
	}
	// The sub-flow's nodes are inlined under the include node.
	for _, id := range []string{"rate/ask", "rate/thanks", "rate/done"} {
		if _, ok := f.Node(id); !ok {
			t.Errorf("node %s missing; have %v", id, f.NodeIDs())
		}
	}
	// A sub-flow cannot be loaded on its own.
	sub, _ := os.ReadFile("testdata/valid/rate-sub.yaml")
	if _, err := ivr.Load(sub, env); err == nil {
		t.Error("sub-flow loaded as a flow")
	}
	// Without an include source, the include is a problem, not a panic.
	env.Includes = nil
	if _, err := ivr.Load(src, env); err == nil || !strings.Contains(err.Error(), "no include source") {
		t.Errorf("err = %v", err)
	}
}
