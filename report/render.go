package report

import (
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strconv"
)

// WriteJSON writes the evaluation as indented JSON.
func (m *Monthly) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// CSVHeader is the header row of WriteCSV.
var CSVHeader = []string{"month", "kind", "group", "calls", "connected", "connection_rate", "offered",
	"answered_by_agent", "answer_rate", "answered_within_15s", "answered_within_15s_rate",
	"answered_within_20s", "answered_within_20s_rate", "avg_wait_s", "avg_handle_s", "abandoned",
	"abandon_rate", "sat_1_very_dissatisfied", "sat_2_dissatisfied", "sat_3_fair", "sat_4_satisfied",
	"sat_5_very_satisfied", "rated", "satisfied_rate", "due", "closed_on_time", "on_time_rate"}

// WriteCSV writes one row for the whole hotline, then one per unit and one
// per queue (kind "all", "unit", "queue").
func (m *Monthly) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	row := func(kind string, g Metrics) []string {
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
		d := strconv.Itoa
		r := []string{m.Month, kind, g.Group, d(g.Calls), d(g.Connected), f(g.ConnectionRate), d(g.Offered),
			d(g.AnsweredByAgent), f(g.AnswerRate), d(g.Within15s), f(g.Within15sRate), d(g.Within20s),
			f(g.Within20sRate), f(g.AvgWaitSec), f(g.AvgHandleSec), d(g.Abandoned), f(g.AbandonRate)}
		for _, n := range g.Satisfaction {
			r = append(r, d(n))
		}
		return append(r, d(g.Rated), f(g.SatisfiedRate), d(g.Due), d(g.ClosedOnTime), f(g.OnTimeRate))
	}
	if err := cw.Write(row("all", m.Overall)); err != nil {
		return err
	}
	for _, g := range m.Units {
		cw.Write(row("unit", g))
	}
	for _, g := range m.Queues {
		cw.Write(row("queue", g))
	}
	cw.Flush()
	return cw.Error()
}

//go:embed monthly.html.tmpl
var tmplFS embed.FS

var page = template.Must(template.New("monthly.html.tmpl").Funcs(template.FuncMap{
	"pct":    func(v float64) string { return fmt.Sprintf("%.1f %%", v*100) },
	"num":    func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"bars":   rateBars,
	"sat":    satBars,
	"levels": func() []string { return SatisfactionLevels[:] },
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"colour": func(i int) string { return satColours[i] },
}).ParseFS(tmplFS, "monthly.html.tmpl"))

// WriteHTML writes a self-contained HTML page (no scripts, no external
// assets) with tables and inline SVG charts.
func (m *Monthly) WriteHTML(w io.Writer) error { return page.Execute(w, m) }

var satColours = [5]string{"#c0392b", "#e67e22", "#f1c40f", "#7dbb42", "#27ae60"}

type bar struct {
	Label       string
	Y, W, TextX int
	Value       string
}

type barChart struct {
	Title  string
	Height int
	Bars   []bar
}

// rateBars draws one horizontal bar per group for a rate in [0, 1].
func rateBars(title string, groups []Metrics, pick string) barChart {
	const full = 360
	c := barChart{Title: title}
	for i, g := range groups {
		var v float64
		switch pick {
		case "answer":
			v = g.AnswerRate
		case "within15":
			v = g.Within15sRate
		case "ontime":
			v = g.OnTimeRate
		case "abandon":
			v = g.AbandonRate
		}
		w := int(v * full)
		c.Bars = append(c.Bars, bar{Label: g.Group, Y: 22 + i*22, W: w, TextX: 150 + w + 6, Value: fmt.Sprintf("%.1f %%", v*100)})
	}
	c.Height = 30 + len(groups)*22
	return c
}

type segment struct {
	X, Y, W int
	Colour  string
	Count   int
}

type satRow struct {
	Label string
	Y     int
	Segs  []segment
	Rated int
}

type satChart struct {
	Height int
	Rows   []satRow
}

// satBars draws a 100 % stacked bar of the five satisfaction levels per group.
func satBars(groups []Metrics) satChart {
	const full = 360
	c := satChart{}
	for i, g := range groups {
		r := satRow{Label: g.Group, Y: 22 + i*22, Rated: g.Rated}
		x := 150
		for lvl, n := range g.Satisfaction {
			if g.Rated == 0 || n == 0 {
				continue
			}
			w := n * full / g.Rated
			r.Segs = append(r.Segs, segment{X: x, Y: r.Y, W: w, Colour: satColours[lvl], Count: n})
			x += w
		}
		c.Rows = append(c.Rows, r)
	}
	c.Height = 30 + len(groups)*22
	return c
}

// Write renders the evaluation in a format: "json", "csv" or "html" (what
// `hotlinectl report monthly --format` takes).
func (m *Monthly) Write(w io.Writer, format string) error {
	switch format {
	case "json", "":
		return m.WriteJSON(w)
	case "csv":
		return m.WriteCSV(w)
	case "html":
		return m.WriteHTML(w)
	}
	return fmt.Errorf("report: format %q: want json, csv or html", format)
}
