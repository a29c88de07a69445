package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"llmproxy/router"
)

// recorder is a tracer provider that keeps every ended span.
func recorder(t *testing.T, s sdktrace.Sampler) (*tracetest.SpanRecorder, trace.Tracer) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(s))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return rec, tp.Tracer("test")
}

func attrs(s sdktrace.ReadOnlySpan) map[string]attribute.Value {
	m := map[string]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value
	}
	return m
}

func byName(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range rec.Ended() {
		if s.Name() == name {
			return s
		}
	}
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	t.Fatalf("no span %q; ended: %v", name, names)
	return nil
}

// TestStartOffCostsNothing: with no recording span in the context (tracing
// off, or a request the sampler dropped) Start hands back the same context
// and a zero Span, allocating nothing, and every method is a no-op.
func TestStartOffCostsNothing(t *testing.T) {
	_, tr := recorder(t, sdktrace.NeverSample())
	dropped, _ := tr.Start(context.Background(), "server")
	for name, ctx := range map[string]context.Context{"no span": context.Background(), "not sampled": dropped} {
		got, sp := Start(ctx, "x")
		if got != ctx || sp != (Span{}) {
			t.Errorf("%s: Start returned a new context or span", name)
		}
		fail := errors.New("x")
		allocs := testing.AllocsPerRun(100, func() {
			_, sp := Start(ctx, "budget.admit")
			sp.SetInt("k", 1)
			sp.SetString("k", "v")
			sp.Link(ctx)
			sp.End(fail)
		})
		if allocs != 0 {
			t.Errorf("%s: Start/Set/End allocate %v times; want 0", name, allocs)
		}
	}
}

// TestStartChildSpan: under a recording span Start makes a child with the
// attributes set, and End records a router.Error as error.type with the
// client-facing message only.
func TestStartChildSpan(t *testing.T) {
	rec, tr := recorder(t, sdktrace.AlwaysSample())
	ctx, parent := tr.Start(context.Background(), "server")
	_, sp := Start(ctx, "budget.admit")
	sp.SetInt("llmproxy.budget.buckets", 2)
	sp.End(&router.Error{Kind: router.KindBudgetExceeded, Message: "You exceeded your current quota", Err: errors.New("secret cause")})
	parent.End()
	got := byName(t, rec, "budget.admit")
	if got.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("budget.admit's parent = %v; want the server span", got.Parent().SpanID())
	}
	a := attrs(got)
	if a["llmproxy.budget.buckets"].AsInt64() != 2 || a["error.type"].AsString() != "budget_exceeded" {
		t.Errorf("attributes = %v; want buckets 2, error.type budget_exceeded", a)
	}
	if d := got.Status().Description; d != "You exceeded your current quota" {
		t.Errorf("status description = %q; want the client message, not the cause", d)
	}
}

// chunk is a streamed chat.completion.chunk.
func chunk(content, finish string) *router.Chunk {
	fr := "null"
	if finish != "" {
		fr = `"` + finish + `"`
	}
	c, _ := json.Marshal(content)
	return &router.Chunk{Data: []byte(`{"id":"chatcmpl-42","object":"chat.completion.chunk","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":` +
		string(c) + `},"finish_reason":` + fr + `}]}`)}
}

const body = `{"model":"m","messages":[{"role":"system","content":"be terse"},{"role":"user","content":[{"type":"text","text":"SECRET-PROMPT"},{"type":"image_url","image_url":{"url":"data:..."}}]}]}`

