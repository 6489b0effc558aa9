package media

import (
	"errors"
	"fmt"
)

// DTMFEvent is the payload of one RFC 4733 named telephone event packet
// (https://www.rfc-editor.org/rfc/rfc4733#section-2.3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     event     |E|R| volume    |          duration             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type DTMFEvent struct {
	Event    uint8  // event code; 0-9, 10 '*', 11 '#', 12-15 'A'-'D', 16 flash (RFC 4733 section 3.2)
	End      bool   // E bit: this packet carries the end of the event
	Reserved bool   // R bit: reserved, must be ignored by receivers (kept for round trips)
	Volume   uint8  // power level in -dBm0, 6 bits (0..63)
	Duration uint16 // duration so far, in timestamp units (8 kHz samples)
}

// dtmfEventSize is the size of one event payload.
const dtmfEventSize = 4

// errShortDTMF is returned for a payload shorter than one event.
var errShortDTMF = errors.New("media: telephone-event payload shorter than 4 bytes")

// ParseDTMFEvent parses an RFC 4733 telephone-event payload. Only the first
// 4 bytes are read: RFC 4733 section 2.3 defines a single event per payload
// (several events in one packet need RFC 2198 redundancy, which we do not
// negotiate), so trailing bytes are ignored.
func ParseDTMFEvent(b []byte) (DTMFEvent, error) {
	if len(b) < dtmfEventSize {
		return DTMFEvent{}, fmt.Errorf("%w (%d bytes)", errShortDTMF, len(b))
	}
	return DTMFEvent{
		Event:    b[0],
		End:      b[1]&0x80 != 0,
		Reserved: b[1]&0x40 != 0,
		Volume:   b[1] & 0x3f,
		Duration: uint16(b[2])<<8 | uint16(b[3]),
	}, nil
}

// MarshalTo writes the 4-byte payload into b and returns 4 (or 0 if b is
// too short). Volume is truncated to its 6 bits.
func (ev DTMFEvent) MarshalTo(b []byte) int {
	if len(b) < dtmfEventSize {
		return 0
	}
	b[0] = ev.Event
	b[1] = ev.Volume & 0x3f
	if ev.End {
		b[1] |= 0x80
	}
	if ev.Reserved {
		b[1] |= 0x40
	}
	b[2] = byte(ev.Duration >> 8)
	b[3] = byte(ev.Duration)
	return dtmfEventSize
}

// EventDigit maps an RFC 4733 DTMF event code (section 3.2, table 7) to
// its digit: '0'-'9', '*', '#', 'A'-'D'. Flash (16) and other events are
// not digits.
func EventDigit(event uint8) (byte, bool) {
	switch {
	case event <= 9:
		return '0' + event, true
	case event == 10:
		return '*', true
	case event == 11:
		return '#', true
	case event >= 12 && event <= 15:
		return 'A' + event - 12, true
	}
	return 0, false
}

// DigitEvent is the inverse of EventDigit; lower-case 'a'-'d' are accepted.
func DigitEvent(d byte) (uint8, bool) {
	switch {
	case d >= '0' && d <= '9':
		return d - '0', true
	case d == '*':
		return 10, true
	case d == '#':
		return 11, true
	case d >= 'A' && d <= 'D':
		return d - 'A' + 12, true
	case d >= 'a' && d <= 'd':
		return d - 'a' + 12, true
	}
	return 0, false
}
