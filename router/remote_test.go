package router

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gateProvider answers each call with the current behaviour; it is safe
// for concurrent calls.
type gateProvider struct {
	mu    sync.Mutex
	chat  func(ctx context.Context) (Stream, error)
	calls atomic.Int64
}

func (g *gateProvider) Chat(ctx context.Context, _ *ChatRequest) (Stream, error) {
	g.calls.Add(1)
	g.mu.Lock()
	f := g.chat
	g.mu.Unlock()
	return f(ctx)
}

func (g *gateProvider) set(f func(ctx context.Context) (Stream, error)) {
	g.mu.Lock()
	g.chat = f
	g.mu.Unlock()
}

func okStream(s string) func(context.Context) (Stream, error) {
	return func(context.Context) (Stream, error) { return &fakeStream{chunks: []*Chunk{contentChunk(s)}}, nil }
}

// TestRemoteBreakerProbe: a breaker_open cooldown another replica
// published benches the deployment until it ends; then the first request
// is a half-open probe while others go elsewhere, a good probe closes it,
// and a failed one publishes a fresh breaker_open cooldown.
func TestRemoteBreakerProbe(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	cd := NewMemoryCooldowns()
	p1 := &gateProvider{chat: okStream("p1")}
	p2 := &gateProvider{chat: okStream("p2")}
	r, _ := New(Options{Now: clk.Now, Cooldowns: cd, Strategy: StrategyPriority,
		Breaker: BreakerSettings{OpenFor: 5 * time.Second, HalfOpenProbes: 1},
		Routes:  []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m", Client: p1}, {Provider: "p2", Model: "m", Client: p2}}}}})
	serve := func() string {
		t.Helper()
		got, err := serveText(t, r, &ChatRequest{Model: "chat", Stream: true})
		if err != nil {
			t.Fatalf("Serve() error = %v", err)
		}
		return got
	}
	remoteOpen := func(d time.Duration) {
		cd.Set(context.Background(), "p1/m", Cooldown{Until: clk.Now().Add(d), Reason: CooldownBreakerOpen})
	}

	remoteOpen(time.Second)
	if got := serve(); got != "p2 [DONE]" || p1.calls.Load() != 0 {
		t.Fatalf("during the remote open state: %q, p1 called %d times; want p2 and no call", got, p1.calls.Load())
	}
	clk.Add(time.Second)
	if st := r.Deployments()[0].Breaker; st != "half-open" {
		t.Errorf("after the cooldown ended breaker = %s; want half-open", st)
	}

	// The probe holds p1 until released; meanwhile requests go to p2.
	release := make(chan struct{})
	entered := make(chan struct{})
	p1.set(func(ctx context.Context) (Stream, error) {
		close(entered)
		<-release
		return &fakeStream{chunks: []*Chunk{contentChunk("p1")}}, nil
	})
	probe := make(chan string)
	go func() {
		got, _ := serveText(t, r, &ChatRequest{Model: "chat", Stream: true})
		probe <- got
	}()
	<-entered
	if st := r.Deployments()[0].Breaker; st != "open" {
		t.Errorf("with the probe in flight breaker = %s; want open (half_open_probes is 1)", st)
	}
	if got := serve(); got != "p2 [DONE]" {
		t.Errorf("request during the probe = %q; want p2", got)
	}
	close(release)
	if got := <-probe; got != "p1 [DONE]" {
		t.Errorf("probe = %q; want p1", got)
	}
	p1.set(okStream("p1"))
	if got := serve(); got != "p1 [DONE]" || r.Deployments()[0].Breaker != "closed" {
		t.Errorf("after a good probe: %q, breaker %s; want p1, closed", got, r.Deployments()[0].Breaker)
	}
	if n := p1.calls.Load(); n != 2 {
		t.Errorf("p1 called %d times; want 2 (the probe, then normal traffic)", n)
	}

	// A failed probe benches the deployment again, for open_for, on every
	// replica that shares the cooldowns.
	remoteOpen(time.Second)
	clk.Add(time.Second)
	p1.set(func(context.Context) (Stream, error) { return nil, errHTTP500 })
	if got := serve(); got != "p2 [DONE]" || p1.calls.Load() != 3 {
		t.Fatalf("failed probe: %q, p1 called %d times; want one probe, then p2", got, p1.calls.Load())
	}
	if c := cd.Get("p1/m"); c.Reason != CooldownBreakerOpen || !c.Until.Equal(clk.Now().Add(5*time.Second)) {
		t.Errorf("after a failed probe the shared cooldown = %+v; want breaker_open for open_for (5s)", c)
	}
	if got := serve(); got != "p2 [DONE]" || p1.calls.Load() != 3 {
		t.Errorf("after a failed probe: %q, p1 called %d times; want p2 and no new call", got, p1.calls.Load())
	}
	clk.Add(5 * time.Second)
	p1.set(okStream("p1"))
	if got := serve(); got != "p1 [DONE]" {
		t.Errorf("after the fresh cooldown the probe = %q; want p1", got)
	}
}

// TestRemoteProbeIgnoresOwnBreaker: the replica whose breaker opened does
// not also probe for its own cooldown; its breaker's half-open state does.
func TestRemoteProbeIgnoresOwnBreaker(t *testing.T) {
	cd := NewMemoryCooldowns()
	p1 := &gateProvider{chat: func(context.Context) (Stream, error) { return nil, errHTTP500 }}
	p2 := &gateProvider{chat: okStream("p2")}
	r, _ := New(Options{Cooldowns: cd, Strategy: StrategyPriority, MaxAttempts: 2,
		Breaker: BreakerSettings{MinRequests: 1, OpenFor: 50 * time.Millisecond, HalfOpenProbes: 1},
		Routes:  []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m", Client: p1}, {Provider: "p2", Model: "m", Client: p2}}}}})
	serveText(t, r, &ChatRequest{Model: "chat"}) // p1 fails: its breaker opens
	if c := cd.Get("p1/m"); c.Reason != CooldownBreakerOpen {
		t.Fatalf("cooldown = %+v; want breaker_open", c)
	}
	p1.set(okStream("p1"))
	time.Sleep(time.Until(cd.Get("p1/m").Until) + 10*time.Millisecond)
	if got, _ := serveText(t, r, &ChatRequest{Model: "chat"}); got != "p1 [DONE]" {
		t.Fatalf("probe after open_for = %q; want p1", got)
	}
	// Closed at once: the expired cooldown was this replica's own, so it
	// does not call for a second, remote-style probe.
	if st := r.Deployments()[0].Breaker; st != "closed" {
		t.Errorf("breaker after its own probe = %s; want closed", st)
	}
}

// TestRemoteBreakerReported: while another replica's breaker_open
// cooldown benches a deployment, Deployments (and so /admin/deployments
// and llmproxy_breaker_state) reports it open and remote, though the
// local breaker is closed; once the cooldown ends it is half-open.
func TestRemoteBreakerReported(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	cd := NewMemoryCooldowns()
	p := &gateProvider{chat: okStream("p1")}
	r, _ := New(Options{Now: clk.Now, Cooldowns: cd, Breaker: BreakerSettings{OpenFor: 5 * time.Second, HalfOpenProbes: 1},
		Routes: []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m", Client: p}}}}})
	check := func(when, breaker string, state BreakerState, remote bool) {
		t.Helper()
		d := r.Deployments()[0]
		if d.Breaker != breaker || d.BreakerState != state || d.BreakerRemote != remote {
			t.Errorf("%s: breaker %q (%d), remote %v; want %q (%d), remote %v", when, d.Breaker, d.BreakerState, d.BreakerRemote, breaker, state, remote)
		}
	}
	check("no cooldown", "closed", BreakerClosed, false)
	cd.Set(context.Background(), "p1/m", Cooldown{Until: clk.Now().Add(time.Second), Reason: CooldownBreakerOpen})
	check("another replica's breaker open", "open", BreakerOpen, true)
	clk.Add(time.Second)
	check("after its cooldown", "half-open", BreakerHalfOpen, true)
}
