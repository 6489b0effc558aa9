// Package prompts holds the prompt catalogue (id -> text per language) and
// the prompts' audio as 8 kHz mono G.711 (A-law and µ-law) WAV files, which
// are embedded in the binary so that hotlined needs no files at run time.
package prompts

import (
	"embed"
	"fmt"
	"io/fs"

	"go.yaml.in/yaml/v3"
)

//go:embed catalogue.yaml audio
var embedded embed.FS

// Embedded returns the catalogue and audio compiled into the binary.
func Embedded() fs.FS { return embedded }

// Catalogue lists every prompt and its text in each language.
type Catalogue struct {
	Languages []string `yaml:"languages"`
	Prompts   []Prompt `yaml:"-"`
	byID      map[string]*Prompt
}

// Prompt is one prompt: an id and its text per language.
type Prompt struct {
	ID   string
	Text map[string]string // language -> text
}

// ParseCatalogue reads catalogue.yaml.
func ParseCatalogue(b []byte) (*Catalogue, error) {
	var raw struct {
		Languages []string            `yaml:"languages"`
		Prompts   []map[string]string `yaml:"prompts"`
	}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("prompts: catalogue: %w", err)
	}
	c := &Catalogue{Languages: raw.Languages, byID: map[string]*Prompt{}}
	for i, m := range raw.Prompts {
		id := m["id"]
		if id == "" {
			return nil, fmt.Errorf("prompts: catalogue: entry %d has no id", i)
		}
		if _, dup := c.byID[id]; dup {
			return nil, fmt.Errorf("prompts: catalogue: duplicate id %q", id)
		}
		p := Prompt{ID: id, Text: map[string]string{}}
		for _, l := range raw.Languages {
			if m[l] == "" {
				return nil, fmt.Errorf("prompts: catalogue: %q has no %s text", id, l)
			}
			p.Text[l] = m[l]
		}
		c.Prompts = append(c.Prompts, p)
	}
	for i := range c.Prompts {
		c.byID[c.Prompts[i].ID] = &c.Prompts[i]
	}
	return c, nil
}

// Lookup returns the prompt with that id.
func (c *Catalogue) Lookup(id string) (*Prompt, bool) {
	p, ok := c.byID[id]
	return p, ok
}

// Has reports whether the prompt id has text in lang.
func (c *Catalogue) Has(id, lang string) bool {
	p, ok := c.byID[id]
	return ok && p.Text[lang] != ""
}
