package main

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"llmproxy/telemetry"
)

// localsSpan holds a request's server span (accessLog starts it).
const localsSpan = "llmproxy.span"

// The server span is ours rather than otelfiber's: otelfiber reads the
// response body, which drains a stream before the first event goes out
// (DEPS.md). This one never touches the body; it starts with the access
// record and ends with it (finish), which for a stream is when the stream
// writer is done.

// startSpan starts c's server span, the child of the client's traceparent
// when it sent one, and leaves it in c's locals for requestContext.
func (s *Server) startSpan(c *fiber.Ctx) trace.Span {
	parent := s.tracing.prop.Extract(context.Background(), fasthttpCarrier{&c.Request().Header})
	method := string(c.Request().Header.Method())
	_, sp := s.tracing.server.Start(parent, method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method), semconv.URLPath(c.Path()),
			semconv.URLScheme(c.Protocol())))
	c.Locals(localsSpan, sp)
	return sp
}

// nameSpan names sp after c's route once routing is done: "POST
// /v1/chat/completions", "GET /v1/conversations/:id"; the method alone when
// no route matched.
func nameSpan(sp trace.Span, c *fiber.Ctx) {
	if !sp.IsRecording() {
		return
	}
	method := string(c.Request().Header.Method())
	if r := c.Route(); r != nil && r.Path != "" && r.Path != "/" {
		sp.SetName(method + " " + r.Path)
		sp.SetAttributes(semconv.HTTPRoute(r.Path))
	}
}

// spanContext puts c's server span into ctx, when tracing is on.
func (s *Server) spanContext(ctx context.Context, c *fiber.Ctx) context.Context {
	if s.tracing == nil {
		return ctx
	}
	if sp, ok := c.Locals(localsSpan).(trace.Span); ok {
		return trace.ContextWithSpan(ctx, sp)
	}
	return ctx
}

// endSpan ends a request's server span with what its access record says.
// Client errors (4xx) leave the status unset, as the HTTP conventions ask
// of server spans; error.type still names the failure.
func endSpan(sp trace.Span, r *reqRecord, err error) {
	if sp.IsRecording() {
		attrs := []attribute.KeyValue{
			semconv.HTTPResponseStatusCode(r.status),
			attribute.String("llmproxy.request_id", r.requestID),
			attribute.String("llmproxy.route", r.route),
		}
		if r.model != "" {
			attrs = append(attrs, attribute.String("llmproxy.model", r.model),
				attribute.Int("llmproxy.attempts", r.attempts), attribute.Int("llmproxy.fallbacks", r.fallbacks))
		}
		if r.team != "" {
			attrs = append(attrs, attribute.String("llmproxy.team", r.team))
		}
		if r.result.Conversation != "" {
			attrs = append(attrs, semconv.GenAIConversationID(r.result.Conversation))
		}
		if r.usage.PromptTokens+r.usage.CompletionTokens > 0 {
			attrs = append(attrs, semconv.GenAIUsageInputTokens(r.usage.PromptTokens),
				semconv.GenAIUsageOutputTokens(r.usage.CompletionTokens))
		}
		if err != nil {
			typ, msg := telemetry.ErrorType(err)
			attrs = append(attrs, semconv.ErrorTypeKey.String(typ))
			if r.status >= 500 || r.status == 200 { // 200: failed mid-stream
				sp.SetStatus(codes.Error, msg)
			}
		}
		sp.SetAttributes(attrs...)
	}
	sp.End()
}

// fasthttpCarrier reads a request's trace headers for the propagator.
type fasthttpCarrier struct{ h *fasthttp.RequestHeader }

func (f fasthttpCarrier) Get(key string) string { return string(f.h.Peek(key)) }
func (f fasthttpCarrier) Set(key, value string) { f.h.Set(key, value) }
func (f fasthttpCarrier) Keys() []string {
	var keys []string
	f.h.VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}

// tracedTransport sends the attempt's trace context upstream
// (traceparent, and tracestate when there is one) and names the upstream
// host on the attempt's span (server.address). Installed only when tracing
// is on; a request without a span in its context passes untouched.
type tracedTransport struct {
	base http.RoundTripper
	prop propagation.TextMapPropagator
}

func (t tracedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	sp := trace.SpanFromContext(r.Context())
	if !sp.SpanContext().IsValid() {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context()) // a RoundTripper must not change its caller's request
	t.prop.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	if sp.IsRecording() {
		attrs := []attribute.KeyValue{semconv.ServerAddress(r.URL.Hostname())}
		if p, err := strconv.Atoi(r.URL.Port()); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
		sp.SetAttributes(attrs...)
	}
	return t.base.RoundTrip(r)
}

// CloseIdleConnections passes http.Client.CloseIdleConnections on.
func (t tracedTransport) CloseIdleConnections() {
	if ci, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// traced returns hc with tracedTransport around its transport.
func (t *tracing) traced(hc *http.Client) *http.Client {
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := *hc
	c.Transport = tracedTransport{base: base, prop: t.prop}
	return &c
}
