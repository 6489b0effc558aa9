package cases_test

import (
	"testing"
	"time"

	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/cases/casetest"
	"github.com/cq12345/hotline/routing"
)

func shanghai(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, cases.Shanghai())
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestDueDate(t *testing.T) {
	// The routing package's calendar, loaded from the committed 2026 year
	// file, must agree with the table calendar of the conformance suite.
	cals, err := routing.DefaultCalendars()
	if err != nil {
		t.Fatal(err)
	}
	fromRouting := cases.WorkingDayFunc(func(d time.Time) bool {
		k, _, err := cals.DayKind("cn", d.In(cases.Shanghai()))
		if err != nil {
			t.Errorf("routing calendar: %v", err)
		}
		return k == routing.Workday || k == routing.AdjustedWorkday
	})
	custom := map[cases.AppealType]int{cases.AppealConsultation: 1}
	for _, tc := range []struct {
		name   string
		opened string
		typ    cases.AppealType
		days   map[cases.AppealType]int
		want   string
	}{
		{"consultation over National Day lands on the 调休 Saturday", "2026-09-30 16:00", cases.AppealConsultation, nil, "2026-10-10"},
		{"help", "2026-09-30 16:00", cases.AppealHelp, nil, "2026-10-15"},
		{"suggestion", "2026-09-30 16:00", cases.AppealSuggestion, nil, "2026-10-15"},
		{"complaint", "2026-09-30 16:00", cases.AppealComplaint, nil, "2026-10-27"},
		{"report", "2026-09-30 16:00", cases.AppealReport, nil, "2026-10-27"},
		{"opened on a holiday", "2026-10-03 10:00", cases.AppealConsultation, nil, "2026-10-10"},
		{"opened on the 调休 Saturday", "2026-10-10 10:00", cases.AppealConsultation, nil, "2026-10-14"},
		{"调休 Sunday before Mid-Autumn counts", "2026-09-18 10:00", cases.AppealConsultation, nil, "2026-09-22"},
		{"plain week", "2026-11-23 10:00", cases.AppealConsultation, nil, "2026-11-26"},
		{"Friday to Monday", "2026-11-27 10:00", cases.AppealConsultation, custom, "2026-11-30"},
		{"late Friday evening", "2026-11-27 23:30", cases.AppealConsultation, custom, "2026-11-30"},
		{"unknown type", "2026-11-23 10:00", "gossip", nil, ""},
	} {
		for name, cal := range map[string]cases.WorkingDayCalendar{"table": casetest.NationalDay2026(), "routing": fromRouting} {
			p := cases.DuePolicy{Calendar: cal, Days: tc.days}
			if got := p.DueDate(shanghai(t, tc.opened), tc.typ); got != tc.want {
				t.Errorf("%s (%s calendar): due %q, want %q", tc.name, name, got, tc.want)
			}
		}
	}
	// Without a calendar only weekends are days off (the embedded fallback).
	if got := (cases.DuePolicy{}).DueDate(shanghai(t, "2026-09-30 10:00"), cases.AppealConsultation); got != "2026-10-05" {
		t.Errorf("weekend calendar: %q", got)
	}
}

func TestOnTime(t *testing.T) {
	for _, tc := range []struct {
		due    string
		closed string
		want   bool
	}{
		{"2026-10-10", "2026-10-10 23:59", true},
		{"2026-10-10", "2026-10-11 00:01", false},
		{"", "2026-10-11 00:01", true},
		{"2026-10-10", "", false},
	} {
		var closed time.Time
		if tc.closed != "" {
			closed = shanghai(t, tc.closed)
		}
		if got := cases.OnTime(tc.due, closed); got != tc.want {
			t.Errorf("due %q closed %q: %v", tc.due, tc.closed, got)
		}
	}
}

func TestCaseNumbers(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"20261128-000123", "20261128-000123", true},
		{"20261128000123", "20261128-000123", true}, // keyed in on the phone
		{" 20261128-1234567 ", "20261128-1234567", true},
		{"20261128-000000", "", false},
		{"20261332-000001", "", false},
		{"2026112", "", false},
		{"abc", "", false},
	} {
		got, err := cases.NormaliseNumber(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormaliseNumber(%q) = %q, %v", tc.in, got, err)
		}
	}
	if got := cases.DayOf(time.Date(2026, 11, 27, 16, 30, 0, 0, time.UTC)); got != "20261128" {
		t.Errorf("DayOf 16:30 UTC = %s, want the Shanghai date 20261128", got)
	}
}

func FuzzParseNumber(f *testing.F) {
	f.Add("20261128-000123")
	f.Add("20261128000123")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := cases.NormaliseNumber(s)
		if err != nil {
			return
		}
		again, err := cases.NormaliseNumber(n)
		if err != nil || again != n {
			t.Fatalf("%q -> %q -> %q, %v", s, n, again, err)
		}
	})
}
