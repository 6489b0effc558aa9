package routing

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestDefaultConfig(t *testing.T) {
	cals, err := DefaultCalendars()
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	if err := c.Validate(cals); err != nil {
		t.Fatal(err)
	}
	ids := NewDirectory(c.Destinations, quiet()).IDs()
	for _, id := range []string{"12315", "12333", "edu-bureau", "sichuan-12345"} {
		if !ids[id] {
			t.Errorf("missing destination %s", id)
		}
	}
	for _, d := range c.Destinations {
		if d.PassCaller || d.Trunk != "" {
			t.Errorf("%s: privacy default or trunk: %+v", d.ID, d)
		}
	}
	q := c.Queues[0]
	if q.Strategy != LongestIdle || q.MaxMisses != 2 || q.RingTimeout != 15*time.Second || q.Overflow != OverflowFlow {
		t.Fatalf("queue defaults %+v", q)
	}
	if !c.QueueIDs()["general"] {
		t.Fatal("no general queue")
	}
}

func TestParseConfig(t *testing.T) {
	src := `
destinations:
  - id: "12315"
    number: "12315"
    trunk: sip:127.0.0.1:5080
    names: {zh-CN: 12315热线, en: 12315}
    max_calls: 2
    fallback: general
queues:
  - id: general
    strategy: round-robin
    ring_timeout: 20s
    max_wait: 2m
    overflow: queue
    overflow_to: backup
  - id: backup
    skills: {languages: [en]}
`
	c, err := ParseConfig([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Destinations) != 1 || c.Destinations[0].Trunk != "sip:127.0.0.1:5080" || c.Queues[0].RingTimeout != 20*time.Second ||
		c.Queues[0].MaxWait != 2*time.Minute || c.Queues[1].Strategy != LongestIdle || c.Queues[1].Skills.Languages[0] != "en" {
		t.Fatalf("%+v", c)
	}
	// A file with queues only keeps the default destinations (and one
	// with destinations only, the default queues).
	c, err = ParseConfig([]byte("queues: [{id: general}, {id: complaints}]\n"), nil)
	if err != nil || len(c.Destinations) != 4 {
		t.Fatalf("%v", err)
	}
	c, err = ParseConfig([]byte("destinations: [{id: x, number: '1', names: {zh-CN: x}}]\n"), nil)
	if err != nil || len(c.Queues) != len(DefaultQueues()) {
		t.Fatalf("%v", err)
	}
	path := filepath.Join(t.TempDir(), "routing.yaml")
	os.WriteFile(path, []byte(src), 0o644)
	if _, err := LoadConfig(path, nil); err != nil {
		t.Fatal(err)
	}

	bad := []struct{ src, want string }{
		{"destinations: [{id: x, number: '+8612315', names: {zh-CN: x}}]\nqueues: [{id: general}]", "digits only"},
		{"destinations: [{id: x, number: '1', names: {en: x}}]\nqueues: [{id: general}]", "zh-CN is required"},
		{"destinations: [{id: x, number: '1', names: {zh-CN: x}, trunk: 'http://x'}]\nqueues: [{id: general}]", "sip: or sips:"},
		{"destinations: [{id: x, number: '1', names: {zh-CN: x}, fallback: nowhere}]\nqueues: [{id: general}]", "not a configured queue"},
		{"destinations: [{id: x, number: '1', names: {zh-CN: x}, calendar: nope}]\nqueues: [{id: general}]", "calendar \"nope\""},
		{"destinations: [{id: x, number: '1', names: {zh-CN: x}}, {id: x, number: '2', names: {zh-CN: y}}]\nqueues: [{id: general}]", "id twice"},
		{"queues: [{id: general, strategy: random}]", "strategy"},
		{"queues: [{id: general, overflow: queue, overflow_to: general}]", "not another configured queue"},
		{"queues: [{id: general, overflow: voicemail}]", "overflow \"voicemail\""},
		{"queues: [{id: 'a b'}]", "want letters"},
		{"queues: [{id: general, colour: red}]", "not found"},
	}
	cals, _ := DefaultCalendars()
	for _, b := range bad {
		_, err := ParseConfig([]byte(b.src), cals)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: got %v, want %q", b.src, err, b.want)
		}
	}
}

// TestDirectoryRefusesAndLogs: anything not configured is refused and
// logged, with digits masked.
func TestDirectoryRefusesAndLogs(t *testing.T) {
	var buf bytes.Buffer
	d := NewDirectory(DefaultDestinations(), slog.New(slog.NewTextHandler(&buf, nil)))
	if _, ok := d.Allowed("12315", "test"); !ok {
		t.Fatal("12315 refused")
	}
	if _, ok := d.Allowed("13800138000", "refer"); ok {
		t.Fatal("a raw number was allowed")
	}
	out := buf.String()
	if !strings.Contains(out, "toll-fraud") || !strings.Contains(out, "source=refer") || strings.Contains(out, "13800138000") {
		t.Fatalf("log: %s", out)
	}
}

// TestMetrics: the figures reach a MeterProvider.
func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	f := newFixture(t, &Config{Queues: []Queue{testQueue("general")}, Destinations: DefaultDestinations()[:1]}, func(o *Options) { o.MeterProvider = mp })
	f.addAgent("1001", Available, Skills{})
	f.addAgent("1002", Paused, Skills{})
	f.dialer.set("1001", behaviour{answerAfter: time.Millisecond, talk: 5 * time.Millisecond})
	ctx := context.Background()
	_, ch := f.route(ctx, "c1", queueDecision("general"))
	<-ch
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					key := m.Name
					if s, ok := p.Attributes.Value("state"); ok {
						key += "/" + s.AsString()
					}
					if s, ok := p.Attributes.Value("threshold"); ok {
						key += "/" + s.AsString()
					}
					got[key] = p.Value
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[m.Name] += float64(p.Value)
				}
			}
		}
	}
	for k, v := range map[string]float64{
		"hotline.queue.answered": 1, "hotline.queue.offered": 1, "hotline.queue.connection_rate": 1,
		"hotline.queue.service_level/15s": 1, "hotline.queue.agents/paused:training": 1, "hotline.queue.waiting": 0,
		"hotline.destination.transfers": 0,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if got["hotline.queue.agents/wrap-up"]+got["hotline.queue.agents/available"] != 1 {
		t.Errorf("agent 1001 neither wrap-up nor available: %v", got)
	}
}

func TestLateDialer(t *testing.T) {
	var l LateDialer
	if _, err := l.RingAgent(context.Background(), AgentRing{}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("before Set: %v", err)
	}
	d := newFakeDialer()
	l.Set(d)
	if _, err := l.DialOut(context.Background(), Outbound{Number: "12315"}); !errors.Is(err, ErrUnreachable) || len(d.outs) != 1 {
		t.Fatalf("after Set: %v %d", err, len(d.outs))
	}
}
