package telemetry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

func TestScrub(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"caller 13800138000 called", "caller 138****8000 called"},
		{"from=+8613800138000;tag=1", "from=+86138****8000;tag=1"},
		{"case 20261128-000123", "case 20261128-000123"},
		{"dialled 12345", "dialled 12345"},
		{"nothing here", "nothing here"},
		{"sip:13800138000@127.0.0.1:5060", "sip:138****8000@127.0.0.1:5060"},
		{"case 01a22051-3c9b-7bbb-b1fd-9a31234567898cc2", "case 01a22051-3c9b-7bbb-b1fd-9a31234567898cc2"},
		{`{"caller":"13800138000"}`, `{"caller":"138****8000"}`},
		{"a 13800138000 b 13900139000", "a 138****8000 b 139****9000"},
	} {
		if got := Scrub(tc.in); got != tc.want {
			t.Errorf("Scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMaskingHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewMaskingHandler(slog.NewJSONHandler(&buf, nil))).With("who", "13800138000")
	log.Info("call from 13900139000", "err", errors.New("dial 13700137000 failed"),
		slog.Group("g", "n", "13600136000"))
	out := buf.String()
	for _, n := range []string{"13800138000", "13900139000", "13700137000", "13600136000"} {
		if strings.Contains(out, n) {
			t.Errorf("log line carries %s: %s", n, out)
		}
	}
	if !strings.Contains(out, "139****9000") {
		t.Errorf("masked form missing: %s", out)
	}
}

func TestTraceFileIsScrubbed(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "spans.jsonl")
	tel, err := New(ctx, Config{TraceFile: file})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.TracerProvider.Tracer("test").Start(ctx, "call 13800138000")
	span.SetAttributes(attribute.String("caller", "13800138000"))
	span.AddEvent("digit 13800138000")
	span.End()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("13800138000")) || !bytes.Contains(b, []byte("138****8000")) {
		t.Fatalf("trace file not scrubbed: %s", b)
	}
}
