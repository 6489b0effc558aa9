// Package flows embeds the committed IVR flows: the default Chongqing 12345
// flow (chongqing-12345.yaml) and the sub-flows it may include.
package flows

import (
	"embed"
	"io/fs"
)

//go:embed *.yaml
var files embed.FS

// DefaultName is the default flow's file name.
const DefaultName = "chongqing-12345.yaml"

// FS returns the embedded flow files.
func FS() fs.FS { return files }

// Default returns the default flow's YAML source.
func Default() []byte {
	b, err := files.ReadFile(DefaultName)
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}
