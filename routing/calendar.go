package routing

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed calendars/*.yaml
var embeddedCalendars embed.FS

// EmbeddedCalendars returns the calendar data compiled into the binary:
// calendars.yaml (definitions) and the year files (<region>-<year>.yaml).
func EmbeddedCalendars() fs.FS {
	sub, err := fs.Sub(embeddedCalendars, "calendars")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// ErrNoYearData reports that no holiday file covers the year asked about:
// holidays and 调休 days are published yearly and never computed by rule.
var ErrNoYearData = errors.New("routing: no holiday data for that year")

// Span is an opening span within a day, in minutes after midnight.
type Span struct{ From, To int }

func (s Span) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", s.From/60, s.From%60, s.To/60, s.To%60)
}

// Calendar is one line's opening hours.
type Calendar struct {
	ID         string
	Name       string
	Location   *time.Location
	Region     string // holiday region ("cn"); "" ignores holidays
	AlwaysOpen bool
	Weekly     [7][]Span // by time.Weekday
	// HolidaysClosed closes the calendar on public holidays.
	HolidaysClosed bool
	// WorkdayHours are used on 调休 working weekend days (nil keeps the
	// weekend's own hours).
	WorkdayHours []Span
}

// HolidayYear is one year's public holidays and 调休 working weekend days
// for a region, as published by the State Council.
type HolidayYear struct {
	Region   string
	Year     int
	Holidays map[string]string // "2026-10-01" -> name
	Workdays map[string]bool   // "2026-10-10"
}

// DayKind says what kind of day a date is.
type DayKind string

const (
	Workday         DayKind = "workday"
	Weekend         DayKind = "weekend"
	Holiday         DayKind = "holiday"
	AdjustedWorkday DayKind = "adjusted-workday" // 调休上班
)

// Calendars holds calendar definitions and holiday years. It is read-only
// after loading and safe to share; to pick up edited data, load a new one.
type Calendars struct {
	defs  map[string]*Calendar
	years map[string]map[int]*HolidayYear // region -> year
}

// DefaultCalendars loads the embedded calendars.
func DefaultCalendars() (*Calendars, error) { return LoadCalendars(EmbeddedCalendars()) }

// LoadCalendarsDir loads the embedded calendars, then the admin directory
// dir (if it exists): its calendars.yaml replaces definitions by id, its
// year files replace or add years. Adding 2027 is dropping cn-2027.yaml
// there.
func LoadCalendarsDir(dir string) (*Calendars, error) {
	srcs := []fs.FS{EmbeddedCalendars()}
	if dir != "" {
		srcs = append(srcs, os.DirFS(dir))
	}
	return LoadCalendars(srcs...)
}

// LoadCalendars reads calendars.yaml and every <region>-<year>.yaml from
// each source in turn; later sources override earlier ones (a calendar by
// id, a holiday year by region and year). A missing source directory is
// skipped.
func LoadCalendars(sources ...fs.FS) (*Calendars, error) {
	c := &Calendars{defs: map[string]*Calendar{}, years: map[string]map[int]*HolidayYear{}}
	for _, src := range sources {
		entries, err := fs.ReadDir(src, ".")
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("routing: calendars: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || (path.Ext(name) != ".yaml" && path.Ext(name) != ".yml") {
				continue
			}
			b, err := fs.ReadFile(src, name)
			if err != nil {
				return nil, fmt.Errorf("routing: calendars: %w", err)
			}
			if strings.TrimSuffix(strings.TrimSuffix(name, ".yml"), ".yaml") == "calendars" {
				defs, err := parseCalendarDefs(b)
				if err != nil {
					return nil, fmt.Errorf("routing: calendars: %s: %w", name, err)
				}
				for _, d := range defs {
					c.defs[d.ID] = d
				}
				continue
			}
			y, err := ParseHolidayYear(name, b)
			if err != nil {
				return nil, fmt.Errorf("routing: calendars: %s: %w", name, err)
			}
			if c.years[y.Region] == nil {
				c.years[y.Region] = map[int]*HolidayYear{}
			}
			c.years[y.Region][y.Year] = y
		}
	}
	for _, d := range c.defs {
		if d.Region != "" && len(c.years[d.Region]) == 0 {
			return nil, fmt.Errorf("routing: calendars: calendar %q uses region %q, which has no year file", d.ID, d.Region)
		}
	}
	return c, nil
}

// Has reports whether the calendar id is defined.
func (c *Calendars) Has(id string) bool { _, ok := c.defs[id]; return ok }

// IDs lists the calendar ids, sorted.
func (c *Calendars) IDs() []string { return slices.Sorted(maps.Keys(c.defs)) }

// Calendar returns a definition by id.
func (c *Calendars) Calendar(id string) (*Calendar, bool) {
	d, ok := c.defs[id]
	return d, ok
}

// Years lists the years with holiday data for a region, sorted.
func (c *Calendars) Years(region string) []int { return slices.Sorted(maps.Keys(c.years[region])) }

// DayKind says what the date of t (in loc) is for a region. It returns
// ErrNoYearData, with Workday or Weekend by the week alone, when the
// region has no data for that year.
func (c *Calendars) DayKind(region string, t time.Time) (DayKind, string, error) {
	date := t.Format(time.DateOnly)
	weekend := t.Weekday() == time.Saturday || t.Weekday() == time.Sunday
	plain := Workday
	if weekend {
		plain = Weekend
	}
	y := c.years[region][t.Year()]
	if y == nil {
		return plain, "", fmt.Errorf("%w: %s %d", ErrNoYearData, region, t.Year())
	}
	if name, ok := y.Holidays[date]; ok {
		return Holiday, name, nil
	}
	if y.Workdays[date] {
		return AdjustedWorkday, "", nil
	}
	return plain, "", nil
}

// WorkRegion is the holiday region IsWorkingDay answers for.
const WorkRegion = "cn"

var shanghaiLoc = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600) // China has no DST
	}
	return loc
}()

// IsWorkingDay reports whether the Asia/Shanghai date of d is a working day
// in mainland China: a weekday that is not a public holiday, or a 调休
// working weekend day. Without data for the year it goes by the week alone.
// (It implements cases.WorkingDayCalendar.)
func (c *Calendars) IsWorkingDay(d time.Time) bool {
	k, _, _ := c.DayKind(WorkRegion, d.In(shanghaiLoc))
	return k == Workday || k == AdjustedWorkday
}

// IsOpen reports whether calendar id is open at t. For a year without
// holiday data it answers by the weekly hours and returns ErrNoYearData
// too, so the caller can log it.
func (c *Calendars) IsOpen(id string, t time.Time) (bool, error) {
	d, ok := c.defs[id]
	if !ok {
		return false, fmt.Errorf("routing: unknown calendar %q", id)
	}
	if d.AlwaysOpen {
		return true, nil
	}
	local := t.In(d.Location)
	spans := d.Weekly[local.Weekday()]
	var yearErr error
	if d.Region != "" {
		kind, _, err := c.DayKind(d.Region, local)
		yearErr = err
		switch kind {
		case Holiday:
			if d.HolidaysClosed {
				return false, nil
			}
		case AdjustedWorkday:
			if d.WorkdayHours != nil {
				spans = d.WorkdayHours
			}
		}
	}
	m := local.Hour()*60 + local.Minute()
	for _, s := range spans {
		if m >= s.From && m < s.To {
			return true, yearErr
		}
	}
	return false, yearErr
}

var yearFileRE = regexp.MustCompile(`^([a-z][a-z0-9_]*)-(\d{4})\.ya?ml$`)

// ParseHolidayYear reads a year file named <region>-<year>.yaml.
func ParseHolidayYear(name string, b []byte) (*HolidayYear, error) {
	m := yearFileRE.FindStringSubmatch(name)
	if m == nil {
		return nil, errors.New("a year file is named <region>-<year>.yaml, e.g. cn-2027.yaml")
	}
	var raw struct {
		Year     int    `yaml:"year"`
		Timezone string `yaml:"timezone"`
		Holidays []struct {
			Name string `yaml:"name"`
			From string `yaml:"from"`
			To   string `yaml:"to"`
		} `yaml:"holidays"`
		Workdays []string `yaml:"workdays"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	fileYear, _ := strconv.Atoi(m[2])
	if raw.Year != fileYear {
		return nil, fmt.Errorf("year %d does not match the file name", raw.Year)
	}
	if raw.Timezone != "" && raw.Timezone != "Asia/Shanghai" {
		return nil, fmt.Errorf("timezone %q: holiday dates are Asia/Shanghai dates", raw.Timezone)
	}
	y := &HolidayYear{Region: m[1], Year: raw.Year, Holidays: map[string]string{}, Workdays: map[string]bool{}}
	for _, h := range raw.Holidays {
		from, err1 := time.Parse(time.DateOnly, h.From)
		to, err2 := time.Parse(time.DateOnly, h.To)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("holiday %q: %w", h.Name, err)
		}
		if to.Before(from) || to.Sub(from) > 14*24*time.Hour {
			return nil, fmt.Errorf("holiday %q: %s to %s is not a plausible range", h.Name, h.From, h.To)
		}
		for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
			if d.Year() != raw.Year && d.Year() != raw.Year+1 {
				return nil, fmt.Errorf("holiday %q: %s is outside %d", h.Name, d.Format(time.DateOnly), raw.Year)
			}
			y.Holidays[d.Format(time.DateOnly)] = h.Name
		}
	}
	for _, w := range raw.Workdays {
		d, err := time.Parse(time.DateOnly, w)
		if err != nil {
			return nil, fmt.Errorf("workday: %w", err)
		}
		if d.Weekday() != time.Saturday && d.Weekday() != time.Sunday {
			return nil, fmt.Errorf("workday %s is a %s: 调休 working days are weekend days", w, d.Weekday())
		}
		if _, clash := y.Holidays[w]; clash {
			return nil, fmt.Errorf("workday %s is also a holiday", w)
		}
		y.Workdays[w] = true
	}
	return y, nil
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func parseCalendarDefs(b []byte) ([]*Calendar, error) {
	var raw struct {
		Calendars []struct {
			ID           string              `yaml:"id"`
			Name         string              `yaml:"name"`
			Timezone     string              `yaml:"timezone"`
			Region       string              `yaml:"region"`
			AlwaysOpen   bool                `yaml:"always_open"`
			Hours        map[string][]string `yaml:"hours"`
			Holidays     string              `yaml:"holidays"`
			WorkdayHours []string            `yaml:"workday_hours"`
		} `yaml:"calendars"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	var out []*Calendar
	seen := map[string]bool{}
	for _, r := range raw.Calendars {
		if r.ID == "" {
			return nil, errors.New("a calendar needs an id")
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("calendar %q defined twice", r.ID)
		}
		seen[r.ID] = true
		tz := r.Timezone
		if tz == "" {
			tz = "Asia/Shanghai"
		}
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("calendar %q: %w", r.ID, err)
		}
		d := &Calendar{ID: r.ID, Name: r.Name, Location: loc, Region: r.Region, AlwaysOpen: r.AlwaysOpen}
		switch r.Holidays {
		case "", "closed":
			d.HolidaysClosed = true
		case "open":
		default:
			return nil, fmt.Errorf("calendar %q: holidays must be open or closed", r.ID)
		}
		if r.AlwaysOpen && len(r.Hours) > 0 {
			return nil, fmt.Errorf("calendar %q: always_open and hours exclude each other", r.ID)
		}
		if !r.AlwaysOpen && len(r.Hours) == 0 {
			return nil, fmt.Errorf("calendar %q: needs hours or always_open", r.ID)
		}
		for key, spans := range r.Hours {
			days, err := parseDays(key)
			if err != nil {
				return nil, fmt.Errorf("calendar %q: %w", r.ID, err)
			}
			ss, err := parseSpans(spans)
			if err != nil {
				return nil, fmt.Errorf("calendar %q: %s: %w", r.ID, key, err)
			}
			for _, wd := range days {
				if d.Weekly[wd] != nil {
					return nil, fmt.Errorf("calendar %q: %s has hours twice", r.ID, wd)
				}
				d.Weekly[wd] = ss
			}
		}
		if r.WorkdayHours != nil {
			if d.WorkdayHours, err = parseSpans(r.WorkdayHours); err != nil {
				return nil, fmt.Errorf("calendar %q: workday_hours: %w", r.ID, err)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

func parseDays(key string) ([]time.Weekday, error) {
	from, to, isRange := strings.Cut(strings.ToLower(key), "-")
	a, ok1 := weekdays[from]
	if !isRange {
		if !ok1 {
			return nil, fmt.Errorf("unknown day %q (mon..sun or mon-fri)", key)
		}
		return []time.Weekday{a}, nil
	}
	b, ok2 := weekdays[to]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("unknown day range %q", key)
	}
	var out []time.Weekday
	for d := a; ; d = (d + 1) % 7 {
		out = append(out, d)
		if d == b {
			return out, nil
		}
	}
}

func parseSpans(spans []string) ([]Span, error) {
	out := make([]Span, 0, len(spans))
	for _, s := range spans {
		a, b, ok := strings.Cut(s, "-")
		from, err1 := parseClock(a)
		to, err2 := parseClock(b)
		if !ok || err1 != nil || err2 != nil || to <= from {
			return nil, fmt.Errorf("span %q: want HH:MM-HH:MM with the end after the start", s)
		}
		if n := len(out); n > 0 && from < out[n-1].To {
			return nil, fmt.Errorf("span %q overlaps or is out of order", s)
		}
		out = append(out, Span{From: from, To: to})
	}
	return out, nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		if strings.TrimSpace(s) == "24:00" {
			return 24 * 60, nil
		}
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}
