package router

import (
	"context"
	"testing"
	"time"
)

// fakeReranker is a Provider that also reranks.
type fakeReranker struct {
	fakeProvider
	rerank func(ctx context.Context, req *RerankRequest) (*RerankResponse, error)
}

func (f *fakeReranker) Rerank(ctx context.Context, req *RerankRequest) (*RerankResponse, error) {
	f.calls++
	f.seen = append(f.seen, req.Target)
	return f.rerank(ctx, req)
}

func rerankOK(_ context.Context, req *RerankRequest) (*RerankResponse, error) {
	return &RerankResponse{Results: []Ranked{{Index: len(req.Documents) - 1, Score: 0.9}}, Usage: Usage{PromptTokens: 7, TotalTokens: 7}}, nil
}

// TestRerankRouting: rerank calls take the embeddings path: breakers,
// cooldowns, retries, fallbacks, and deployments that cannot rerank are
// skipped.
func TestRerankRouting(t *testing.T) {
	docs := []string{"a", "b"}
	t.Run("skips a deployment that cannot rerank", func(t *testing.T) {
		chatOnly := &fakeProvider{}
		rr := &fakeReranker{rerank: rerankOK}
		r := newRouter(t, nil, Deployment{Provider: "p1", Model: "c", Client: chatOnly}, Deployment{Provider: "p2", Model: "r", Client: rr})
		req := &RerankRequest{Model: "chat", Query: "q", Documents: docs, Result: &Result{}}
		resp, err := r.Rerank(context.Background(), req)
		if err != nil || resp.Results[0].Index != 1 || req.Result.Target != (Target{"p2", "r"}) || req.Result.Attempts != 1 {
			t.Fatalf("Rerank() = %+v, %v via %+v after %d attempts; want p2/r's ranking in 1 attempt", resp, err, req.Result.Target, req.Result.Attempts)
		}
	})
	t.Run("alias without a reranker is a 400", func(t *testing.T) {
		r := newRouter(t, nil, Deployment{Provider: "p1", Model: "c", Client: &fakeProvider{}})
		_, err := r.Rerank(context.Background(), &RerankRequest{Model: "chat", Query: "q", Documents: docs})
		if e := AsError(err); e.Kind != KindInvalidRequest || e.Param != "model" {
			t.Errorf("Rerank() = %+v; want invalid_request_error on model", e)
		}
	})
	t.Run("unknown alias is a 404", func(t *testing.T) {
		r := newRouter(t, nil, Deployment{Provider: "p1", Model: "c", Client: &fakeReranker{rerank: rerankOK}})
		_, err := r.Rerank(context.Background(), &RerankRequest{Model: "nope", Query: "q", Documents: docs})
		if e := AsError(err); e.Kind != KindNotFound {
			t.Errorf("Rerank(nope) = %+v; want model_not_found", e)
		}
	})
	t.Run("429 cools down and the next deployment answers", func(t *testing.T) {
		p1 := &fakeReranker{rerank: func(context.Context, *RerankRequest) (*RerankResponse, error) {
			return nil, &Error{Kind: KindUpstreamRateLimited, Message: "slow", RetryAfter: time.Minute}
		}}
		p2 := &fakeReranker{rerank: rerankOK}
		r := newRouter(t, nil, Deployment{Provider: "p1", Model: "r", Client: p1}, Deployment{Provider: "p2", Model: "r", Client: p2})
		for i := range 3 {
			req := &RerankRequest{Model: "chat", Query: "q", Documents: docs, Result: &Result{}}
			if _, err := r.Rerank(context.Background(), req); err != nil || req.Result.Target.Provider != "p2" {
				t.Fatalf("Rerank %d = %v from %q; want p2", i, err, req.Result.Target.Provider)
			}
		}
		if p1.calls != 1 {
			t.Errorf("rate-limited deployment called %d times; want 1 (then cooled down)", p1.calls)
		}
	})
	t.Run("falls back to another alias", func(t *testing.T) {
		r, _ := New(Options{Routes: []Route{
			{Alias: "rr", Fallbacks: []string{"rr2"}, Deployments: []Deployment{{Provider: "p1", Model: "r", Client: &fakeReranker{rerank: func(context.Context, *RerankRequest) (*RerankResponse, error) {
				return nil, errHTTP500
			}}}}},
			{Alias: "rr2", Deployments: []Deployment{{Provider: "p2", Model: "r2", Client: &fakeReranker{rerank: rerankOK}}}},
		}, MaxAttempts: 2})
		req := &RerankRequest{Model: "rr", Query: "q", Documents: docs, Result: &Result{}}
		if _, err := r.Rerank(context.Background(), req); err != nil || req.Result.FallbackAlias != "rr2" || req.Result.Fallbacks != 1 {
			t.Errorf("Rerank() = %v, FallbackAlias %q, Fallbacks %d; want rr2 after 1 fallback", err, req.Result.FallbackAlias, req.Result.Fallbacks)
		}
	})
}
