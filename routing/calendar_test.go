package routing

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"
)

func shanghai(t *testing.T, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEducationBureauCalendar(t *testing.T) {
	cals, err := DefaultCalendars()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at   string
		open bool
		why  string
	}{
		{"2026-09-30 10:00", true, "Wednesday morning"},
		{"2026-09-30 08:59", false, "before 9:00"},
		{"2026-09-30 12:29", true, "just before lunch"},
		{"2026-09-30 12:30", false, "lunch break starts 12:30"},
		{"2026-09-30 13:59", false, "lunch break"},
		{"2026-09-30 14:00", true, "afternoon opens 14:00"},
		{"2026-09-30 17:59", true, "last minute"},
		{"2026-09-30 18:00", false, "after hours"},
		{"2026-09-30 21:00", false, "evening"},
		{"2026-10-01 10:00", false, "国庆节 public holiday (Thursday)"},
		{"2026-10-07 10:00", false, "last day of 国庆节"},
		{"2026-10-08 10:00", true, "first working day after 国庆节"},
		{"2026-10-10 10:00", true, "调休 working Saturday"},
		{"2026-10-10 13:00", false, "调休 Saturday lunch break"},
		{"2026-10-10 19:00", false, "调休 Saturday after hours"},
		{"2026-10-11 10:00", false, "ordinary Sunday"},
		{"2026-10-17 10:00", false, "ordinary Saturday"},
		{"2026-09-20 10:00", true, "调休 working Sunday"},
		{"2026-02-16 10:00", false, "春节 (Monday)"},
		{"2026-02-14 10:00", true, "调休 Saturday before 春节"},
		{"2026-01-04 15:00", true, "调休 Sunday after 元旦"},
	}
	for _, tt := range tests {
		t.Run(tt.at, func(t *testing.T) {
			open, err := cals.IsOpen("edu-bureau", shanghai(t, tt.at))
			if err != nil {
				t.Fatal(err)
			}
			if open != tt.open {
				t.Errorf("IsOpen(edu-bureau, %s) = %v, want %v (%s)", tt.at, open, tt.open, tt.why)
			}
		})
	}
}

func TestInstantsInOtherZones(t *testing.T) {
	cals, err := DefaultCalendars()
	if err != nil {
		t.Fatal(err)
	}
	// 02:00 UTC is 10:00 in Shanghai.
	open, err := cals.IsOpen("edu-bureau", time.Date(2026, 9, 30, 2, 0, 0, 0, time.UTC))
	if err != nil || !open {
		t.Fatalf("10:00 Shanghai given in UTC: open=%v err=%v", open, err)
	}
}

func TestHotlineAlwaysOpen(t *testing.T) {
	cals, err := DefaultCalendars()
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{"2026-10-01 03:00", "2026-10-10 13:00", "2026-12-31 23:59", "2027-02-06 12:00"} {
		open, err := cals.IsOpen("12345", shanghai(t, at))
		if err != nil || !open {
			t.Errorf("12345 at %s: open=%v err=%v, want open", at, open, err)
		}
	}
	if !cals.Has("12345") || !cals.Has("edu-bureau") || cals.Has("nope") {
		t.Errorf("Has: ids %v", cals.IDs())
	}
	if _, err := cals.IsOpen("nope", time.Now()); err == nil {
		t.Error("unknown calendar: want an error")
	}
}

func TestDayKinds(t *testing.T) {
	cals, err := DefaultCalendars()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at   string
		kind DayKind
	}{
		{"2026-10-01 12:00", Holiday},
		{"2026-10-10 12:00", AdjustedWorkday},
		{"2026-10-09 12:00", Workday},
		{"2026-10-11 12:00", Weekend},
		{"2026-02-15 12:00", Holiday}, // 腊月二十八: the break starts before 除夕
	}
	for _, tt := range tests {
		k, _, err := cals.DayKind("cn", shanghai(t, tt.at))
		if err != nil || k != tt.kind {
			t.Errorf("DayKind(%s) = %v, %v; want %v", tt.at, k, err, tt.kind)
		}
	}
}

// A year without data answers by the weekly hours and says so.
func TestMissingYear(t *testing.T) {
	cals, err := DefaultCalendars()
	if err != nil {
		t.Fatal(err)
	}
	open, err := cals.IsOpen("edu-bureau", shanghai(t, "2027-01-05 10:00"))
	if !errors.Is(err, ErrNoYearData) {
		t.Fatalf("2027 without data: err = %v, want ErrNoYearData", err)
	}
	if !open {
		t.Error("2027-01-05 is a Tuesday: weekly hours say open")
	}
}

