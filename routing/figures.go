package routing

import (
	"context"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// recentHandles is how many recent handle times the wait estimate uses.
const recentHandles = 20

// queueFigures are one queue's counters since the process started. They
// are per process: with several hotlined processes, sum them (Prometheus
// does).
type queueFigures struct {
	answered, abandoned, overflowed int
	within15, within20              int
	ringNoAnswer                    int
	waitSum                         time.Duration
	handledN                        int
	handleSum                       time.Duration
	recent                          []time.Duration
}

func (f *queueFigures) answer(wait time.Duration) {
	f.answered++
	f.waitSum += wait
	if wait <= 15*time.Second {
		f.within15++
	}
	if wait <= 20*time.Second {
		f.within20++
	}
}

func (f *queueFigures) handled(d time.Duration) {
	f.handledN++
	f.handleSum += d
	f.recent = append(f.recent, d)
	if len(f.recent) > recentHandles {
		f.recent = f.recent[1:]
	}
}

func (f *queueFigures) meanHandle() time.Duration {
	if len(f.recent) == 0 {
		return DefaultHandleTime
	}
	var s time.Duration
	for _, d := range f.recent {
		s += d
	}
	return s / time.Duration(len(f.recent))
}

type destFigures struct {
	active, transfers, answered int
	failures                    map[string]int
}

// QueueFigures are a queue's live figures. Offered counts calls whose
// queue stay ended (answered, abandoned or overflowed); the rates divide
// by it, so a call still waiting counts nowhere yet.
type QueueFigures struct {
	Queue       string  `json:"queue"`
	Waiting     int     `json:"waiting"`
	LongestWait float64 `json:"longest_wait_s"`
	// Agents counts the agents with the queue's skills by state; a pause
	// shows as "paused:<reason>", wrap-up as "wrap-up".
	Agents           map[string]int `json:"agents"`
	Offered          int            `json:"offered"`
	Answered         int            `json:"answered"`
	Abandoned        int            `json:"abandoned"`
	Overflowed       int            `json:"overflowed"`
	AnsweredWithin15 int            `json:"answered_within_15s"`
	AnsweredWithin20 int            `json:"answered_within_20s"`
	RingNoAnswer     int            `json:"ring_no_answer"`
	// ConnectionRate is 接通率: answered / offered (GB/T 33358 asks ≥ 95 %).
	ConnectionRate float64 `json:"connection_rate"`
	ServiceLevel15 float64 `json:"service_level_15s"`
	ServiceLevel20 float64 `json:"service_level_20s"`
	AbandonRate    float64 `json:"abandon_rate"`
	AvgWait        float64 `json:"avg_wait_s"`
	AvgHandle      float64 `json:"avg_handle_s"`
	// EstimatedWait is what a caller joining now would be told.
	EstimatedWait float64 `json:"estimated_wait_s"`
}

// DestinationFigures are a destination's transfer counts.
type DestinationFigures struct {
	Destination string         `json:"destination"`
	Active      int            `json:"active"`
	Transfers   int            `json:"transfers"`
	Answered    int            `json:"answered"`
	Failures    map[string]int `json:"failures"`
}

// Figures is the live picture the API and /metrics show.
type Figures struct {
	At           time.Time            `json:"at"`
	Queues       []QueueFigures       `json:"queues"`
	Destinations []DestinationFigures `json:"destinations"`
	// Refused counts transfers refused for naming no configured
	// destination (toll-fraud guard).
	Refused         int `json:"refused"`
	CallbacksBooked int `json:"callbacks_booked"`
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Figures returns the live figures.
func (r *Router) Figures() Figures {
	now := r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := Figures{At: now, Refused: r.refused, CallbacksBooked: r.cbs}
	for _, q := range r.qorder {
		out.Queues = append(out.Queues, r.queueFiguresLocked(q, now))
	}
	for _, d := range r.cfg.Destinations {
		f := r.dests[d.ID]
		df := DestinationFigures{Destination: d.ID, Active: f.active, Transfers: f.transfers, Answered: f.answered, Failures: map[string]int{}}
		for k, v := range f.failures {
			df.Failures[k] = v
		}
		out.Destinations = append(out.Destinations, df)
	}
	return out
}

func (r *Router) queueFiguresLocked(q *queue, now time.Time) QueueFigures {
	f := &q.fig
	qf := QueueFigures{Queue: q.cfg.ID, Waiting: len(q.waiting), Agents: map[string]int{},
		Answered: f.answered, Abandoned: f.abandoned, Overflowed: f.overflowed,
		AnsweredWithin15: f.within15, AnsweredWithin20: f.within20, RingNoAnswer: f.ringNoAnswer}
	for _, w := range q.waiting {
		if d := now.Sub(w.joined).Seconds(); d > qf.LongestWait {
			qf.LongestWait = d
		}
	}
	staffed := 0
	for _, a := range r.agents {
		if !a.Skills.covers(q.cfg.Skills) {
			continue
		}
		qf.Agents[a.StateLabel(now)]++
		if a.Presence == Available {
			staffed++
		}
	}
	qf.Offered = f.answered + f.abandoned + f.overflowed
	qf.ConnectionRate = ratio(f.answered, qf.Offered)
	qf.ServiceLevel15 = ratio(f.within15, qf.Offered)
	qf.ServiceLevel20 = ratio(f.within20, qf.Offered)
	qf.AbandonRate = ratio(f.abandoned, qf.Offered)
	if f.answered > 0 {
		qf.AvgWait = (f.waitSum / time.Duration(f.answered)).Seconds()
	}
	if f.handledN > 0 {
		qf.AvgHandle = (f.handleSum / time.Duration(f.handledN)).Seconds()
	}
	if staffed > 0 {
		qf.EstimatedWait = (time.Duration(float64(len(q.waiting)+1) * float64(f.meanHandle()) / float64(staffed))).Seconds()
	}
	return qf
}

// registerMetrics publishes the figures as OpenTelemetry instruments read
// at collection time (Prometheus: /metrics).
func (r *Router) registerMetrics(mp metric.MeterProvider) error {
	m := mp.Meter("github.com/cq12345/hotline/routing")
	var errs []error
	gauge := func(name, unit, desc string) metric.Float64ObservableGauge {
		g, err := m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	counter := func(name, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	waiting := gauge("hotline.queue.waiting", "{call}", "Calls waiting in the queue.")
	longest := gauge("hotline.queue.longest_wait", "s", "Wait of the longest-waiting call.")
	agents := gauge("hotline.queue.agents", "{agent}", "Agents with the queue's skills, by state (paused:<reason>, wrap-up).")
	connRate := gauge("hotline.queue.connection_rate", "1", "接通率: answered / offered.")
	sl := gauge("hotline.queue.service_level", "1", "Calls answered within the threshold / offered.")
	abRate := gauge("hotline.queue.abandon_rate", "1", "Abandoned / offered.")
	avgWait := gauge("hotline.queue.avg_wait", "s", "Mean wait of answered calls.")
	avgHandle := gauge("hotline.queue.avg_handle", "s", "Mean handle time.")
	ewt := gauge("hotline.queue.estimated_wait", "s", "Estimated wait for a caller joining now.")
	offered := counter("hotline.queue.offered", "Calls whose queue stay ended.")
	answered := counter("hotline.queue.answered", "Calls an agent answered.")
	abandoned := counter("hotline.queue.abandoned", "Callers who hung up while waiting.")
	overflowed := counter("hotline.queue.overflowed", "Calls sent to the overflow action.")
	rna := counter("hotline.queue.ring_no_answer", "Agent rings that were not answered.")
	xfers := counter("hotline.destination.transfers", "Transfers attempted to the destination.")
	xfersOK := counter("hotline.destination.answered", "Transfers the destination answered.")
	xfail := counter("hotline.destination.failures", "Transfers that failed, by reason.")
	refused := counter("hotline.destination.refused", "Transfers refused: not a configured destination.")
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		f := r.Figures()
		for _, q := range f.Queues {
			qa := metric.WithAttributes(attribute.String("queue", q.Queue))
			o.ObserveFloat64(waiting, float64(q.Waiting), qa)
			o.ObserveFloat64(longest, q.LongestWait, qa)
			states := make([]string, 0, len(q.Agents))
			for s := range q.Agents {
				states = append(states, s)
			}
			slices.Sort(states)
			for _, s := range states {
				o.ObserveFloat64(agents, float64(q.Agents[s]), metric.WithAttributes(attribute.String("queue", q.Queue), attribute.String("state", s)))
			}
			o.ObserveFloat64(connRate, q.ConnectionRate, qa)
			o.ObserveFloat64(sl, q.ServiceLevel15, metric.WithAttributes(attribute.String("queue", q.Queue), attribute.String("threshold", "15s")))
			o.ObserveFloat64(sl, q.ServiceLevel20, metric.WithAttributes(attribute.String("queue", q.Queue), attribute.String("threshold", "20s")))
			o.ObserveFloat64(abRate, q.AbandonRate, qa)
			o.ObserveFloat64(avgWait, q.AvgWait, qa)
			o.ObserveFloat64(avgHandle, q.AvgHandle, qa)
			o.ObserveFloat64(ewt, q.EstimatedWait, qa)
			o.ObserveInt64(offered, int64(q.Offered), qa)
			o.ObserveInt64(answered, int64(q.Answered), qa)
			o.ObserveInt64(abandoned, int64(q.Abandoned), qa)
			o.ObserveInt64(overflowed, int64(q.Overflowed), qa)
			o.ObserveInt64(rna, int64(q.RingNoAnswer), qa)
		}
		for _, d := range f.Destinations {
			da := metric.WithAttributes(attribute.String("destination", d.Destination))
			o.ObserveInt64(xfers, int64(d.Transfers), da)
			o.ObserveInt64(xfersOK, int64(d.Answered), da)
			for reason, n := range d.Failures {
				o.ObserveInt64(xfail, int64(n), metric.WithAttributes(attribute.String("destination", d.Destination), attribute.String("reason", reason)))
			}
		}
		o.ObserveInt64(refused, int64(f.Refused))
		return nil
	}, waiting, longest, agents, connRate, sl, abRate, avgWait, avgHandle, ewt, offered, answered, abandoned, overflowed, rna, xfers, xfersOK, xfail, refused)
	if err != nil {
		return err
	}
	r.metrics = reg
	return nil
}
