package cases

import "time"

// WorkingDayCalendar tells working days from days off. The routing package's
// holiday calendar (public holidays and 调休 working weekends, loaded as data)
// implements it; WeekendCalendar is the fallback when none is configured.
type WorkingDayCalendar interface {
	// IsWorkingDay reports whether the local date of date (Asia/Shanghai) is
	// a working day.
	IsWorkingDay(date time.Time) bool
}

// WeekendCalendar treats Monday to Friday as working days. It knows no
// holidays: use the routing calendar in production.
type WeekendCalendar struct{}

// IsWorkingDay implements WorkingDayCalendar.
func (WeekendCalendar) IsWorkingDay(d time.Time) bool {
	wd := d.In(shanghai).Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// DuePolicy gives a case its due date: a number of working days by appeal
// type, counted on a calendar.
type DuePolicy struct {
	Calendar WorkingDayCalendar
	// Days by appeal type. Missing types use DefaultDueDays.
	Days map[AppealType]int
}

// DefaultDueDays are the defaults of issue 5: 3 working days for a
// consultation, 7 for help and suggestions, 15 for complaints and reports.
func DefaultDueDays() map[AppealType]int {
	return map[AppealType]int{
		AppealConsultation: 3, AppealHelp: 7, AppealSuggestion: 7,
		AppealComplaint: 15, AppealReport: 15,
	}
}

// DueDate returns the last working day (YYYY-MM-DD, Asia/Shanghai) by which a
// case of type t opened at opened must be closed. The day the case is opened
// does not count: a consultation opened on a Monday is due on Thursday. It
// returns "" for an unknown type.
func (p DuePolicy) DueDate(opened time.Time, t AppealType) string {
	n, ok := p.Days[t]
	if !ok {
		n, ok = DefaultDueDays()[t]
	}
	if !ok || n <= 0 {
		return ""
	}
	cal := p.Calendar
	if cal == nil {
		cal = WeekendCalendar{}
	}
	l := opened.In(shanghai)
	// Noon avoids any edge where a calendar truncates the time to a date.
	d := time.Date(l.Year(), l.Month(), l.Day(), 12, 0, 0, 0, shanghai)
	for n > 0 {
		d = d.AddDate(0, 0, 1)
		if cal.IsWorkingDay(d) {
			n--
		}
	}
	return d.Format("2006-01-02")
}

// OnTime reports whether a case closed at closed met its due date. A case
// without a due date is on time when closed.
func OnTime(due string, closed time.Time) bool {
	if closed.IsZero() {
		return false
	}
	if due == "" {
		return true
	}
	return closed.In(shanghai).Format("2006-01-02") <= due
}

// WorkingDayFunc adapts a function to WorkingDayCalendar, e.g. the routing
// package's Calendars.DayKind.
type WorkingDayFunc func(date time.Time) bool

// IsWorkingDay implements WorkingDayCalendar.
func (f WorkingDayFunc) IsWorkingDay(date time.Time) bool { return f(date) }