// Loading 2027 is a data change: a year file in the admin directory.
func TestAdminDirectoryAddsYearAndCalendar(t *testing.T) {
	dir := t.TempDir()
	year := `year: 2027
timezone: Asia/Shanghai
holidays:
  - {name: "元旦", from: 2027-01-01, to: 2027-01-03}
workdays: [2027-01-09]
`
	defs := `calendars:
  - id: weekend-desk
    timezone: Asia/Shanghai
    region: cn
    hours:
      sat: ["10:00-16:00"]
      sun: ["10:00-16:00"]
    holidays: open
`
	if err := os.WriteFile(filepath.Join(dir, "cn-2027.yaml"), []byte(year), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "calendars.yaml"), []byte(defs), 0o644); err != nil {
		t.Fatal(err)
	}
	cals, err := LoadCalendarsDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := cals.Years("cn"); len(got) != 2 || got[0] != 2026 || got[1] != 2027 {
		t.Fatalf("years = %v, want [2026 2027]", got)
	}
	open, err := cals.IsOpen("edu-bureau", shanghai(t, "2027-01-01 10:00"))
	if err != nil || open {
		t.Errorf("2027-01-01 元旦: open=%v err=%v, want closed without error", open, err)
	}
	open, err = cals.IsOpen("edu-bureau", shanghai(t, "2027-01-09 10:00"))
	if err != nil || !open {
		t.Errorf("2027-01-09 调休 Saturday: open=%v err=%v, want open", open, err)
	}
	// The embedded definitions stay; the admin file adds one.
	if !cals.Has("edu-bureau") || !cals.Has("weekend-desk") {
		t.Errorf("ids = %v", cals.IDs())
	}
	// Without workday_hours a 调休 Saturday keeps the Saturday hours.
	open, _ = cals.IsOpen("weekend-desk", shanghai(t, "2026-10-10 11:00"))
	if !open {
		t.Error("weekend-desk on the 调休 Saturday 2026-10-10 11:00: want open by its Saturday hours")
	}
	open, _ = cals.IsOpen("weekend-desk", shanghai(t, "2026-10-09 11:00"))
	if open {
		t.Error("weekend-desk on Friday: want closed")
	}
}

func TestMissingAdminDirIsFine(t *testing.T) {
	if _, err := LoadCalendarsDir(filepath.Join(t.TempDir(), "absent")); err != nil {
		t.Fatal(err)
	}
}

func TestBadCalendarData(t *testing.T) {
	tests := map[string]string{
		"cn-2026.yaml":   "year: 2025\nholidays: []\n",
		"cn-2028.yaml":   "year: 2028\nworkdays: [2028-01-05]\n", // a Wednesday
		"xx.yaml":        "year: 2026\n",
		"cn-2029.yaml":   "year: 2029\nholidays:\n  - {name: x, from: 2029-01-05, to: 2029-01-01}\n",
		"calendars.yaml": "calendars:\n  - id: a\n    hours:\n      mon: [\"12:00-09:00\"]\n",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := LoadCalendars(EmbeddedCalendars(), fstest.MapFS{name: {Data: []byte(body)}})
			if err == nil {
				t.Errorf("%s accepted:\n%s", name, body)
			}
		})
	}
}

func TestIsWorkingDay(t *testing.T) {
	cals, err := DefaultCalendars()
	if err != nil {
		t.Fatal(err)
	}
	for at, want := range map[string]bool{
		"2026-10-01 10:00": false, // 国庆节
		"2026-10-10 10:00": true,  // 调休 Saturday
		"2026-10-11 10:00": false, // Sunday
		"2026-10-12 00:30": true,  // Monday, just after midnight in Shanghai
	} {
		if got := cals.IsWorkingDay(shanghai(t, at)); got != want {
			t.Errorf("IsWorkingDay(%s) = %v, want %v", at, got, want)
		}
	}
	// 2026-10-11 17:00 UTC is Monday 01:00 in Shanghai.
	if !cals.IsWorkingDay(time.Date(2026, 10, 11, 17, 0, 0, 0, time.UTC)) {
		t.Error("the date must be taken in Asia/Shanghai")
	}
}
