// Package telemetry sets up OpenTelemetry (traces and metrics, exported to
// Prometheus on /metrics and, when configured, to a trace file or an OTLP
// collector) and holds the masking of personal data that every log line,
// span and metric label goes through (article 22).
package telemetry

import (
	"context"
	"errors"
	"fmt"

	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config selects the exporters.
type Config struct {
	ServiceName string
	// TraceFile, when set, receives every finished span as a JSON line
	// (scrubbed). Tests scan it for unmasked numbers.
	TraceFile string
	// OTLPEndpoint, when set (host:port), exports spans over OTLP/HTTP.
	// The standard OTEL_EXPORTER_OTLP_* variables refine it.
	OTLPEndpoint string
}

// Telemetry holds the providers a process passes to its parts.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	registry       *prometheus.Registry
	shutdown       []func(context.Context) error
}

// New sets up tracing and metrics. Nothing is global: the providers are
// passed explicitly to whoever needs them.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.ServiceName == "" {
		cfg.ServiceName = "hotlined"
	}
	res := resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName))
	t := &Telemetry{registry: prometheus.NewRegistry()}
	t.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	exp, err := otelprom.New(otelprom.WithRegisterer(t.registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	t.MeterProvider = mp
	t.shutdown = append(t.shutdown, mp.Shutdown)

	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if cfg.TraceFile != "" {
		f, err := os.OpenFile(cfg.TraceFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("telemetry: trace file: %w", err)
		}
		se, err := stdouttrace.New(stdouttrace.WithWriter(f))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("telemetry: trace file exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(MaskingExporter(se)))
		t.shutdown = append(t.shutdown, func(context.Context) error { return f.Close() })
	}
	if cfg.OTLPEndpoint != "" {
		oe, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(cfg.OTLPEndpoint), otlptracehttp.WithInsecure())
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(MaskingExporter(oe)))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	t.TracerProvider = tp
	// Shut the tracer down first so batched spans flush before files close.
	t.shutdown = append([]func(context.Context) error{tp.Shutdown}, t.shutdown...)
	return t, nil
}

// MetricsHandler serves /metrics in the Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// Registry is the Prometheus registry behind /metrics, for collectors that
// are not OpenTelemetry instruments.
func (t *Telemetry) Registry() *prometheus.Registry { return t.registry }

// Shutdown flushes and closes the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// MaskingExporter wraps a span exporter so that every exported span's
// name, attributes and events are scrubbed of phone numbers.
func MaskingExporter(next sdktrace.SpanExporter) sdktrace.SpanExporter {
	return maskingExporter{next}
}

type maskingExporter struct{ next sdktrace.SpanExporter }

func (m maskingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	clean := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		clean[i] = maskedSpan{s}
	}
	return m.next.ExportSpans(ctx, clean)
}

func (m maskingExporter) Shutdown(ctx context.Context) error { return m.next.Shutdown(ctx) }

type maskedSpan struct{ sdktrace.ReadOnlySpan }

func (s maskedSpan) Name() string { return Scrub(s.ReadOnlySpan.Name()) }

func (s maskedSpan) Attributes() []attribute.KeyValue {
	return scrubKVs(s.ReadOnlySpan.Attributes())
}

func (s maskedSpan) Events() []sdktrace.Event {
	evs := s.ReadOnlySpan.Events()
	out := make([]sdktrace.Event, len(evs))
	for i, e := range evs {
		e.Name = Scrub(e.Name)
		e.Attributes = scrubKVs(e.Attributes)
		out[i] = e
	}
	return out
}

func (s maskedSpan) Status() sdktrace.Status {
	st := s.ReadOnlySpan.Status()
	st.Description = Scrub(st.Description)
	return st
}

func scrubKVs(kvs []attribute.KeyValue) []attribute.KeyValue {
	out := make([]attribute.KeyValue, len(kvs))
	for i, kv := range kvs {
		if kv.Value.Type() == attribute.STRING {
			kv = attribute.String(string(kv.Key), Scrub(kv.Value.AsString()))
		}
		out[i] = kv
	}
	return out
}
