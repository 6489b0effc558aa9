package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/prompts"
)

// offlineEnv is what --offline validates and simulates against: the prompt
// catalogue built into this binary, sub-flows from the flow file's folder,
// and — since the server's configuration is not at hand — every destination
// and queue the flow names taken as configured and every calendar as
// defined and open. So offline checks catch syntax, graph, prompt and
// language problems; destinations, queues and calendars are checked by the
// server (validate without --offline).
func offlineEnv(file string, src []byte) (ivr.Env, error) {
	b, err := fs.ReadFile(prompts.Embedded(), "catalogue.yaml")
	if err != nil {
		return ivr.Env{}, fmt.Errorf("offline: %w", err)
	}
	cat, err := prompts.ParseCatalogue(b)
	if err != nil {
		return ivr.Env{}, fmt.Errorf("offline: %w", err)
	}
	env := ivr.Env{
		Catalogue:    cat,
		Destinations: map[string]bool{},
		Queues:       map[string]bool{},
		Calendars:    openCalendars{},
		Includes:     dirIncludes(filepath.Dir(file)),
	}
	var doc any
	if yaml.Unmarshal(src, &doc) == nil {
		collect(doc, "destination", env.Destinations)
		collect(doc, "queue", env.Queues)
	}
	return env, nil
}

// collect gathers the string values of key anywhere in a YAML document.
func collect(v any, key string, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == key {
				into[s] = true
			}
			collect(e, key, into)
		}
	case []any:
		for _, e := range x {
			collect(e, key, into)
		}
	}
}

// openCalendars defines every calendar, always open.
type openCalendars struct{}

func (openCalendars) Has(string) bool                        { return true }
func (openCalendars) IsOpen(string, time.Time) (bool, error) { return true, nil }

// dirIncludes reads sub-flow "<id>.yaml" from a folder.
type dirIncludes string

func (d dirIncludes) Include(id string) ([]byte, error) {
	if !filepath.IsLocal(id) {
		return nil, fmt.Errorf("sub-flow %q: not a plain name", id)
	}
	return os.ReadFile(filepath.Join(string(d), id+".yaml"))
}
