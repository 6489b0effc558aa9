package ivr_test

import (
	"strings"
	"testing"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/ivr/flows"
)

func loadDefault(t testing.TB) (*ivr.Flow, ivr.Env) {
	t.Helper()
	env := testEnv(t)
	// The 12345 rules hold for the default flow.
	env.MaxKeyPresses = 2
	env.PersonEscape = true
	f, err := ivr.Load(flows.Default(), env)
	if err != nil {
		t.Fatal(err)
	}
	return f, env
}

func TestDefaultFlowLoads(t *testing.T) {
	f, _ := loadDefault(t)
	if f.Name() != "chongqing-12345" {
		t.Errorf("name = %q", f.Name())
	}
}

func TestHotlineRules(t *testing.T) {
	env := testEnv(t)
	env.MaxKeyPresses = 2
	env.PersonEscape = true
	src := `
name: deep
languages: [zh-CN, en]
start: lang
nodes:
  lang:
    kind: language
    prompts: language-menu
    options: {"9": en}
    next: m1
  m1:
    kind: menu
    prompts: main-menu
    options: {"1": m2, "0": bye}
    on_exhausted: bye
  m2:
    kind: menu
    prompts: main-menu
    options: {"1": q, "0": q2}
    on_exhausted: q2
  q:
    kind: queue
    queue: complaints
  q2:
    kind: queue
    queue: general
  bye:
    kind: hangup
`
	_, err := ivr.Load([]byte(src), env)
	ve, ok := ivr.AsValidationError(err)
	if !ok {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"line 22: nodes.q: queue:complaints needs 3 key presses in en (at most 2)",
		"line 7: nodes.lang.zero: key 0 does not lead to a person",
		"line 14: nodes.m1.options.0: key 0 does not lead to a person",
		"line 15: nodes.m1.on_exhausted: running out of retries does not lead to a person",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in\n%s", want, all)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d problems, want 4:\n%s", len(got), all)
	}
}
