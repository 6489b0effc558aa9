package telemetry

import "strings"

// MaskNumber hides the middle of a phone number so that a log line, span
// attribute or metric label never carries a caller's full number (article 22
// of the hotline's rules): "13800138000" -> "138****8000".
//
// Numbers of up to 7 digits keep their first and last digit only; service
// numbers such as 12345 are not personal data but are masked the same way for
// simplicity, except those listed in public (see IsServiceNumber).
func MaskNumber(n string) string {
	n = strings.TrimSpace(n)
	if n == "" {
		return ""
	}
	if IsServiceNumber(n) {
		return n
	}
	r := []rune(n)
	switch {
	case len(r) >= 11:
		// Keep a prefix of 3 and a suffix of 4 as Chinese practice does.
		return string(r[:len(r)-8]) + "****" + string(r[len(r)-4:])
	case len(r) >= 8:
		return string(r[:3]) + strings.Repeat("*", len(r)-7) + string(r[len(r)-4:])
	case len(r) >= 3:
		return string(r[:1]) + strings.Repeat("*", len(r)-2) + string(r[len(r)-1:])
	default:
		return strings.Repeat("*", len(r))
	}
}

// serviceNumbers are public hotline and emergency numbers: not personal data.
var serviceNumbers = map[string]bool{
	"12345": true, "02312345": true, "12315": true, "12333": true,
	"110": true, "119": true, "120": true, "122": true,
}

// IsServiceNumber reports whether n is a public service number that may be
// logged as is.
func IsServiceNumber(n string) bool { return serviceNumbers[n] }
