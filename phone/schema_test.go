package phone

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// validateReport checks a `callsim call --json` object against the
// committed schema (report.schema.json), which the e2e tests of other
// packages may rely on.
func validateReport(t *testing.T, b []byte) {
	t.Helper()
	if err := checkJSON("report.schema.json", b); err != nil {
		t.Errorf("%v\n%s", err, b)
	}
}

func checkJSON(schemaFile string, b []byte) error {
	sf, err := os.Open(schemaFile)
	if err != nil {
		return err
	}
	defer sf.Close()
	doc, err := jsonschema.UnmarshalJSON(sf)
	if err != nil {
		return err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaFile, doc); err != nil {
		return err
	}
	sch, err := c.Compile(schemaFile)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("%s: %w", schemaFile, err)
	}
	return nil
}

// TestSchemaRejects makes sure the schema is not vacuous.
func TestSchemaRejects(t *testing.T) {
	good := Report{Reinvites: []ReinviteResult{}, Transport: "udp", DTMFSent: DTMFReport{Mode: DTMFRFC4733, Events: []DTMFSent{}}, PromptsHeard: []string{}, PromptsDetail: []PromptRun{}, EndedBy: EndedLocal, SIPStatus: 200}
	b, _ := json.Marshal(good)
	validateReport(t, b)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	delete(m, "prompts_heard")
	m["ended_by"] = "someone"
	bad, _ := json.Marshal(m)
	if checkJSON("report.schema.json", bad) == nil {
		t.Error("schema accepted a report without prompts_heard and with a bad ended_by")
	}
}
