package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAbusePolicyValidate: the policy check runs offline and lists every
// problem; the default policy prints and validates.
func TestAbusePolicyValidate(t *testing.T) {
	run1 := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb, func(string) string { return "" })
		return code, out.String(), errb.String()
	}
	dir := t.TempDir()
	code, def, _ := run1("abuse", "policy", "default")
	if code != 0 || !strings.Contains(def, "calls-hour") {
		t.Fatalf("default: %d\n%s", code, def)
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(def), 0o600)
	if code, out, errs := run1("--server", "http://127.0.0.1:1", "abuse", "policy", "validate", good); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("valid: %d %s %s", code, out, errs)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(strings.Replace(def, "at_least: 8", "at_least: 1", 1), "duration: 72h", "duration: 0s", 1)), 0o600)
	code, _, errs := run1("abuse", "policy", "validate", bad)
	if code != 1 || !strings.Contains(errs, "2 problem(s)") || !strings.Contains(errs, "calls-hour") || !strings.Contains(errs, "measures.restricted.duration") {
		t.Fatalf("invalid: %d\n%s", code, errs)
	}
	code, out, _ := run1("--json", "abuse", "policy", "validate", bad)
	if code != 1 || !strings.Contains(out, `"valid": false`) {
		t.Fatalf("json: %d %s", code, out)
	}
}
