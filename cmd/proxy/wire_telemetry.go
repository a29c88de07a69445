package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"llmproxy/telemetry"
)

// tracing is the proxy's OpenTelemetry setup: nil when tracing is off, and
// every use is guarded by that nil, so a proxy without an endpoint runs
// none of this code per request.
type tracing struct {
	tp *sdktrace.TracerProvider
	// server starts the server span of each HTTP request; every other
	// span descends from it (package telemetry).
	server trace.Tracer
	// prop reads traceparent/tracestate from clients and writes them to
	// upstreams.
	prop    propagation.TextMapPropagator
	sampler sdktrace.Sampler
	capture bool
}

// Standard variables read here; the exporters read their own (headers,
// timeout, compression, TLS) and the batch span processor OTEL_BSP_*.
const (
	envSDKDisabled     = "OTEL_SDK_DISABLED"
	envTracesExporter  = "OTEL_TRACES_EXPORTER"
	envEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol  = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envSampler         = "OTEL_TRACES_SAMPLER"
	envSamplerArg      = "OTEL_TRACES_SAMPLER_ARG"
	envPropagators     = "OTEL_PROPAGATORS"
	defaultServiceName = "llmproxy"
	// flushTimeout bounds sending the queued spans at shutdown.
	flushTimeout = 3 * time.Second
)

// buildTracing sets up tracing from t and the OTEL_* variables (getenv):
// nil, nil when no endpoint is configured, the SDK is disabled or the
// traces exporter is "none".
func buildTracing(t TelemetryConfig, getenv func(string) string) (*tracing, error) {
	if strings.EqualFold(getenv(envSDKDisabled), "true") {
		return nil, nil
	}
	switch exp := getenv(envTracesExporter); exp {
	case "none":
		return nil, nil
	case "", "otlp":
	default:
		return nil, fmt.Errorf("%s=%q: llmproxy exports traces over otlp only (or none)", envTracesExporter, exp)
	}
	if t.Endpoint == "" && getenv(envTracesEndpoint) == "" && getenv(envEndpoint) == "" {
		return nil, nil
	}
	exp, err := newExporter(t, getenv)
	if err != nil {
		return nil, err
	}
	sampler, err := newSampler(t, getenv)
	if err != nil {
		return nil, err
	}
	prop, err := newPropagator(getenv(envPropagators))
	if err != nil {
		return nil, err
	}
	res, err := newResource(t)
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	capture := strings.EqualFold(getenv(telemetry.CaptureContentEnv), "true")
	if t.CaptureMessageContent != nil {
		capture = *t.CaptureMessageContent
	}
	return &tracing{tp: tp, server: tp.Tracer(telemetry.Scope, trace.WithSchemaURL(telemetry.SchemaURL)),
		prop: prop, sampler: sampler, capture: capture}, nil
}

// shutdown flushes the spans still queued and stops the exporter: the
// last closer, so the spans of the drain's last requests go out.
func (t *tracing) shutdown(ctx context.Context) error {
	// A collector that is down must not hold the exit for the exporter's
	// whole retry budget (a minute).
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: flush spans: %w", err)
	}
	return nil
}

// newExporter is the OTLP exporter for t's protocol. An endpoint from the
// config is passed as an option (it wins); otherwise the exporter reads
// OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT itself, with the spec's rules
// (/v1/traces appended to the base endpoint for http/protobuf).
func newExporter(t TelemetryConfig, getenv func(string) string) (sdktrace.SpanExporter, error) {
	proto, from := t.Protocol, "telemetry.protocol"
	for _, name := range []string{envTracesProtocol, envProtocol} {
		if proto == "" {
			proto, from = getenv(name), name
		}
	}
	headers := make(map[string]string, len(t.Headers))
	for k, v := range t.Headers {
		headers[k] = v.Value()
	}
	ctx := context.Background()
	switch proto {
	case "", "http/protobuf":
		var opts []otlptracehttp.Option
		if t.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(t.Endpoint, "/")+"/v1/traces"))
		}
		if len(headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(headers))
		}
		return otlptracehttp.New(ctx, opts...)
	case "grpc":
		var opts []otlptracegrpc.Option
		if t.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(t.Endpoint))
		}
		if len(headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(headers))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	return nil, fmt.Errorf("%s: %q is not one of %s", from, proto, strings.Join(otlpProtocols, ", "))
}

