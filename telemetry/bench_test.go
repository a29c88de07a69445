package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"llmproxy/router"
)

// benchTracer records spans and keeps none (no processor): the cost of
// making them, not of exporting.
func benchTracer(s sdktrace.Sampler) trace.Tracer {
	return sdktrace.NewTracerProvider(sdktrace.WithSampler(s)).Tracer("bench")
}

// BenchmarkStart is one stage's span (Start, two attributes, End) with
// tracing off (no span in the context), under a request the sampler
// dropped, and under a sampled one (recorded, not exported).
//
//	go test ./telemetry -run '^$' -bench . -benchmem
func BenchmarkStart(b *testing.B) {
	dropped, _ := benchTracer(sdktrace.NeverSample()).Start(context.Background(), "server")
	sampled, _ := benchTracer(sdktrace.AlwaysSample()).Start(context.Background(), "server")
	for name, ctx := range map[string]context.Context{"off": context.Background(), "sampled0": dropped, "sampled1": sampled} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, sp := Start(ctx, "budget.admit")
				sp.SetInt("llmproxy.budget.buckets", 1)
				sp.SetString("llmproxy.team", "t")
				sp.End(nil)
			}
		})
	}
}

// BenchmarkAttempt is one upstream attempt's span with 22 streamed chunks.
func BenchmarkAttempt(b *testing.B) {
	ctx, _ := benchTracer(sdktrace.AlwaysSample()).Start(context.Background(), "server")
	chunks := []*router.Chunk{chunk("", "")}
	for range 20 {
		chunks = append(chunks, chunk(" tok", ""))
	}
	chunks = append(chunks, chunk("", "stop"))
	a := &Attempts{Providers: map[string]string{"p": "openai"}}
	usage := &router.Usage{PromptTokens: 24, CompletionTokens: 20, TotalTokens: 44}
	b.ReportAllocs()
	for b.Loop() {
		_, sp := a.StartAttempt(ctx, router.Attempt{Operation: "chat", Alias: "a", Target: router.Target{Provider: "p", Model: "m"}, Stream: true, MaxTokens: 64})
		for _, c := range chunks {
			sp.Chunk(c)
		}
		sp.End(usage, nil)
	}
}
