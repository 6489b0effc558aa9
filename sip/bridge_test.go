package sip

import (
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
)

// wrapped is how hotlined wraps a call (server.caseCall embeds ivr.Call).
type wrapped struct {
	ivr.Call
	mu sync.Mutex
}

type unwrapper struct{ inner ivr.Call }

func (u unwrapper) Unwrap() ivr.Call { return u.inner }

// unwrapperCall is an ivr.Call that only unwraps.
type unwrapperCall struct {
	ivr.Call
	unwrapper
}

func (u unwrapperCall) Unwrap() ivr.Call { return u.unwrapper.Unwrap() }

func TestAsEndpoint(t *testing.T) {
	c := &call{}
	l := &leg{}
	for name, tc := range map[string]struct {
		in   ivr.Call
		want endpoint
	}{
		"call":               {c, c},
		"leg":                {l, l},
		"embedded":           {&wrapped{Call: c}, c},
		"embedded twice":     {&wrapped{Call: &wrapped{Call: l}}, l},
		"Unwrap":             {unwrapperCall{unwrapper: unwrapper{inner: c}}, c},
		"embedded in Unwrap": {unwrapperCall{unwrapper: unwrapper{inner: &wrapped{Call: l}}}, l},
	} {
		got, err := asEndpoint(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v", name, got, err)
		}
	}
	if _, err := asEndpoint(&wrapped{}); err == nil {
		t.Error("a wrapper around nothing was accepted")
	}
}

// TestFlagDetector: *7 is caught, other '*' sequences pass in order, a
// lone '*' is released after flagHold, codes map to destinations.
func TestFlagDetector(t *testing.T) {
	var mu sync.Mutex
	var sent []byte
	var flags int
	var codes []string
	f := &flagDetector{
		send:   func(d byte) { mu.Lock(); sent = append(sent, d); mu.Unlock() },
		onFlag: func() { mu.Lock(); flags++; mu.Unlock() },
		codes:  map[byte]string{'1': "110"},
		onCode: func(id string) { mu.Lock(); codes = append(codes, id); mu.Unlock() },
	}
	for _, d := range []byte("12*7*5**73*1") {
		f.digit(d)
	}
	mu.Lock()
	got, nf, nc := string(sent), flags, append([]string(nil), codes...)
	mu.Unlock()
	if got != "12*5*3" || nf != 2 || len(nc) != 1 || nc[0] != "110" {
		t.Fatalf("sent %q flags %d codes %v; want \"12*5*3\", 2, [110]", got, nf, nc)
	}
	f.digit('*')
	time.Sleep(flagHold + 300*time.Millisecond)
	mu.Lock()
	got = string(sent)
	mu.Unlock()
	if got != "12*5*3*" {
		t.Fatalf("a lone '*' was not released: %q", got)
	}
	f.stop()
}
