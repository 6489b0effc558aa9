// Package report computes the monthly evaluation of the hotline's handling
// units and queues (article 24 of the hotline's rules: units are evaluated
// monthly on capability, case quality and efficiency, and satisfaction) from
// the cases, and renders it as JSON, CSV or an HTML page with inline SVG
// charts.
//
// Definitions (all over the cases whose call started in the month, Asia/
// Shanghai):
//   - Calls: cases.
//   - Connected: the call was answered by the hotline (IVR or agent); the
//     connection rate is Connected / Calls (GB/T 33358: at least 95 %).
//   - Offered: calls that asked for a person (routed to a queue, or
//     answered by an agent). AnswerRate = AnsweredByAgent / Offered.
//   - Within15s / Within20s: agent-answered calls that waited at most 15 s
//     / 20 s, as a share of Offered (GB/T 33358 asks for 15 s).
//   - AvgWaitSec: mean wait of the offered calls; AvgHandleSec: mean talk
//     time of the agent-answered calls.
//   - Abandoned: calls whose caller hung up before an agent or before the
//     answer; AbandonRate = Abandoned / Calls.
//   - Satisfaction: survey scores 1 (非常不满意) … 5 (非常满意).
//   - Due: cases with a due date on or before the report date, or closed;
//     ClosedOnTime: those closed by their due date.
package report

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cq12345/hotline/cases"
)

// Lister is the part of cases.Store the report reads.
type Lister interface {
	List(ctx context.Context, f cases.Filter) ([]*cases.Case, error)
}

// SatisfactionLevels names the five levels of 好差评, score 1 to 5.
var SatisfactionLevels = [5]string{"非常不满意", "不满意", "基本满意", "满意", "非常满意"}

// Metrics are one group's figures.
type Metrics struct {
	Group           string  `json:"group"`
	Calls           int     `json:"calls"`
	Connected       int     `json:"connected"`
	ConnectionRate  float64 `json:"connection_rate"`
	Offered         int     `json:"offered"`
	AnsweredByAgent int     `json:"answered_by_agent"`
	AnswerRate      float64 `json:"answer_rate"`
	Within15s       int     `json:"answered_within_15s"`
	Within15sRate   float64 `json:"answered_within_15s_rate"`
	Within20s       int     `json:"answered_within_20s"`
	Within20sRate   float64 `json:"answered_within_20s_rate"`
	AvgWaitSec      float64 `json:"avg_wait_s"`
	AvgHandleSec    float64 `json:"avg_handle_s"`
	Abandoned       int     `json:"abandoned"`
	AbandonRate     float64 `json:"abandon_rate"`
	// Satisfaction[i] counts score i+1.
	Satisfaction  [5]int  `json:"satisfaction"`
	Rated         int     `json:"rated"`
	SatisfiedRate float64 `json:"satisfied_rate"` // scores 4 and 5 of the rated
	Due           int     `json:"due"`
	ClosedOnTime  int     `json:"closed_on_time"`
	OnTimeRate    float64 `json:"on_time_rate"`
	waitN, talkN  int
	talkSum       time.Duration
	waitTotal     time.Duration
}

// Monthly is the evaluation of one month.
type Monthly struct {
	Month     string    `json:"month"` // YYYY-MM
	Generated time.Time `json:"generated"`
	Overall   Metrics   `json:"overall"`
	Units     []Metrics `json:"units"`
	Queues    []Metrics `json:"queues"`
}

// Unassigned and NoQueue label cases without a unit or a queue.
const (
	Unassigned = "(unassigned)"
	NoQueue    = "(no queue)"
)

// MonthRange returns the start and end (exclusive) of a month "YYYY-MM" in
// Asia/Shanghai.
func MonthRange(month string) (time.Time, time.Time, error) {
	start, err := time.ParseInLocation("2006-01", month, cases.Shanghai())
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("report: month %q: want YYYY-MM", month)
	}
	return start, start.AddDate(0, 1, 0), nil
}

