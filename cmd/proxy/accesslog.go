package main

import (
	"encoding/json"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/trace"

	"llmproxy/router"
)

// Route labels: a closed set, so metrics stay cheap.
const (
	routeChat   = "chat"
	routeEmbed  = "embeddings"
	routeRerank = "rerank"
	routeModels = "models"
	routeOther  = "other"
)

// reqRecord is what the access line and the request metrics report. A
// streamed reply finishes in the stream writer, after the handler returned,
// so the record travels with it.
type reqRecord struct {
	mu        sync.Mutex
	requestID string
	route     string
	model     string // alias requested, only when it is configured
	// aliasUsed is the alias that served (a downgrade target or a
	// fallback) when it is not model; it prices the usage.
	aliasUsed string
	modelUsed string
	provider  string
	status    int
	stream    bool
	attempts  int
	// fallbacks is how many fallback aliases the router called: 0 when
	// the requested alias answered, however many retries it took.
	fallbacks int
	usage     router.Usage
	err       *router.Error
	start     time.Time
	ttft      time.Duration
	chunks    int
	// team and keyID identify the caller for the usage ledger; set by
	// the handler before a stream starts.
	team  string
	keyID string
	// span is the request's server span; nil when tracing is off. finish
	// ends it.
	span trace.Span
	// result is what the chain reported (router.Result): what served,
	// the budget's decisions and, after the stream's Close, the settled
	// usage and cost the usage ledger writes. Part of the record so that
	// it costs no allocation of its own.
	result router.Result
}

// fill copies what the chain reported into the record: the request is not
// read back.
func (r *reqRecord) fill() {
	res := &r.result
	r.aliasUsed = res.ServedAlias(r.model)
	r.modelUsed, r.provider = res.Target.Model, res.Target.Provider
	r.attempts, r.fallbacks = res.Attempts, res.Fallbacks
}

// aliasServed is the alias whose price the usage is billed at.
func (r *reqRecord) aliasServed() string {
	if r.aliasUsed != "" {
		return r.aliasUsed
	}
	return r.model
}

func (r *reqRecord) chunk(c *router.Chunk) {
	if r.chunks == 0 {
		r.ttft = time.Since(r.start)
	}
	r.chunks++
	if c.Usage != nil {
		r.usage = *c.Usage
	}
}

func (r *reqRecord) setErr(e *router.Error) {
	r.mu.Lock()
	r.err = e
	r.mu.Unlock()
}

// accessLog turns a handler error into its response right away (so the
// status is known), then writes one line per request. Streams log from
// their writer when they end.
func (s *Server) accessLog(c *fiber.Ctx) error {
	start := time.Now()
	n := s.work.add() // a stream writer holds its own count (chatHandler)
	defer s.work.done()
	c.Locals(localsAccess, true)
	var span trace.Span
	if s.tracing != nil && !probe(c.Path()) {
		span = s.startSpan(c)
	}
	var err error
	if s.maxInflight > 0 && n > s.maxInflight && sheddable(c.Path()) {
		s.metrics.shed.Inc()
		err = errOverloaded()
	} else {
		err = c.Next()
	}
	if err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			if span != nil {
				span.End()
			}
			return herr
		}
	}
	rec, _ := c.Locals(localsReq).(*reqRecord)
	if span != nil {
		nameSpan(span, c)
		if rec == nil {
			rec = &reqRecord{route: routeOf(c.Path()), start: start}
		}
		rec.span = span // before the stream writer runs: it ends the span
	}
	if c.Locals(localsStream) != nil {
		return nil
	}
	if rec == nil {
		switch c.Route().Path {
		case "/health", "/ready", "/metrics":
			return nil // probes and scrapes are not access traffic
		}
		rec = &reqRecord{route: routeOf(c.Path()), start: start}
	}
	rec.requestID = string(c.Response().Header.Peek(fiber.HeaderXRequestID))
	rec.status = c.Response().StatusCode()
	if e, ok := c.Locals(localsError).(*router.Error); ok {
		rec.err = e
	}
	s.finish(rec)
	return nil
}

// routeOf is the route label of a request refused before its handler ran
// (no key, unknown route, wrong method, body too large). c.Route() cannot
// tell: a refusal in the /v1 group's auth middleware reports the group.
func routeOf(path string) string {
	switch {
	case path == "/v1/chat/completions":
		return routeChat
	case path == "/v1/embeddings":
		return routeEmbed
	case path == "/v1/rerank":
		return routeRerank
	case path == "/v1/models", strings.HasPrefix(path, "/v1/models/"):
		return routeModels
	}
	return routeOther
}

// finish writes the access line and the request metrics.
func (s *Server) finish(r *reqRecord) {
	r.mu.Lock()
	e := r.err
	r.mu.Unlock()
	if r.span != nil {
		defer func() {
			var err error
			if e != nil {
				err = e
			}
			endSpan(r.span, r, err)
		}()
	}
	dur := time.Since(r.start)
	outcome := "ok"
	level := slog.LevelInfo
	if e != nil {
		outcome = e.Kind.String()
		if e.Kind == router.KindInternal {
			level = slog.LevelError
		} else if r.status == 200 { // failed after the status went out
			level = slog.LevelWarn
		}
	}
	s.recordUsage(r, outcome, dur) // settles the cost the metrics count
	s.metrics.request(r, outcome, dur)
	if r.usage.Clamped {
		// Once per request whose upstream reported an impossible count
		// (issue 16); the counts were clamped before anything was billed.
		s.log.LogAttrs(s.base, slog.LevelWarn, "upstream usage out of range; clamped",
			slog.String("request_id", r.requestID), slog.String("provider", r.provider),
			slog.String("model_used", r.modelUsed), slog.Int("prompt_tokens", r.usage.PromptTokens),
			slog.Int("completion_tokens", r.usage.CompletionTokens))
	}
	if !s.log.Enabled(s.base, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", r.requestID),
		slog.String("route", r.route),
		slog.String("model_requested", router.Clip(r.model)),
		slog.String("model_used", r.modelUsed),
		slog.String("provider", r.provider),
		slog.Int("status", r.status),
		slog.Bool("stream", r.stream),
		slog.Int("prompt_tokens", r.usage.PromptTokens),
		slog.Int("completion_tokens", r.usage.CompletionTokens),
		slog.Int("attempts", r.attempts),
		slog.Int("fallbacks", r.fallbacks),
		slog.Float64("ttft", r.ttft.Seconds()),
		slog.Float64("duration", dur.Seconds()),
	}
	if e != nil {
		attrs = append(attrs, slog.String("outcome", outcome), slog.String("err", e.Error()))
	}
	if r.span != nil {
		if sc := r.span.SpanContext(); sc.IsSampled() {
			attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	s.log.LogAttrs(s.base, level, "request", attrs...)
}

// probe reports the paths of probes and scrapes: neither access lines nor
// spans.
func probe(path string) bool {
	return path == "/health" || path == "/ready" || path == "/metrics"
}

func stack() string { return string(debug.Stack()) }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
