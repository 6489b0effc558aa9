package test

import (
	"os"
	"path/filepath"
	"testing"
)

// TestScanIgnoresTraceIDs checks the personal-data scan itself: a span id
// that happens to hold a mobile-shaped digit run is not a leak, and a
// number anywhere else still is.
func TestScanIgnoresTraceIDs(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		leak       bool
	}{
		{"span id", `{"Name":"ivr.node play","SpanContext":{"TraceID":"a50d017bd87d3980f8d122b54f938116","SpanID":"18028690307d73fe"}}`, false},
		{"trace id", `{"TraceID":"13912345678aaaaabbbbbcccccdddddd"}`, false},
		{"call id", `level=INFO msg="call answered" call_id=0f8e2c4a-1b2c-4d5e-8f90-13912345678a`, false},
		{"number beside a uuid", `call_id=0f8e2c4a-1b2c-4d5e-8f90-a1b2c3d4e5f6 from=13912345678`, true},
		{"attribute", `{"Key":"caller","Value":{"Type":"STRING","Value":"13912345678"}}`, true},
		{"log", `level=INFO msg="call" from=13912345678`, true},
		{"masked", `level=INFO msg="call" from=139****5678`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "scan.jsonl")
			if err := os.WriteFile(f, []byte(tc.line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			got := scanLeaks(f, nil)
			if (len(got) > 0) != tc.leak {
				t.Errorf("leaks %q, want leak=%v", got, tc.leak)
			}
		})
	}
}
