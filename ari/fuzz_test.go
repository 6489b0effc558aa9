package ari

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeEvent: whatever arrives on the WebSocket, DecodeEvent does not
// panic, and what it decodes re-encodes to something that decodes to the
// same type again.
func FuzzDecodeEvent(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.events.jsonl")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range splitLines(b) {
			f.Add(line)
		}
	}
	f.Add([]byte(`{"type":"Nope","x":1}`))
	f.Add([]byte(`{"type":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("re-encode %s: %v", ev.EventType(), err)
		}
		ev2, err := DecodeEvent(again)
		if err != nil {
			t.Fatalf("decode of re-encoded %s: %v\n%s", ev.EventType(), err, again)
		}
		if ev2.EventType() != ev.EventType() {
			t.Fatalf("type %s became %s", ev.EventType(), ev2.EventType())
		}
	})
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, c := range b {
		if c == '\n' {
			if i > start {
				out = append(out, b[start:i])
			}
			start = i + 1
		}
	}
	if start < len(b) {
		out = append(out, b[start:])
	}
	return out
}
