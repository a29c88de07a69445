package main

import (
	"context"
	"strings"
	"testing"
)

// TestBuildTracing: the OTEL_* variables work as in any SDK, the config
// wins over them, and with no endpoint anywhere tracing is off (nil).
func TestBuildTracing(t *testing.T) {
	half := 0.5
	yes := true
	for _, tc := range []struct {
		name    string
		cfg     TelemetryConfig
		env     map[string]string
		on      bool
		sampler string // the sampler's Description
		capture bool
		err     string
	}{
		{name: "nothing set: off"},
		{name: "sdk disabled", env: map[string]string{envEndpoint: "http://c:4318", envSDKDisabled: "true"}},
		{name: "exporter none", env: map[string]string{envEndpoint: "http://c:4318", envTracesExporter: "none"}},
		{name: "exporter zipkin", env: map[string]string{envEndpoint: "http://c:4318", envTracesExporter: "zipkin"}, err: "otlp only"},
		{name: "env endpoint", env: map[string]string{envEndpoint: "http://c:4318"}, on: true, sampler: "ParentBased{root:AlwaysOnSampler"},
		{name: "traces endpoint, grpc", env: map[string]string{envTracesEndpoint: "http://c:4317", envProtocol: "grpc"}, on: true},
		{name: "env protocol bad", env: map[string]string{envEndpoint: "http://c:4318", envProtocol: "http/json"}, err: `OTEL_EXPORTER_OTLP_PROTOCOL: "http/json"`},
		{name: "config protocol wins", cfg: TelemetryConfig{Endpoint: "http://c:4317", Protocol: "grpc"},
			env: map[string]string{envProtocol: "http/json"}, on: true},
		{name: "env sampler", env: map[string]string{envEndpoint: "http://c:4318", envSampler: "parentbased_traceidratio", envSamplerArg: "0"},
			on: true, sampler: "ParentBased{root:TraceIDRatioBased{0}"},
		{name: "env sampler arg bad", env: map[string]string{envEndpoint: "http://c:4318", envSampler: "traceidratio", envSamplerArg: "x"}, err: "OTEL_TRACES_SAMPLER_ARG"},
		{name: "config sampler wins", cfg: TelemetryConfig{Endpoint: "http://c:4318", Sampler: "traceidratio", SamplerArg: &half},
			env: map[string]string{envSampler: "always_off"}, on: true, sampler: "TraceIDRatioBased{0.5}"},
		{name: "capture from env", env: map[string]string{envEndpoint: "http://c:4318", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}, on: true, capture: true},
		{name: "capture from config", cfg: TelemetryConfig{Endpoint: "http://c:4318", CaptureMessageContent: &yes}, on: true, capture: true},
		{name: "propagators", env: map[string]string{envEndpoint: "http://c:4318", envPropagators: "tracecontext,b3"}, err: `"b3" is not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := buildTracing(tc.cfg, func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("buildTracing() error = %v; want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("buildTracing() error = %v", err)
			}
			if (tr != nil) != tc.on {
				t.Fatalf("buildTracing() on = %v; want %v", tr != nil, tc.on)
			}
			if tr == nil {
				return
			}
			defer tr.shutdown(context.Background())
			if tr.capture != tc.capture {
				t.Errorf("capture = %v; want %v", tr.capture, tc.capture)
			}
			if got := tr.sampler.Description(); tc.sampler != "" && !strings.HasPrefix(got, tc.sampler) {
				t.Errorf("sampler = %s; want %s…", got, tc.sampler)
			}
		})
	}
}

// TestTracingResource: service.name is llmproxy unless OTEL_SERVICE_NAME
// or the config says otherwise; the config wins.
func TestTracingResource(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging")
	for _, tc := range []struct{ cfg, want string }{{"", "from-env"}, {"from-config", "from-config"}} {
		res, err := newResource(TelemetryConfig{ServiceName: tc.cfg, ResourceAttributes: map[string]string{"team": "infra"}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, kv := range res.Attributes() {
			got[string(kv.Key)] = kv.Value.Emit()
		}
		if got["service.name"] != tc.want || got["deployment.environment.name"] != "staging" || got["team"] != "infra" {
			t.Errorf("config %q: resource = %v; want service.name %s, the env's and the config's attributes", tc.cfg, got, tc.want)
		}
	}
}
