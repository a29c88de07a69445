package main

import (
	"net/url"
	"slices"
	"strings"
)

// TelemetryConfig is the telemetry: section: where and how traces go. Each
// field overrides the OTEL_* variable named in its comment; unset fields
// leave the variable (or the SDK's default) in force.
type TelemetryConfig struct {
	// Endpoint is the OTLP collector's base URL, e.g.
	// "http://127.0.0.1:4318" (http/protobuf; "/v1/traces" is appended)
	// or "http://127.0.0.1:4317" (grpc). An http:// URL sends without TLS.
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT;
	// with neither, tracing is off.
	Endpoint string `yaml:"endpoint"`
	// Protocol is "grpc" or "http/protobuf" (the default).
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL.
	Protocol string `yaml:"protocol"`
	// Headers are sent with every export, e.g. a collector's auth token
	// (values are secrets: never logged). OTEL_EXPORTER_OTLP_HEADERS.
	Headers map[string]Secret `yaml:"headers"`
	// ServiceName is the service.name resource attribute. Default
	// "llmproxy". OTEL_SERVICE_NAME.
	ServiceName string `yaml:"service_name"`
	// ResourceAttributes are added to every span's resource.
	// OTEL_RESOURCE_ATTRIBUTES.
	ResourceAttributes map[string]string `yaml:"resource_attributes"`
	// Sampler is always_on, always_off, traceidratio,
	// parentbased_always_on (the default), parentbased_always_off or
	// parentbased_traceidratio. OTEL_TRACES_SAMPLER.
	Sampler string `yaml:"sampler"`
	// SamplerArg is the ratio of the traceidratio samplers, 0 to 1.
	// OTEL_TRACES_SAMPLER_ARG.
	SamplerArg *float64 `yaml:"sampler_arg"`
	// CaptureMessageContent records prompts and completions in the
	// upstream attempts' spans (gen_ai.input.messages,
	// gen_ai.output.messages). Off by default: they may hold personal data.
	// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true.
	CaptureMessageContent *bool `yaml:"capture_message_content"`
}

// otlpProtocols are the OTLP transports the proxy can export over.
var otlpProtocols = []string{"grpc", "http/protobuf"}

// samplers are the OTEL_TRACES_SAMPLER values the proxy understands.
var samplers = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on",
	"parentbased_always_off", "parentbased_traceidratio"}

func (v *validator) telemetry() {
	t := v.c.Telemetry
	if t.Endpoint != "" {
		if u, err := url.Parse(t.Endpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			v.add("telemetry.endpoint", "%q is not an http:// or https:// URL", t.Endpoint)
		}
	}
	if t.Protocol != "" && !slices.Contains(otlpProtocols, t.Protocol) {
		v.add("telemetry.protocol", "%q is not one of %s", t.Protocol, strings.Join(otlpProtocols, ", "))
	}
	if t.Sampler != "" && !slices.Contains(samplers, t.Sampler) {
		v.add("telemetry.sampler", "%q is not one of %s", t.Sampler, strings.Join(samplers, ", "))
	}
	if a := t.SamplerArg; a != nil && (*a < 0 || *a > 1) {
		v.add("telemetry.sampler_arg", "%v is not a ratio between 0 and 1", *a)
	}
}
