package router

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// routeObs records RouteObserver calls.
type routeObs struct {
	fakeObserver
	retries   int
	fallbacks []string
	states    []string
}

func (o *routeObs) Retry(string) { o.mu.Lock(); o.retries++; o.mu.Unlock() }
func (o *routeObs) Fallback(from, to string) {
	o.mu.Lock()
	o.fallbacks = append(o.fallbacks, from+">"+to)
	o.mu.Unlock()
}
func (o *routeObs) BreakerState(_, dep string, s BreakerState) {
	o.mu.Lock()
	o.states = append(o.states, dep+"="+s.String())
	o.mu.Unlock()
}

// seq answers with each behaviour in turn, repeating the last.
func seq(steps ...func(context.Context, *ChatRequest) (Stream, error)) *fakeProvider {
	var mu sync.Mutex
	i := 0
	return &fakeProvider{chat: func(ctx context.Context, req *ChatRequest) (Stream, error) {
		mu.Lock()
		f := steps[min(i, len(steps)-1)]
		i++
		mu.Unlock()
		return f(ctx, req)
	}}
}

func serveText(t *testing.T, r *Router, req *ChatRequest) (string, error) {
	t.Helper()
	s, err := r.Serve(context.Background(), req)
	if err != nil {
		return "", err
	}
	defer s.Close()
	return transcript(s), nil
}

