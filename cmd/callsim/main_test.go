package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCallJSONNoAnswer runs `callsim call --json` against a UDP port where
// nothing answers: one JSON object, valid against the report schema, that
// says so, and a non-nil error (exit 1).
func TestCallJSONNoAnswer(t *testing.T) {
	// A bound socket that never answers: the INVITE is retransmitted and
	// the setup times out.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c := callCmd{dialFlags: dialFlags{
		Target: pc.LocalAddr().String(), Transport: "udp", To: "12345", From: "13800138000",
		Codec: []string{"PCMA", "PCMU"}, SetupTimeout: 700 * time.Millisecond, Send: "tone",
		SIPListen: "127.0.0.1:0", DTMF: []string{"1,2"}, DTMFMode: "rfc4733", DTMFAfter: time.Second,
		DTMFDuration: 100 * time.Millisecond, JSON: true,
	}, HangupAfter: time.Second}
	var out bytes.Buffer
	quiet := slog.New(slog.DiscardHandler)
	err = c.run(context.Background(), quiet, quiet, &out)
	if err == nil {
		t.Fatal("no error for an unanswered call")
	}
	var r map[string]any
	dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%v: %s", err, out.Bytes())
	}
	if dec.More() {
		t.Errorf("more than one JSON value: %s", out.Bytes())
	}
	if r["answered"] != false || r["ended_by"] != "error" || r["sip_status"] != float64(408) || r["from"] != "138****8000" {
		t.Errorf("report %s", out.Bytes())
	}
	if bytes.Contains(out.Bytes(), []byte("13800138000")) {
		t.Error("unmasked caller number in the output")
	}
	validate(t, out.Bytes())
}

// validate checks one report against phone/report.schema.json.
func validate(t *testing.T, b []byte) {
	t.Helper()
	sf, err := os.Open("../../phone/report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	doc, err := jsonschema.UnmarshalJSON(sf)
	if err != nil {
		t.Fatal(err)
	}
	comp := jsonschema.NewCompiler()
	if err := comp.AddResource("report.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := comp.Compile("report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("%v\n%s", err, b)
	}
}

func TestDigitsFlag(t *testing.T) {
	f := dialFlags{DTMF: []string{"1", "3#", "a"}, Codec: []string{"pcmu"}}
	o, digits, err := f.options()
	if err != nil || string(digits) != "13#A" || len(o.Codecs) != 1 || o.Codecs[0] != 0 {
		t.Errorf("digits %q codecs %v err %v", digits, o.Codecs, err)
	}
	f.DTMF = []string{"x"}
	if _, _, err := f.options(); err == nil {
		t.Error("x accepted as a digit")
	}
}

// TestLineAndCall runs `callsim line` and `callsim call` against each other
// in-process: the call hears the line's prompt, the line hears the call's,
// and both print valid reports.
func TestLineAndCall(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	var lineOut bytes.Buffer
	line := lineCmd{answerFlags: answerFlags{
		Listen: "127.0.0.1:0", Codec: []string{"PCMA", "PCMU"}, Play: []string{"en/digit-5"}, Send: "silence",
		DTMFMode: "rfc4733", DTMFAfter: time.Second, Calls: 1, JSON: true,
	}, Number: []string{"12315"}}
	ready := make(chan netip.AddrPort, 1)
	lineDone := make(chan error, 1)
	go func() { lineDone <- line.run(context.Background(), quiet, quiet, &lineOut, ready) }()
	addr := <-ready
	call := callCmd{dialFlags: dialFlags{
		Target: addr.String(), Transport: "udp", To: "12315", From: "13800138000",
		Codec: []string{"PCMA"}, SetupTimeout: 5 * time.Second, Send: "tone", SIPListen: "127.0.0.1:0",
		DTMFMode: "rfc4733", DTMFAfter: time.Second, DTMFDuration: 100 * time.Millisecond, JSON: true,
	}, HangupAfter: 1500 * time.Millisecond, Play: []string{"en/digit-7"}, ExpectPrompt: []string{"en/digit-5"}}
	var callOut bytes.Buffer
	if err := call.run(context.Background(), quiet, quiet, &callOut); err != nil {
		t.Fatalf("call: %v\n%s", err, callOut.Bytes())
	}
	select {
	case err := <-lineDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("line did not exit after --calls 1")
	}
	var lr map[string]any
	if err := json.Unmarshal(lineOut.Bytes(), &lr); err != nil {
		t.Fatalf("%v: %s", err, lineOut.Bytes())
	}
	if heard, _ := lr["prompts_heard"].([]any); len(heard) != 1 || heard[0] != "en/digit-7" || lr["ended_by"] != "remote" {
		t.Errorf("line report %s", lineOut.Bytes())
	}
	validate(t, callOut.Bytes())
	validate(t, lineOut.Bytes())
}
