package media

import (
	"bytes"
	"testing"
)

func TestParseDTMFEvent(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want DTMFEvent
		err  bool
	}{
		{"digit 5 start", []byte{5, 10, 0x00, 0xa0}, DTMFEvent{Event: 5, Volume: 10, Duration: 160}, false},
		{"end bit", []byte{11, 0x80 | 7, 0x03, 0x20}, DTMFEvent{Event: 11, End: true, Volume: 7, Duration: 800}, false},
		{"reserved bit ignored but kept", []byte{1, 0x40 | 63, 0xff, 0xff}, DTMFEvent{Event: 1, Reserved: true, Volume: 63, Duration: 65535}, false},
		{"trailing bytes", []byte{2, 0, 0, 1, 9, 9}, DTMFEvent{Event: 2, Duration: 1}, false},
		{"short", []byte{1, 2, 3}, DTMFEvent{}, true},
		{"empty", nil, DTMFEvent{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDTMFEvent(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDigitEventMapping(t *testing.T) {
	for i, d := range []byte("0123456789*#ABCD") {
		ev, ok := DigitEvent(d)
		if !ok || ev != uint8(i) {
			t.Errorf("DigitEvent(%q) = %d, %v", d, ev, ok)
		}
		back, ok := EventDigit(uint8(i))
		if !ok || back != d {
			t.Errorf("EventDigit(%d) = %q, %v", i, back, ok)
		}
	}
	if ev, ok := DigitEvent('c'); !ok || ev != 14 {
		t.Errorf("DigitEvent('c') = %d, %v", ev, ok)
	}
	for _, d := range []byte("xE!") {
		if _, ok := DigitEvent(d); ok {
			t.Errorf("DigitEvent(%q) accepted", d)
		}
	}
	if _, ok := EventDigit(16); ok {
		t.Error("flash (16) reported as a digit")
	}
}

func FuzzParseDTMFEvent(f *testing.F) {
	f.Add([]byte{5, 10, 0, 160})
	f.Add([]byte{11, 0x80 | 10, 3, 32})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseDTMFEvent(b)
		if len(b) < 4 {
			if err == nil {
				t.Fatalf("no error for %d bytes", len(b))
			}
			return
		}
		if err != nil {
			t.Fatalf("error for %d bytes: %v", len(b), err)
		}
		if ev.Volume > 63 {
			t.Fatalf("volume %d does not fit 6 bits", ev.Volume)
		}
		out := make([]byte, 4)
		if n := ev.MarshalTo(out); n != 4 || !bytes.Equal(out, b[:4]) {
			t.Fatalf("round trip %x -> %+v -> %x", b[:4], ev, out)
		}
		if d, ok := EventDigit(ev.Event); ok {
			if back, ok := DigitEvent(d); !ok || back != ev.Event {
				t.Fatalf("digit mapping not reversible for event %d", ev.Event)
			}
		}
	})
}