func TestRetrySameDeploymentAfterBackoff(t *testing.T) {
	for _, status := range []*Error{errHTTP500, {Kind: KindInvalidRequest, Status: 409, Message: "conflict"}} {
		p := seq(fails(status), answers(contentChunk("ok")))
		obs := &routeObs{}
		r, _ := New(Options{RetryBase: time.Millisecond, Observer: obs, Routes: []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p", Model: "m", Client: p}}}}})
		req := &ChatRequest{Model: "chat", Stream: true, Result: &Result{}}
		got, err := serveText(t, r, req)
		if err != nil || got != "ok [DONE]" || req.Result.Attempts != 2 || obs.retries != 1 {
			t.Errorf("after a %d: Serve() = %q, %v, %d attempts, %d retries; want ok after 2 attempts, 1 retry", status.StatusCode(), got, err, req.Result.Attempts, obs.retries)
		}
	}
}

// TestRetryStopsAtTheDeadline: a backoff that cannot fit before the
// request's deadline is not slept; the error comes back at once. The
// jitter is pinned at half the cap (500ms against 100ms): with a random
// one, a small draw may rightly fit, and the call count would be luck.
func TestRetryStopsAtTheDeadline(t *testing.T) {
	p := &fakeProvider{chat: fails(errHTTP500)}
	r, _ := New(Options{MaxAttempts: 10, RetryBase: time.Second, RetryMax: time.Second, Rand: func() uint64 { return 1 << 63 },
		Timeouts: Timeouts{Total: 100 * time.Millisecond},
		Routes:   []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p", Model: "m", Client: p}}}}})
	start := time.Now()
	req := &ChatRequest{Model: "chat"}
	_, err := serveText(t, r, req)
	if AsError(err).Kind != KindUpstream || time.Since(start) > 900*time.Millisecond {
		t.Errorf("Serve() = %v after %v; want the upstream error at once (a 1s backoff cannot fit 100ms)", err, time.Since(start))
	}
	if p.calls != 1 {
		t.Errorf("called %d times; want 1 (a 500ms backoff cannot fit 100ms)", p.calls)
	}
}

// TestRateLimitCooldown: a 429 with Retry-After benches the deployment for
// exactly that long, without counting as a breaker failure.
func TestRateLimitCooldown(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	limited := &fakeProvider{chat: fails(&Error{Kind: KindUpstreamRateLimited, Message: "slow down", RetryAfter: 2 * time.Second})}
	other := &fakeProvider{chat: answers(contentChunk("p2"))}
	r, _ := New(Options{Now: clk.Now, Strategy: StrategyPriority, Routes: []Route{{Alias: "chat",
		Deployments: []Deployment{{Provider: "p1", Model: "m", Client: limited}, {Provider: "p2", Model: "m", Client: other}}}}})
	for i := range 5 {
		if got, err := serveText(t, r, &ChatRequest{Model: "chat"}); got != "p2 [DONE]" || err != nil {
			t.Fatalf("request %d = %q, %v; want p2", i, got, err)
		}
		clk.Add(300 * time.Millisecond)
	}
	if limited.calls != 1 {
		t.Errorf("rate-limited deployment called %d times within its 2s Retry-After; want 1", limited.calls)
	}
	clk.Add(time.Second)
	serveText(t, r, &ChatRequest{Model: "chat"})
	if limited.calls != 2 {
		t.Errorf("after Retry-After the deployment was called %d times; want 2", limited.calls)
	}
	if c := r.states["p1/m"].cb.Counts(); c.TotalFailures != 0 {
		t.Errorf("breaker failures = %d; want 0 (a 429 is a cooldown)", c.TotalFailures)
	}
}

func TestAllRateLimitedIs429(t *testing.T) {
	p := &fakeProvider{chat: fails(&Error{Kind: KindUpstreamRateLimited, Message: "slow down", RetryAfter: 3 * time.Second})}
	r, _ := New(Options{Routes: []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m", Client: p}}}}})
	serveText(t, r, &ChatRequest{Model: "chat"})
	_, err := serveText(t, r, &ChatRequest{Model: "chat"})
	if e := AsError(err); e.Kind != KindUpstreamRateLimited || e.RetryAfter < time.Second || e.Err == nil || !strings.Contains(e.Err.Error(), "cooldown") {
		t.Errorf("Serve() during cooldown = %+v; want a 429 with Retry-After, the cooldown named in Err", e)
	}
}

// TestBreakerOpensAndRecovers: failures past the ratio open the breaker
// (shared as a cooldown), traffic moves, and a probe after open_for
// closes it again.
func TestBreakerOpensAndRecovers(t *testing.T) {
	var mu sync.Mutex
	healthy := false
	flaky := &fakeProvider{chat: func(ctx context.Context, req *ChatRequest) (Stream, error) {
		mu.Lock()
		defer mu.Unlock()
		if healthy {
			return &fakeStream{chunks: []*Chunk{contentChunk("p1")}}, nil
		}
		return nil, errHTTP500
	}}
	other := &fakeProvider{chat: answers(contentChunk("p2"))}
	obs := &routeObs{}
	cd := NewMemoryCooldowns()
	r, _ := New(Options{Strategy: StrategyPriority, Observer: obs, Cooldowns: cd,
		Breaker: BreakerSettings{FailureRatio: 0.5, MinRequests: 4, Window: time.Minute, OpenFor: 100 * time.Millisecond, HalfOpenProbes: 1},
		Routes:  []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m", Client: flaky}, {Provider: "p2", Model: "m", Client: other}}}}})
	for range 10 {
		if got, _ := serveText(t, r, &ChatRequest{Model: "chat"}); got != "p2 [DONE]" {
			t.Fatalf("transcript = %q; want p2", got)
		}
	}
	if flaky.calls != 4 {
		t.Errorf("failing deployment called %d times; want 4 (opens at min_requests)", flaky.calls)
	}
	if got := cd.Get("p1/m"); got.Reason != CooldownBreakerOpen {
		t.Errorf("shared cooldown = %+v; want breaker_open", got)
	}
	mu.Lock()
	healthy = true
	mu.Unlock()
	time.Sleep(150 * time.Millisecond)
	if got, _ := serveText(t, r, &ChatRequest{Model: "chat"}); got != "p1 [DONE]" {
		t.Errorf("after open_for transcript = %q; want the probe to reach p1", got)
	}
	if s := r.Deployments()[0].Breaker; s != "closed" {
		t.Errorf("breaker after a good probe = %s; want closed", s)
	}
	if want := "p1/m=open p1/m=half-open p1/m=closed"; strings.Join(obs.states, " ") != want {
		t.Errorf("breaker transitions = %q; want %q", obs.states, want)
	}
}

func TestFallbacks(t *testing.T) {
	down := &fakeProvider{chat: fails(errHTTP500)}
	overflow := &fakeProvider{chat: fails(&Error{Kind: KindInvalidRequest, Status: 400, Code: "context_length_exceeded", Message: "too long"})}
	big := &fakeProvider{chat: answers(contentChunk("big"))}
	backup := &fakeProvider{chat: answers(contentChunk("backup"))}
	routes := func(first Provider) []Route {
		return []Route{
			{Alias: "small", ContextWindow: 100, Fallbacks: []string{"backup"}, ContextWindowFallbacks: []string{"big"},
				Deployments: []Deployment{{Provider: "p", Model: "small", Client: first}}},
			{Alias: "big", Deployments: []Deployment{{Provider: "p", Model: "big", Client: big}}},
			{Alias: "backup", Deployments: []Deployment{{Provider: "q", Model: "backup", Client: backup}}},
		}
	}
	tests := []struct {
		name   string
		first  Provider
		tokens int
		want   string
		alias  string
	}{
		{"every deployment failed", down, 10, "backup [DONE]", "backup"},
		{"prompt too big for the window", down, 500, "big [DONE]", "big"},
		{"upstream said context_length_exceeded", overflow, 10, "big [DONE]", "big"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obs := &routeObs{}
			r, _ := New(Options{Routes: routes(tc.first), Observer: obs, MaxAttempts: 2,
				Tokens: func(string, []byte) int { return tc.tokens }})
			req := &ChatRequest{Model: "small", Stream: true, Result: &Result{}}
			got, err := serveText(t, r, req)
			if got != tc.want || err != nil || req.Result.FallbackAlias != tc.alias {
				t.Errorf("Serve() = %q, %v, FallbackAlias %q; want %q from %q", got, err, req.Result.FallbackAlias, tc.want, tc.alias)
			}
			if len(obs.fallbacks) != 1 || obs.fallbacks[0] != "small>"+tc.alias {
				t.Errorf("fallbacks counted = %q; want [small>%s]", obs.fallbacks, tc.alias)
			}
		})
	}
}

func TestRPMLimitSkips(t *testing.T) {
	p1 := &fakeProvider{chat: answers(contentChunk("p1"))}
	p2 := &fakeProvider{chat: answers(contentChunk("p2"))}
	r, _ := New(Options{Strategy: StrategyPriority, Routes: []Route{{Alias: "chat",
		Deployments: []Deployment{{Provider: "p1", Model: "m", Client: p1, RPM: 2}, {Provider: "p2", Model: "m", Client: p2}}}}})
	var got []string
	for range 4 {
		s, _ := serveText(t, r, &ChatRequest{Model: "chat"})
		got = append(got, s)
	}
	if strings.Join(got, ",") != "p1 [DONE],p1 [DONE],p2 [DONE],p2 [DONE]" {
		t.Errorf("transcripts = %q; want p1 twice (rpm 2), then p2", got)
	}
}

func TestTimeoutsResolve(t *testing.T) {
	var seen Timeouts
	p := &fakeProvider{chat: func(_ context.Context, req *ChatRequest) (Stream, error) {
		seen = req.Timeouts
		return &fakeStream{chunks: []*Chunk{contentChunk("x")}}, nil
	}}
	r, _ := New(Options{Timeouts: Timeouts{FirstToken: 30 * time.Second, Idle: 30 * time.Second, Total: time.Minute},
		Routes: []Route{{Alias: "chat", Timeouts: Timeouts{Idle: 10 * time.Second},
			Deployments: []Deployment{{Provider: "p", Model: "m", Client: p, Timeouts: Timeouts{FirstToken: 20 * time.Second}}}}}})
	serveText(t, r, &ChatRequest{Model: "chat"})
	if want := (Timeouts{FirstToken: 20 * time.Second, Idle: 10 * time.Second, Total: time.Minute}); seen != want {
		t.Errorf("Timeouts = %+v; want %+v (alias over provider over default)", seen, want)
	}
	serveText(t, r, &ChatRequest{Model: "chat", TimeoutCap: 15 * time.Second})
	if want := (Timeouts{FirstToken: 15 * time.Second, Idle: 10 * time.Second, Total: 15 * time.Second}); seen != want {
		t.Errorf("capped Timeouts = %+v; want %+v (the cap lowers, never raises)", seen, want)
	}
}

func TestExplain(t *testing.T) {
	p := &fakeProvider{chat: answers()}
	cd := NewMemoryCooldowns()
	r, _ := New(Options{Strategy: StrategyPriority, Cooldowns: cd,
		Allowed: func(team, alias string) bool { return alias != "secret" },
		Routes: []Route{
			{Alias: "chat", Fallbacks: []string{"secret"}, Deployments: []Deployment{{Provider: "p1", Model: "m", Client: p}, {Provider: "p2", Model: "m", Client: p}}},
			{Alias: "secret", Deployments: []Deployment{{Provider: "p3", Model: "m", Client: p}}},
		}})
	cd.Set(context.Background(), "p1/m", Cooldown{Until: time.Now().Add(time.Minute), Reason: CooldownRateLimited})
	got, err := r.Explain(WithIdentity(context.Background(), Identity{Team: "t"}), &ChatRequest{Model: "chat"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[0].Chosen || got[0].Deployment != "p2/m" || !strings.HasPrefix(got[1].Reason, "cooldown (rate_limited) until") ||
		got[2].Reason != "not allowed for the team" {
		t.Errorf("Explain() = %+v; want p2 chosen, p1 in cooldown, secret not allowed", got)
	}
	if p.calls != 0 {
		t.Errorf("Explain called an upstream %d times; want 0", p.calls)
	}
}
