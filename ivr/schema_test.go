package ivr_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/cq12345/hotline/ivr"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ivr.Schema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("flow.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("flow.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlToJSON turns a YAML document into the JSON value the schema sees.
func yamlToJSON(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(normalise(v))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func normalise(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
		return x
	case map[any]any:
		m := map[string]any{}
		for k, e := range x {
			m[fmt.Sprint(k)] = normalise(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = normalise(e)
		}
		return x
	}
	return v
}

// Every committed flow validates against the committed schema.
func TestCommittedFlowsMatchSchema(t *testing.T) {
	s := compileSchema(t)
	files, _ := filepath.Glob("flows/*.yaml")
	valid, _ := filepath.Glob("testdata/valid/*.yaml")
	files = append(files, valid...)
	if len(files) < 3 {
		t.Fatalf("only %d flows found", len(files))
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(yamlToJSON(t, src)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// The schema catches what an editor should flag as you type.
func TestSchemaRejects(t *testing.T) {
	s := compileSchema(t)
	bad := map[string]string{
		"unknown field":  "name: x\nstart: a\nnodes:\n  a: {kind: play, prompts: greeting, next: a, colour: red}\n",
		"unknown kind":   "name: x\nstart: a\nnodes:\n  a: {kind: dance}\n",
		"menu key":       "name: x\nstart: a\nnodes:\n  a: {kind: menu, prompts: p, options: {\"10\": a}, on_exhausted: a}\n",
		"bad duration":   "name: x\nstart: a\nnodes:\n  a: {kind: menu, prompts: p, options: {\"1\": a}, on_exhausted: a, timeout: soon}\n",
		"two conditions": "name: x\nstart: a\nnodes:\n  a: {kind: branch, cases: [{open: c, closed: c, next: a}], default: a}\n",
		"no start":       "name: x\nnodes:\n  a: {kind: goto, next: a}\n",
	}
	for name, src := range bad {
		if err := s.Validate(yamlToJSON(t, []byte(src))); err == nil {
			t.Errorf("%s: schema accepted\n%s", name, strings.TrimSpace(src))
		}
	}
}
