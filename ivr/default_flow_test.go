package ivr_test

import (
	"testing"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/ivr/flows"
)

func loadDefault(t testing.TB) (*ivr.Flow, ivr.Env) {
	t.Helper()
	env := testEnv(t)
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
