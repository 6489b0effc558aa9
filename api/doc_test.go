package api_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryRouteDocumented: docs/api.md lists every route the API
// registers, so the reference cannot fall behind the code.
func TestEveryRouteDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	route := regexp.MustCompile(`Handle\("((GET|POST|PUT|DELETE) /api/v1/[^"]*)"`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range route.FindAllSubmatch(src, -1) {
			n++
			if !strings.Contains(string(doc), "`"+string(m[1])+"`") {
				t.Errorf("%s: route %s is not in docs/api.md", f, m[1])
			}
		}
	}
	if n < 40 {
		t.Fatalf("found only %d routes: the pattern no longer matches the code", n)
	}
}
