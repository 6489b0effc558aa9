package telemetry

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
)

// phoneRun matches a run of digits long enough to be a personal phone
// number (7 to 15 digits, E.164's maximum), optionally after a "+".
// Timestamps and ids also match sometimes; masking them is the safe error.
var phoneRun = regexp.MustCompile(`\+?\d{7,15}`)

// Scrub masks every phone-number-like run of digits in s. It is the safety
// net under MaskNumber: code masks numbers on purpose, and the log handler
// and span exporter scrub whatever slipped through.
func Scrub(s string) string {
	if !hasLongDigitRun(s) {
		return s
	}
	var b strings.Builder
	last := 0
	for _, loc := range phoneRun.FindAllStringIndex(s, -1) {
		m := s[loc[0]:loc[1]]
		// Digits glued to letters are part of an identifier (a UUID, a
		// hex trace id), not a phone number.
		if (loc[0] > 0 && isAlnum(s[loc[0]-1])) || (loc[1] < len(s) && isAlnum(s[loc[1]])) || looksLikeCaseNumber(m) {
			continue
		}
		b.WriteString(s[last:loc[0]])
		b.WriteString(MaskNumber(m))
		last = loc[1]
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// looksLikeCaseNumber keeps case numbers' date parts (20261128-000123)
// and similar 8-digit dates readable: they are not personal data.
func looksLikeCaseNumber(m string) bool {
	if len(m) != 8 || m[0] != '2' || m[1] != '0' {
		return false
	}
	month := (m[4]-'0')*10 + (m[5] - '0')
	day := (m[6]-'0')*10 + (m[7] - '0')
	return month >= 1 && month <= 12 && day >= 1 && day <= 31
}

func hasLongDigitRun(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
			if n >= 7 {
				return true
			}
		} else {
			n = 0
		}
	}
	return false
}

// MaskingHandler wraps a slog.Handler and scrubs phone numbers from the
// message and every string attribute before they are written.
type MaskingHandler struct{ next slog.Handler }

// NewMaskingHandler returns a handler that scrubs records before next.
func NewMaskingHandler(next slog.Handler) *MaskingHandler { return &MaskingHandler{next: next} }

func (h *MaskingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *MaskingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(scrubAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *MaskingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = scrubAttr(a)
	}
	return &MaskingHandler{next: h.next.WithAttrs(clean)}
}

func (h *MaskingHandler) WithGroup(name string) slog.Handler {
	return &MaskingHandler{next: h.next.WithGroup(name)}
}

func scrubAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Scrub(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, x := range g {
			clean[i] = scrubAttr(x)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, Scrub(err.Error()))
		}
		if s, ok := v.Any().(interface{ String() string }); ok {
			return slog.String(a.Key, Scrub(s.String()))
		}
		return a
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
}
