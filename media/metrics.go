package media

import (
	"context"

	"go.opentelemetry.io/otel/metric"
)

// RegisterMetrics publishes the engine's counters (Stats) as
// OpenTelemetry instruments read at collection time (Prometheus: /metrics):
// packets and system calls each way, so the mean batch size shows; drops;
// and the pacer's punctuality (ticks started late, worst lag), which tells
// jitter hotline adds from jitter a far end measures on a loaded network.
// Unregister the returned registration when the engine closes.
func (e *Engine) RegisterMetrics(mp metric.MeterProvider) (metric.Registration, error) {
	m := mp.Meter("github.com/cq12345/hotline/media")
	var errs []error
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	gauge := func(name, unit, desc string) metric.Float64ObservableGauge {
		g, err := m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	sent := counter("hotline.media.packets_sent", "{packet}", "RTP packets sent (prompts, relayed audio, DTMF).")
	recv := counter("hotline.media.packets_received", "{packet}", "UDP datagrams received on the RTP pool.")
	sendCalls := counter("hotline.media.send_calls", "{call}", "sendmmsg/sendto system calls (packets_sent / send_calls = mean batch).")
	recvCalls := counter("hotline.media.recv_calls", "{call}", "recvmmsg system calls (packets_received / recv_calls = mean batch).")
	dropUnknown := counter("hotline.media.dropped_unknown_source", "{packet}", "Packets from a source no session expects.")
	dropBad := counter("hotline.media.dropped_malformed", "{packet}", "Datagrams that are not RTP.")
	sendErr := counter("hotline.media.send_errors", "{packet}", "Packets the kernel refused to send.")
	ticks := counter("hotline.media.pacer_ticks", "{tick}", "Pacer ticks (each sends one 20 ms frame to its sessions).")
	late := counter("hotline.media.pacer_late_ticks", "{tick}", "Pacer ticks that started more than 5 ms after their deadline.")
	maxLag := gauge("hotline.media.pacer_max_lag", "s", "Worst pacer tick start lag seen.")
	sessions := gauge("hotline.media.sessions", "{session}", "RTP sessions open (call legs).")
	sockets := gauge("hotline.media.sockets", "{socket}", "UDP sockets in the RTP pool.")
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := e.Stats()
		o.ObserveInt64(sent, int64(st.PacketsSent))
		o.ObserveInt64(recv, int64(st.PacketsReceived))
		o.ObserveInt64(sendCalls, int64(st.SendCalls))
		o.ObserveInt64(recvCalls, int64(st.RecvCalls))
		o.ObserveInt64(dropUnknown, int64(st.DroppedUnknownSource))
		o.ObserveInt64(dropBad, int64(st.DroppedMalformed))
		o.ObserveInt64(sendErr, int64(st.SendErrors))
		o.ObserveInt64(ticks, int64(st.Ticks))
		o.ObserveInt64(late, int64(st.Late))
		o.ObserveFloat64(maxLag, st.MaxLag.Seconds())
		o.ObserveFloat64(sessions, float64(st.Sessions))
		o.ObserveFloat64(sockets, float64(st.Sockets))
		return nil
	}, sent, recv, sendCalls, recvCalls, dropUnknown, dropBad, sendErr, ticks, late, maxLag, sessions, sockets)
}
