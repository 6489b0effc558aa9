// Package routing decides where a call goes: dialled-number normalisation,
// destinations, calendars, queues and agent state.
package routing

import (
	"strings"
)

// ServiceNumber is the hotline's own number as the IVR knows it.
const ServiceNumber = "12345"

// NormaliseDialled turns a dialled number in any of its usual forms into
// digits: it strips a sip:/sips:/tel: scheme, the host part, URI parameters,
// visual separators (spaces, hyphens, dots, parentheses) and a leading "+".
func NormaliseDialled(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		switch strings.ToLower(s[:i]) {
		case "sip", "sips", "tel":
			s = s[i+1:]
		}
	}
	if i := strings.IndexAny(s, "@;?"); i >= 0 {
		s = s[:i]
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r == '*', r == '#':
			b.WriteRune(r)
		case r == '+' && b.Len() == 0:
			b.WriteRune(r)
		case r == ' ', r == '-', r == '.', r == '(', r == ')', r == '\t':
			// visual separators (RFC 3966 allows "-", "." and "()" in tel: URIs)
		case r == '%':
			// an escaped separator such as %20 in a SIP user part
		default:
			if r >= '0' && r <= '9' {
				b.WriteRune(r)
			}
		}
	}
	out := strings.ReplaceAll(b.String(), "%20", "")
	return out
}

// HotlineNumber reports whether the dialled string reaches 12345: "12345",
// "023-12345", "02312345", "+86 23 12345", "862312345", "tel:+86-23-12345",
// "sip:12345@host;user=phone" and the like. It returns the canonical "12345".
func HotlineNumber(dialled string) (string, bool) {
	n := NormaliseDialled(unescapeSpaces(dialled))
	n = strings.TrimPrefix(n, "+")
	switch n {
	case "12345", "02312345", "862312345", "8602312345", "0086" + "2312345":
		return ServiceNumber, true
	}
	return "", false
}

func unescapeSpaces(s string) string {
	return strings.NewReplacer("%20", " ", "%2D", "-", "%2d", "-").Replace(s)
}
