package router

import (
	"context"
	"testing"
	"time"
)

func embedOK(context.Context, *EmbedRequest) (*EmbedResponse, error) {
	return &EmbedResponse{Data: []byte(`{"object":"list"}`), Usage: Usage{PromptTokens: 10, TotalTokens: 10}}, nil
}

func embedFails(err error) func(context.Context, *EmbedRequest) (*EmbedResponse, error) {
	return func(context.Context, *EmbedRequest) (*EmbedResponse, error) { return nil, err }
}

// TestEmbedRouting: embeddings take the chat path's breakers, cooldowns,
// retries, fallbacks and TPM limiter.
func TestEmbedRouting(t *testing.T) {
	t.Run("429 cools the deployment down", func(t *testing.T) {
		p1 := &fakeEmbedder{embed: embedFails(&Error{Kind: KindUpstreamRateLimited, Message: "slow", RetryAfter: time.Minute})}
		p2 := &fakeEmbedder{embed: embedOK}
		r := newRouter(t, nil, Deployment{Provider: "p1", Model: "e", Client: p1}, Deployment{Provider: "p2", Model: "e", Client: p2})
		for i := range 3 {
			req := &EmbedRequest{Model: "chat", Result: &Result{}}
			if _, err := r.Embed(context.Background(), req); err != nil || req.Result.Target.Provider != "p2" {
				t.Fatalf("Embed %d = %v from %q; want p2", i, err, req.Result.Target.Provider)
			}
		}
		if p1.calls != 1 {
			t.Errorf("rate-limited deployment embedded %d times; want 1 (then cooled down)", p1.calls)
		}
		if c := r.Deployments()[0].Cooldown; c == nil || c.Reason != CooldownRateLimited {
			t.Errorf("cooldown = %+v; want rate_limited", c)
		}
	})
	t.Run("breaker opens and is shared", func(t *testing.T) {
		p1 := &fakeEmbedder{embed: embedFails(errHTTP500)}
		p2 := &fakeEmbedder{embed: embedOK}
		cd := NewMemoryCooldowns()
		r, _ := New(Options{Strategy: StrategyPriority, Cooldowns: cd, Breaker: BreakerSettings{MinRequests: 2, OpenFor: time.Minute},
			Routes: []Route{{Alias: "emb", Deployments: []Deployment{{Provider: "p1", Model: "e", Client: p1}, {Provider: "p2", Model: "e", Client: p2}}}}})
		for range 6 {
			if _, err := r.Embed(context.Background(), &EmbedRequest{Model: "emb"}); err != nil {
				t.Fatalf("Embed() error = %v", err)
			}
		}
		if p1.calls != 2 || r.Deployments()[0].Breaker != "open" {
			t.Errorf("failing deployment: %d calls, breaker %s; want 2 calls (min_requests), open", p1.calls, r.Deployments()[0].Breaker)
		}
		if c := cd.Get("p1/e"); c.Reason != CooldownBreakerOpen {
			t.Errorf("shared cooldown = %+v; want breaker_open", c)
		}
	})
	t.Run("retries the only deployment after a backoff", func(t *testing.T) {
		n := 0
		p := &fakeEmbedder{embed: func(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
			if n++; n == 1 {
				return nil, errHTTP500
			}
			return embedOK(ctx, req)
		}}
		r, _ := New(Options{RetryBase: time.Millisecond, Routes: []Route{{Alias: "emb", Deployments: []Deployment{{Provider: "p", Model: "e", Client: p}}}}})
		req := &EmbedRequest{Model: "emb", Result: &Result{}}
		if _, err := r.Embed(context.Background(), req); err != nil || req.Result.Attempts != 2 {
			t.Errorf("Embed() = %v after %d attempts; want success after 2", err, req.Result.Attempts)
		}
	})
	t.Run("falls back to another alias", func(t *testing.T) {
		r, _ := New(Options{Routes: []Route{
			{Alias: "emb", Fallbacks: []string{"emb2"}, Deployments: []Deployment{{Provider: "p1", Model: "e", Client: &fakeEmbedder{embed: embedFails(errHTTP500)}}}},
			{Alias: "emb2", Deployments: []Deployment{{Provider: "p2", Model: "e2", Client: &fakeEmbedder{embed: embedOK}}}},
		}, MaxAttempts: 2})
		req := &EmbedRequest{Model: "emb", Result: &Result{}}
		if _, err := r.Embed(context.Background(), req); err != nil || req.Result.FallbackAlias != "emb2" || req.Result.Target != (Target{"p2", "e2"}) {
			t.Errorf("Embed() = %v, FallbackAlias %q, Target %+v; want emb2's p2/e2", err, req.Result.FallbackAlias, req.Result.Target)
		}
	})
	t.Run("tpm corrected by the reported usage", func(t *testing.T) {
		clk := &clock{t: time.Unix(1000, 0)}
		r, _ := New(Options{Now: clk.Now, Routes: []Route{{Alias: "emb",
			Deployments: []Deployment{{Provider: "p", Model: "e", Client: &fakeEmbedder{embed: embedOK}, TPM: 1000}}}}})
		body := make([]byte, 400) // estimated 100 tokens
		if _, err := r.Embed(context.Background(), &EmbedRequest{Model: "emb", Body: body}); err != nil {
			t.Fatal(err)
		}
		if got := r.states["p/e"].tpm.tokensAt(clk.Now()); got != 990 {
			t.Errorf("tokens left = %v; want 990 (the 10 reported, not the 100 estimated)", got)
		}
	})
	t.Run("nothing healthy", func(t *testing.T) {
		p := &fakeEmbedder{embed: embedFails(&Error{Kind: KindUpstreamRateLimited, Message: "slow", RetryAfter: 3 * time.Second})}
		r := newRouter(t, nil, Deployment{Provider: "p1", Model: "e", Client: p})
		r.Embed(context.Background(), &EmbedRequest{Model: "chat"})
		_, err := r.Embed(context.Background(), &EmbedRequest{Model: "chat"})
		if e := AsError(err); e.Kind != KindUpstreamRateLimited || e.RetryAfter != 3*time.Second || p.calls != 1 {
			t.Errorf("Embed() during cooldown = %+v after %d calls; want a 429 with Retry-After 3s and no new call", e, p.calls)
		}
	})
}
