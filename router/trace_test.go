package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// spanKey marks the context a fakeTracer returned, so a test can tell
// whether the provider was called with it.
type spanKey struct{}

// fakeTracer records attempts and what each span saw.
type fakeTracer struct{ spans []*fakeSpan }

type fakeSpan struct {
	a      Attempt
	chunks []string
	ended  int
	usage  *Usage
	err    error
}

func (f *fakeTracer) StartAttempt(ctx context.Context, a Attempt) (context.Context, AttemptSpan) {
	s := &fakeSpan{a: a}
	f.spans = append(f.spans, s)
	return context.WithValue(ctx, spanKey{}, len(f.spans)), s
}

func (s *fakeSpan) Chunk(c *Chunk)              { s.chunks = append(s.chunks, string(c.Data)) }
func (s *fakeSpan) End(usage *Usage, err error) { s.ended++; s.usage, s.err = usage, err }

func (s *fakeSpan) String() string {
	return fmt.Sprintf("%s %s/%s chunks=%v ended=%d err=%v", s.a.Operation, s.a.Target.Provider, s.a.Target.Model, s.chunks, s.ended, s.err)
}

// TestTracerAttempts: a fallback makes two attempt spans; the failed one
// ends with its error at once, the serving one sees every upstream chunk
// (the held ones included) and ends once, with the usage, when the stream
// ends. Each provider is called with the context its span returned.
func TestTracerAttempts(t *testing.T) {
	var ctxSeen []any
	p1 := &fakeProvider{chat: func(ctx context.Context, _ *ChatRequest) (Stream, error) {
		ctxSeen = append(ctxSeen, ctx.Value(spanKey{}))
		return nil, &Error{Kind: KindUpstream, Message: "down"}
	}}
	usage := &Usage{PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5}
	p2 := &fakeProvider{chat: func(ctx context.Context, _ *ChatRequest) (Stream, error) {
		ctxSeen = append(ctxSeen, ctx.Value(spanKey{}))
		return &fakeStream{chunks: []*Chunk{text(`{"choices":[{"delta":{"role":"assistant"}}]}`), text(`{"choices":[{"delta":{"content":"hi"}}]}`),
			{Data: []byte(`{"choices":[]}`), Usage: usage, UsageOnly: true}}}, nil
	}}
	tr := &fakeTracer{}
	r, err := New(Options{Routes: []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m1", Client: p1, Priority: 0},
		{Provider: "p2", Model: "m2", Client: p2, Priority: 1}}}}, Strategy: StrategyPriority, Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Serve(context.Background(), &ChatRequest{Model: "chat", Stream: true, MaxTokens: 9, Body: []byte(`{}`)})
	if err != nil {
		t.Fatalf("Serve() error = %v", err)
	}
	if len(tr.spans) != 2 || tr.spans[0].ended != 1 || tr.spans[1].ended != 0 {
		t.Fatalf("after Serve: spans %v; want the failed one ended, the serving one open", tr.spans)
	}
	if _, err := readAll(t, s); err != nil {
		t.Fatal(err)
	}
	s.Close()
	first, second := tr.spans[0], tr.spans[1]
	var e *Error
	if !errors.As(first.err, &e) || e.Kind != KindUpstream {
		t.Errorf("first span ended with %v; want the upstream error", first.err)
	}
	if second.ended != 1 || second.err != nil || second.usage == nil || second.usage.TotalTokens != 5 || len(second.chunks) != 3 {
		t.Errorf("second span = %v, usage %+v; want 3 chunks, ended once with the usage", second, second.usage)
	}
	if a := second.a; a.Operation != "chat" || a.Alias != "chat" || a.Target != (Target{"p2", "m2"}) || !a.Stream || a.MaxTokens != 9 {
		t.Errorf("second attempt = %+v", a)
	}
	if fmt.Sprint(ctxSeen) != "[1 2]" {
		t.Errorf("providers saw span contexts %v; want [1 2]", ctxSeen)
	}
}

// TestTracerEmbed: an embeddings attempt is traced with its usage.
func TestTracerEmbed(t *testing.T) {
	p := &fakeEmbedder{embed: func(context.Context, *EmbedRequest) (*EmbedResponse, error) {
		return &EmbedResponse{Data: []byte(`{}`), Usage: Usage{PromptTokens: 4, TotalTokens: 4}}, nil
	}}
	tr := &fakeTracer{}
	r, err := New(Options{Routes: []Route{{Alias: "e", Deployments: []Deployment{{Provider: "p", Model: "emb", Client: p}}}}, Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Embed(context.Background(), &EmbedRequest{Model: "e", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if len(tr.spans) != 1 || !strings.HasPrefix(tr.spans[0].String(), "embeddings p/emb") || tr.spans[0].ended != 1 ||
		tr.spans[0].usage == nil || tr.spans[0].usage.PromptTokens != 4 {
		t.Errorf("spans = %v; want one ended embeddings span with 4 input tokens", tr.spans)
	}
}
