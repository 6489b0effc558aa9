package sip

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
)

// SIP INFO DTMF bodies. There is no RFC for them; the two de-facto formats
// are Cisco's application/dtmf-relay ("Signal=5\r\nDuration=160\r\n") and
// application/dtmf (the bare digit or event code, as in draft-kaplan-dispatch-
// info-dtmf-package).

const (
	ctDTMFRelay = "application/dtmf-relay"
	ctDTMF      = "application/dtmf"
)

var errNoDigit = errors.New("no DTMF digit in body")

// ParseInfoDTMF returns the digit ('0'-'9', '*', '#', 'A'-'D') and, when
// given, the duration carried by a SIP INFO body of the content type ct.
func ParseInfoDTMF(ct string, body []byte) (byte, time.Duration, error) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, 0, fmt.Errorf("content type %q: %w", ct, err)
	}
	switch mt {
	case ctDTMFRelay:
		return parseDTMFRelay(body)
	case ctDTMF:
		d, ok := digitOf(string(bytes.TrimSpace(body)))
		if !ok {
			return 0, 0, errNoDigit
		}
		return d, 0, nil
	}
	return 0, 0, fmt.Errorf("content type %q is not DTMF", mt)
}

func parseDTMFRelay(body []byte) (byte, time.Duration, error) {
	var (
		digit byte
		dur   time.Duration
		found bool
	)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 256), 4096)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "signal":
			d, ok := digitOf(v)
			if !ok {
				return 0, 0, fmt.Errorf("signal %q: %w", v, errNoDigit)
			}
			digit, found = d, true
		case "duration":
			// Milliseconds; a bad or silly value is not worth rejecting
			// the digit for.
			if ms, err := strconv.Atoi(v); err == nil && ms > 0 && ms < 60_000 {
				dur = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if !found {
		return 0, 0, errNoDigit
	}
	return digit, dur, nil
}

// digitOf maps a digit character or an RFC 4733 event code (0-15) to the
// digit character.
func digitOf(s string) (byte, bool) {
	if len(s) == 1 {
		c := s[0]
		switch {
		case c >= '0' && c <= '9', c == '*', c == '#':
			return c, true
		case c >= 'A' && c <= 'D':
			return c, true
		case c >= 'a' && c <= 'd':
			return c - 'a' + 'A', true
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 10 && n <= 15 {
		return "*#ABCD"[n-10], true
	}
	return 0, false
}
