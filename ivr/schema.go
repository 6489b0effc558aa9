package ivr

import (
	_ "embed"
	"fmt"
	"io/fs"
)

//go:embed flow.schema.json
var schemaJSON []byte

// Schema returns the flow language's JSON Schema (draft 2020-12), for
// editors and the web editor. Load checks more than the schema can.
func Schema() []byte { return append([]byte(nil), schemaJSON...) }

// FSIncludes resolves include nodes from a file system: sub-flow id "x"
// is the file "x.yaml".
type FSIncludes struct{ FS fs.FS }

// Include implements IncludeResolver.
func (i FSIncludes) Include(id string) ([]byte, error) {
	if !idRE.MatchString(id) {
		return nil, fmt.Errorf("bad sub-flow id %q", id)
	}
	return fs.ReadFile(i.FS, id+".yaml")
}
