package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"llmproxy/router"
)

// Scope is the instrumentation scope of llmproxy's own spans.
const Scope = "llmproxy"

// SchemaURL is the semantic conventions version the attributes follow.
const SchemaURL = semconv.SchemaURL

// Span is a started span. The zero Span (tracing off, or a request the
// sampler dropped) does nothing, so instrumented code never checks.
type Span struct {
	s trace.Span
}

// Start starts an internal span named name as a child of the span in ctx.
// When ctx holds no recording span it returns ctx and the zero Span, and
// allocates nothing.
func Start(ctx context.Context, name string) (context.Context, Span) {
	return start(ctx, name, trace.SpanKindInternal)
}

func start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, Span{}
	}
	ctx, s := tracer(parent).Start(ctx, name, trace.WithSpanKind(kind))
	return ctx, Span{s: s}
}

// tracer is llmproxy's tracer from the provider that made parent.
func tracer(parent trace.Span) trace.Tracer {
	return parent.TracerProvider().Tracer(Scope, trace.WithSchemaURL(SchemaURL))
}

// Recording reports whether the span records: attributes that cost
// something to compute are worth it only then.
func (s Span) Recording() bool { return s.s != nil && s.s.IsRecording() }

// SetInt sets an integer attribute.
func (s Span) SetInt(key string, v int) {
	if s.Recording() {
		s.s.SetAttributes(attribute.Int(key, v))
	}
}

// SetFloat sets a floating-point attribute.
func (s Span) SetFloat(key string, v float64) {
	if s.Recording() {
		s.s.SetAttributes(attribute.Float64(key, v))
	}
}

// SetString sets a string attribute. Never pass prompt or completion text,
// a key or a secret.
func (s Span) SetString(key, v string) {
	if s.Recording() {
		s.s.SetAttributes(attribute.String(key, v))
	}
}

// SetBool sets a boolean attribute.
func (s Span) SetBool(key string, v bool) {
	if s.Recording() {
		s.s.SetAttributes(attribute.Bool(key, v))
	}
}

// Event adds a timestamped event with no attributes.
func (s Span) Event(name string) {
	if s.Recording() {
		s.s.AddEvent(name)
	}
}

// Link links the span to the span in ctx: work done for several
// requests at once (an embeddings batch) links the requests it served.
func (s Span) Link(ctx context.Context) {
	if !s.Recording() {
		return
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		s.s.AddLink(trace.Link{SpanContext: sc})
	}
}

// End ends the span. A non-nil err marks it failed: error.type is the
// router.Error's Kind (its label, as in the metrics) or "_OTHER", and the
// status description is the client-facing message, never the cause (which
// may quote an upstream).
func (s Span) End(err error) {
	if s.s == nil {
		return
	}
	if err != nil {
		setError(s.s, err)
	}
	s.s.End()
}

// setError marks sp failed with err, as End describes.
func setError(sp trace.Span, err error) {
	if !sp.IsRecording() {
		return
	}
	typ, msg := ErrorType(err)
	sp.SetAttributes(semconv.ErrorTypeKey.String(typ))
	sp.SetStatus(codes.Error, msg)
}

// ErrorType is err's error.type and a message safe to record: a
// router.Error's Kind label and client-facing Message, else "_OTHER" and
// "internal error".
func ErrorType(err error) (typ, msg string) {
	var e *router.Error
	if errors.As(err, &e) {
		return e.Kind.String(), router.Clip(e.Message)
	}
	return "_OTHER", "internal error"
}
