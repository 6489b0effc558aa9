// Package ivr holds the flow model and the interpreter that runs a flow on a
// call. It never knows which media plane carries the call: the planes (sip,
// ari) implement Call.
package ivr

import (
	"context"
	"errors"
	"time"
)

// Call is one caller's call as the IVR sees it, whatever plane carries it.
//
// Digits are buffered by the plane from the moment the call exists: a digit
// pressed during a prompt stays in the buffer until ReadDigit takes it or
// FlushDigits drops it (like Asterisk's Read() and the ARI DTMF events).
type Call interface {
	// ID is the plane's call id (SIP Call-ID or the ARI channel id).
	ID() string
	// Info describes the call. Info().Caller is personal data: mask it
	// (telemetry.MaskNumber) before it reaches a log, span or metric.
	Info() CallInfo
	// Answer answers the call. Calling it twice is harmless.
	Answer(ctx context.Context) error
	// Play plays the audio keys in order (a key is "<lang>/<prompt id>", e.g.
	// "zh-CN/greeting"). With bargeIn, a DTMF digit stops the playback at once
	// (Play returns nil; the digit stays buffered for ReadDigit). It returns
	// ErrHungUp when the call ended, or ctx's error.
	Play(ctx context.Context, keys []string, bargeIn bool) error
	// ReadDigit returns the next buffered digit ('0'-'9', '*', '#', 'A'-'D'),
	// waiting up to timeout for one. It returns ErrTimeout when none came.
	// A timeout of 0 only looks at the buffer.
	ReadDigit(ctx context.Context, timeout time.Duration) (byte, error)
	// FlushDigits drops buffered digits.
	FlushDigits()
	// Hangup ends the call (BYE, or the ARI hangup) with a reason for the
	// record. Calling it on an ended call is harmless.
	Hangup(ctx context.Context, reason string) error
	// Done is closed when the call has ended, whoever ended it.
	Done() <-chan struct{}
}

// CallInfo describes a call at its start.
type CallInfo struct {
	// Caller is the calling number as received. Personal data (article 22).
	Caller string
	// Dialled is the normalised service number dialled, e.g. "12345".
	Dialled string
	// Plane names the media plane: "sip" or "ari".
	Plane string
	// Started is when the call arrived.
	Started time.Time
}

var (
	// ErrHungUp reports that the call ended (either side) while the IVR
	// was using it.
	ErrHungUp = errors.New("ivr: call hung up")
	// ErrTimeout reports that no digit came within the timeout.
	ErrTimeout = errors.New("ivr: no input")
)
