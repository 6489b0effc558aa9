package cases

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Shanghai is China Standard Time. China has kept UTC+8 without daylight
// saving since 1991, so a fixed zone is exact for every case date and needs
// no tzdata on the host.
var shanghai = time.FixedZone("Asia/Shanghai", 8*3600)

// Shanghai returns the zone case numbers and due dates are counted in.
func Shanghai() *time.Location { return shanghai }

// DayOf returns the case-number day (YYYYMMDD, Asia/Shanghai) of t.
func DayOf(t time.Time) string { return t.In(shanghai).Format("20060102") }

// FormatNumber builds a case number: the day and a per-day sequence of at
// least six digits, e.g. "20261128-000123".
func FormatNumber(day string, seq int64) string { return fmt.Sprintf("%s-%06d", day, seq) }

// ParseNumber splits a case number into its day and sequence. It accepts the
// digits the caller keys in on the phone too ("20261128000123").
func ParseNumber(s string) (day string, seq int64, err error) {
	s = strings.TrimSpace(s)
	if len(s) >= 15 && s[8] == '-' {
		s = s[:8] + s[9:]
	}
	if len(s) < 14 {
		return "", 0, fmt.Errorf("cases: case number %q: too short", s)
	}
	day = s[:8]
	if _, err := time.ParseInLocation("20060102", day, shanghai); err != nil {
		return "", 0, fmt.Errorf("cases: case number %q: bad date", s)
	}
	seq, err = strconv.ParseInt(s[8:], 10, 64)
	if err != nil || seq <= 0 {
		return "", 0, fmt.Errorf("cases: case number %q: bad sequence", s)
	}
	return day, seq, nil
}

// NormaliseNumber returns the canonical form of a case number, or an error.
func NormaliseNumber(s string) (string, error) {
	day, seq, err := ParseNumber(s)
	if err != nil {
		return "", err
	}
	return FormatNumber(day, seq), nil
}
