package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGeneratedIsCurrent: the committed ari/zz_generated.go is what the
// generator makes from the spec (skips without ../shared, fails under CI).
func TestGeneratedIsCurrent(t *testing.T) {
	const spec = "../../../../shared/ari/api-docs"
	if _, err := os.Stat(spec); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and the ARI spec is missing: %v", err)
		}
		t.Skipf("no ARI spec: %v", err)
	}
	got, err := generate(spec)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../zz_generated.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("ari/zz_generated.go is stale: run go run ./ari/internal/gen -spec ../shared/ari/api-docs")
	}
}

func TestNames(t *testing.T) {
	cases := map[string]string{
		"channel_ids": "ChannelIDs", "playbackId": "PlaybackID", "media_uri": "MediaURI",
		"duration_ms": "DurationMs", "asterisk_id": "AsteriskID", "caller_rdnis": "CallerRDNIS",
	}
	for in, want := range cases {
		if got := fieldName(in); got != want {
			t.Errorf("fieldName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := opName("channels", "sendDTMF"); got != "ChannelsSendDTMF" {
		t.Errorf("opName = %q", got)
	}
}