// Build reads the month's cases from src and computes the evaluation as of
// now (which decides what is due).
func Build(ctx context.Context, src Lister, month string, now time.Time) (*Monthly, error) {
	from, to, err := MonthRange(month)
	if err != nil {
		return nil, err
	}
	var all []*cases.Case
	const page = 5000
	for off := 0; ; off += page {
		list, err := src.List(ctx, cases.Filter{From: from, To: to, Limit: page, Offset: off})
		if err != nil {
			return nil, fmt.Errorf("report: %s: %w", month, err)
		}
		all = append(all, list...)
		if len(list) < page {
			break
		}
	}
	return Compute(month, all, now), nil
}

// Compute evaluates the given cases (all of one month) as of now.
func Compute(month string, cs []*cases.Case, now time.Time) *Monthly {
	m := &Monthly{Month: month, Generated: now, Overall: Metrics{Group: "all"}}
	units := map[string]*Metrics{}
	queues := map[string]*Metrics{}
	today := now.In(cases.Shanghai()).Format("2006-01-02")
	for _, c := range cs {
		unit, queue := c.Unit, c.Queue
		if unit == "" {
			unit = Unassigned
		}
		if queue == "" {
			queue = NoQueue
		}
		for _, g := range []*Metrics{&m.Overall, group(units, unit), group(queues, queue)} {
			g.add(c, today)
		}
	}
	m.Overall.finish()
	m.Units = sorted(units)
	m.Queues = sorted(queues)
	return m
}

func group(ms map[string]*Metrics, name string) *Metrics {
	g, ok := ms[name]
	if !ok {
		g = &Metrics{Group: name}
		ms[name] = g
	}
	return g
}

func sorted(ms map[string]*Metrics) []Metrics {
	out := make([]Metrics, 0, len(ms))
	for _, g := range ms {
		g.finish()
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Metrics) int {
		if a.Calls != b.Calls {
			return b.Calls - a.Calls
		}
		if a.Group < b.Group {
			return -1
		}
		if a.Group > b.Group {
			return 1
		}
		return 0
	})
	return out
}

func (g *Metrics) add(c *cases.Case, today string) {
	g.Calls++
	if !c.Answered.IsZero() && c.Outcome != cases.OutcomeAbandonedBeforeAnswer {
		g.Connected++
	}
	byAgent := c.Outcome == cases.OutcomeAnsweredByAgent
	if c.Queue != "" || byAgent {
		g.Offered++
		g.waitN++
		g.waitTotal += c.Wait
	}
	if byAgent {
		g.AnsweredByAgent++
		if c.Wait <= 15*time.Second {
			g.Within15s++
		}
		if c.Wait <= 20*time.Second {
			g.Within20s++
		}
		g.talkN++
		g.talkSum += c.Talk
	}
	if c.Outcome == cases.OutcomeAbandoned || c.Outcome == cases.OutcomeAbandonedBeforeAnswer {
		g.Abandoned++
	}
	if c.Survey >= 1 && c.Survey <= 5 {
		g.Satisfaction[c.Survey-1]++
		g.Rated++
	}
	closed := c.Status == cases.StatusClosed && !c.Closed.IsZero()
	if c.Due != "" && (c.Due <= today || closed) {
		g.Due++
		if cases.OnTime(c.Due, c.Closed) && closed {
			g.ClosedOnTime++
		}
	}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (g *Metrics) finish() {
	g.ConnectionRate = ratio(g.Connected, g.Calls)
	g.AnswerRate = ratio(g.AnsweredByAgent, g.Offered)
	g.Within15sRate = ratio(g.Within15s, g.Offered)
	g.Within20sRate = ratio(g.Within20s, g.Offered)
	if g.waitN > 0 {
		g.AvgWaitSec = g.waitTotal.Seconds() / float64(g.waitN)
	}
	if g.talkN > 0 {
		g.AvgHandleSec = g.talkSum.Seconds() / float64(g.talkN)
	}
	g.AbandonRate = ratio(g.Abandoned, g.Calls)
	g.SatisfiedRate = ratio(g.Satisfaction[3]+g.Satisfaction[4], g.Rated)
	g.OnTimeRate = ratio(g.ClosedOnTime, g.Due)
}