// newSampler builds the sampler the config or OTEL_TRACES_SAMPLER(_ARG)
// names; the default is parentbased_always_on, as in every SDK.
func newSampler(t TelemetryConfig, getenv func(string) string) (sdktrace.Sampler, error) {
	name, from := t.Sampler, "telemetry.sampler"
	if name == "" {
		name, from = getenv(envSampler), envSampler
	}
	ratio := 1.0
	switch {
	case t.SamplerArg != nil:
		ratio = *t.SamplerArg
	case getenv(envSamplerArg) != "":
		r, err := strconv.ParseFloat(getenv(envSamplerArg), 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("%s: %q is not a ratio between 0 and 1", envSamplerArg, getenv(envSamplerArg))
		}
		ratio = r
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("%s: %q is not one of %s", from, name, strings.Join(samplers, ", "))
}

// newPropagator reads OTEL_PROPAGATORS. The default is W3C trace context
// alone: baggage would carry whatever a client put in it to every
// upstream, so it is sent only when the operator lists it.
func newPropagator(list string) (propagation.TextMapPropagator, error) {
	if strings.TrimSpace(list) == "" {
		return propagation.TraceContext{}, nil
	}
	var props []propagation.TextMapPropagator
	for _, name := range strings.Split(list, ",") {
		switch strings.TrimSpace(name) {
		case "tracecontext":
			props = append(props, propagation.TraceContext{})
		case "baggage":
			props = append(props, propagation.Baggage{})
		case "none":
		default:
			return nil, fmt.Errorf("%s: %q is not supported (tracecontext, baggage or none)", envPropagators, name)
		}
	}
	return propagation.NewCompositeTextMapPropagator(props...), nil
}

// newResource is the spans' resource: service.name "llmproxy", under
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, under the config's.
func newResource(t TelemetryConfig) (*resource.Resource, error) {
	env, err := resource.New(context.Background(), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource from the environment: %w", err)
	}
	res, err := resource.Merge(resource.NewSchemaless(attribute.String("service.name", defaultServiceName)), env)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	var own []attribute.KeyValue
	for k, v := range t.ResourceAttributes {
		own = append(own, attribute.String(k, v))
	}
	if t.ServiceName != "" {
		own = append(own, attribute.String("service.name", t.ServiceName))
	}
	return resource.Merge(res, resource.NewSchemaless(own...))
}

// childOnly is the provider for Redis and PostgreSQL's own hooks (see
// telemetry.ChildOnly); nil when tracing is off.
func (t *tracing) childOnly() trace.TracerProvider {
	if t == nil {
		return nil
	}
	return telemetry.ChildOnly(t.tp)
}

// jobs is river's middleware for a span per job worked (a root span: a
// job runs apart from the request that queued it); nil when tracing is
// off. Its metrics go nowhere: the proxy's metrics are Prometheus's.
func (t *tracing) jobs() []rivertype.Middleware {
	if t == nil {
		return nil
	}
	return []rivertype.Middleware{otelriver.NewMiddleware(&otelriver.MiddlewareConfig{TracerProvider: t.tp,
		MeterProvider: noopmetric.NewMeterProvider(), EnableWorkSpanJobKindSuffix: true, EnableTracePropagation: true})}
}

// attempts is the router's tracer: a GenAI client span per upstream call.
func (t *tracing) attempts(cfg *Config) *telemetry.Attempts {
	names := make(map[string]string, len(cfg.Providers))
	for _, p := range cfg.Providers {
		names[p.Name] = telemetry.ProviderName(p.Type)
	}
	return &telemetry.Attempts{Providers: names, CaptureContent: t.capture}
}
