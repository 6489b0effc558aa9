package ivr_test

import (
	"testing"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/prompts"
	"github.com/cq12345/hotline/routing"
)

// Destinations and queues of the default flow (documented in its header).
var (
	testDestinations = []string{"12315", "12333", "edu-bureau", "sichuan-12345"}
	testQueues       = []string{"general", "complaints", "suggestions", "followup"}
)

func testLib(t testing.TB) *prompts.Library {
	t.Helper()
	lib, err := prompts.Load(prompts.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func testEnv(t testing.TB) ivr.Env {
	t.Helper()
	lib := testLib(t)
	cals, err := routing.DefaultCalendars()
	if err != nil {
		t.Fatal(err)
	}
	env := ivr.Env{
		Catalogue:    lib.Catalogue,
		Destinations: map[string]bool{},
		Queues:       map[string]bool{},
		Calendars:    cals,
	}
	for _, d := range testDestinations {
		env.Destinations[d] = true
	}
	for _, q := range testQueues {
		env.Queues[q] = true
	}
	return env
}