// TestAttemptSpan: an attempt's span is a CLIENT span named "chat
// {model}" with the GenAI attributes from the request, the chunks and the
// usage, and a first-chunk event. Content stays out unless captured.
func TestAttemptSpan(t *testing.T) {
	for _, capture := range []bool{false, true} {
		rec, tr := recorder(t, sdktrace.AlwaysSample())
		ctx, parent := tr.Start(context.Background(), "server")
		a := &Attempts{Providers: map[string]string{"az": ProviderName("azure")}, CaptureContent: capture}
		actx, sp := a.StartAttempt(ctx, router.Attempt{Operation: "chat", Alias: "gpt", Target: router.Target{Provider: "az", Model: "gpt-4o-mini"},
			Stream: true, MaxTokens: 64, Body: []byte(body)})
		if trace.SpanFromContext(actx).SpanContext().SpanID() == parent.SpanContext().SpanID() {
			t.Fatal("the attempt's context does not carry its own span")
		}
		for _, c := range []*router.Chunk{chunk("", ""), chunk("Hello", ""), chunk(" SECRET-REPLY", ""), chunk("", "stop")} {
			sp.Chunk(c)
		}
		sp.End(&router.Usage{PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15, CachedTokens: 4}, nil)
		parent.End()
		got := byName(t, rec, "chat gpt-4o-mini")
		if got.SpanKind() != trace.SpanKindClient {
			t.Errorf("kind = %v; want client", got.SpanKind())
		}
		at := attrs(got)
		for k, want := range map[string]any{
			"gen_ai.operation.name": "chat", "gen_ai.provider.name": "azure.ai.openai", "gen_ai.request.model": "gpt-4o-mini",
			"gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.id": "chatcmpl-42", "gen_ai.request.max_tokens": int64(64),
			"gen_ai.usage.input_tokens": int64(12), "gen_ai.usage.output_tokens": int64(3), "gen_ai.usage.cache_read.input_tokens": int64(4),
			"llmproxy.provider": "az", "llmproxy.model_alias": "gpt", "gen_ai.request.stream": true,
		} {
			if v, ok := at[k]; !ok || v.AsInterface() != want {
				t.Errorf("capture=%v: %s = %v; want %v", capture, k, v.AsInterface(), want)
			}
		}
		if fr := at["gen_ai.response.finish_reasons"].AsStringSlice(); len(fr) != 1 || fr[0] != "stop" {
			t.Errorf("finish_reasons = %v; want [stop]", fr)
		}
		if ev := got.Events(); len(ev) != 1 || ev[0].Name != FirstChunkEvent {
			t.Errorf("events = %v; want one %s", ev, FirstChunkEvent)
		}
		all := ""
		for _, kv := range got.Attributes() {
			all += kv.Value.Emit() + " "
		}
		if has := strings.Contains(all, "SECRET-PROMPT") && strings.Contains(all, "SECRET-REPLY"); has != capture {
			t.Errorf("capture=%v but prompt and reply in the span = %v: %s", capture, has, all)
		}
		if capture {
			in := at["gen_ai.input.messages"].AsString()
			if !strings.Contains(in, `{"type":"image_url"}`) || strings.Contains(in, "data:") {
				t.Errorf("input messages = %s; want the image part by type only", in)
			}
			if out := at["gen_ai.output.messages"].AsString(); out != `[{"role":"assistant","parts":[{"type":"text","content":"Hello SECRET-REPLY"}],"finish_reason":"stop"}]` {
				t.Errorf("output messages = %s", out)
			}
		}
	}
}

// TestAttemptUntraced: no recording span, no attempt span.
func TestAttemptUntraced(t *testing.T) {
	ctx := context.Background()
	got, sp := (&Attempts{}).StartAttempt(ctx, router.Attempt{Operation: "chat"})
	if got != ctx || sp != nil {
		t.Errorf("StartAttempt without a parent = %v, %v; want ctx, nil", got, sp)
	}
}

// TestAttemptFailed: a failed attempt records error.type.
func TestAttemptFailed(t *testing.T) {
	rec, tr := recorder(t, sdktrace.AlwaysSample())
	ctx, parent := tr.Start(context.Background(), "server")
	_, sp := (&Attempts{}).StartAttempt(ctx, router.Attempt{Operation: "embeddings", Target: router.Target{Provider: "p", Model: "e"}})
	sp.End(nil, &router.Error{Kind: router.KindUpstream, Message: "upstream returned 500"})
	parent.End()
	at := attrs(byName(t, rec, "embeddings e"))
	if at["error.type"].AsString() != "upstream" || at["gen_ai.provider.name"].AsString() != "llmproxy.p" {
		t.Errorf("attributes = %v", at)
	}
}

// TestChildOnly: the libraries' hooks start spans only under a recording
// span.
func TestChildOnly(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	co := ChildOnly(tp).Tracer("redis")
	_, sp := co.Start(context.Background(), "orphan")
	sp.End()
	ctx, parent := tp.Tracer("test").Start(context.Background(), "server")
	_, sp = co.Start(ctx, "child")
	sp.End()
	parent.End()
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	if strings.Join(names, ",") != "child,server" {
		t.Errorf("ended spans = %v; want child and server only", names)
	}
}
