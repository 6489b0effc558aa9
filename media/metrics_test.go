package media

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestRegisterMetrics(t *testing.T) {
	e := newEngine(t, Config{Sockets: 3, InactivityTimeout: -1})
	if _, err := e.NewSession(SessionConfig{PayloadType: 8, AwaitRemote: true}); err != nil {
		t.Fatal(err)
	}
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	defer mp.Shutdown(context.Background())
	reg, err := e.RegisterMetrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	var rm metricdata.ResourceMetrics
	if err := rd.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[float64]:
				got[m.Name] = d.DataPoints[0].Value
			case metricdata.Sum[int64]:
				got[m.Name] = float64(d.DataPoints[0].Value)
			}
		}
	}
	if got["hotline.media.sockets"] != 3 || got["hotline.media.sessions"] != 1 {
		t.Fatalf("metrics %v: want 3 sockets, 1 session", got)
	}
	for _, name := range []string{"hotline.media.packets_sent", "hotline.media.pacer_late_ticks", "hotline.media.pacer_max_lag", "hotline.media.recv_calls"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s not published: %v", name, got)
		}
	}
}
