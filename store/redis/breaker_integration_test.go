//go:build integration

package redis

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"llmproxy/router"
)

// switchProvider answers with whatever behaviour was set last; it is safe
// for concurrent calls.
type switchProvider struct {
	mu    sync.Mutex
	chat  func() (router.Stream, error)
	calls atomic.Int64
}

func (p *switchProvider) Chat(context.Context, *router.ChatRequest) (router.Stream, error) {
	p.calls.Add(1)
	p.mu.Lock()
	f := p.chat
	p.mu.Unlock()
	return f()
}

func (p *switchProvider) set(f func() (router.Stream, error)) {
	p.mu.Lock()
	p.chat = f
	p.mu.Unlock()
}

func answerOK() (router.Stream, error) { return &oneChunk{}, nil }

func answer500() (router.Stream, error) {
	return nil, &router.Error{Kind: router.KindUpstream, Message: "failed upstream (HTTP 500)"}
}

// TestRemoteBreakerProbe: replica A's breaker opens and B skips the
// deployment until the shared breaker_open cooldown ends; then B's first
// request is a half-open probe while the others go elsewhere. A failed
// probe benches the deployment on both replicas again; a good one closes
// it on B.
func TestRemoteBreakerProbe(t *testing.T) {
	url, prefix := mustRedis(t)
	a, b := replica(t, url, prefix), replica(t, url, prefix)
	flaky := &switchProvider{chat: answer500}
	ok := &countingProvider{}
	newRouter := func(cd router.Cooldowns) *router.Router {
		r, err := router.New(router.Options{Cooldowns: cd, Strategy: router.StrategyPriority, MaxAttempts: 2,
			Breaker: router.BreakerSettings{FailureRatio: 0.5, MinRequests: 2, Window: time.Minute, OpenFor: 400 * time.Millisecond, HalfOpenProbes: 1},
			Routes: []router.Route{{Alias: "chat",
				Deployments: []router.Deployment{{Provider: "p1", Model: "m", Client: flaky}, {Provider: "p2", Model: "m", Client: ok}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ra, rb := newRouter(a), newRouter(b)
	serve := func(r *router.Router) {
		t.Helper()
		s, err := r.Serve(context.Background(), &router.ChatRequest{Model: "chat"})
		if err != nil {
			t.Errorf("Serve: %v", err)
			return
		}
		defer s.Close()
		for { // to the end: a stream closed early says nothing to a breaker
			if _, err := s.Next(); err != nil {
				return
			}
		}
	}
	open := func(cd *Cooldowns, after time.Time) bool {
		c := cd.Get("p1/m")
		return c.Reason == router.CooldownBreakerOpen && c.Until.After(after) && time.Now().Before(c.Until)
	}

	serve(ra)
	serve(ra) // two failures of two: A's breaker opens and is published
	if !eventually(time.Second, func() bool { return open(b, time.Time{}) }) {
		t.Fatalf("replica B never learned the open breaker: %+v", b.Get("p1/m"))
	}
	for range 3 {
		serve(rb)
	}
	if n := flaky.calls.Load(); n != 2 {
		t.Fatalf("deployment called %d times; want 2 (B skips it while A's breaker is open)", n)
	}

	// The cooldown ends; B's first request probes, fails, and benches the
	// deployment everywhere for another open_for.
	first := b.Get("p1/m").Until
	time.Sleep(time.Until(first) + 20*time.Millisecond)
	serve(rb)
	if n := flaky.calls.Load(); n != 3 {
		t.Fatalf("after the cooldown the deployment was called %d times in all; want 3 (one probe)", n)
	}
	if !eventually(time.Second, func() bool { return open(a, first) && open(b, first) }) {
		t.Fatalf("a failed probe did not re-open the breaker on both replicas: A %+v, B %+v", a.Get("p1/m"), b.Get("p1/m"))
	}
	serve(rb)
	if n := flaky.calls.Load(); n != 3 {
		t.Errorf("after a failed probe the deployment was called %d times in all; want still 3", n)
	}

	// The next probe is held in flight: B sends other requests elsewhere
	// until it answers, then routes to the deployment again.
	time.Sleep(time.Until(b.Get("p1/m").Until) + 20*time.Millisecond)
	entered, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	flaky.set(func() (router.Stream, error) {
		if held.CompareAndSwap(false, true) { // the probe
			close(entered)
			<-release
		}
		return answerOK()
	})
	done := make(chan struct{})
	go func() { defer close(done); serve(rb) }()
	select {
	case <-entered:
	case <-time.After(2 * time.Second):
		t.Fatal("the probe never reached the deployment")
	}
	before := ok.calls.Load()
	serve(rb)
	if n, m := flaky.calls.Load(), ok.calls.Load(); n != 4 || m != before+1 {
		t.Errorf("during the probe: deployment called %d times in all, the other %d more; want 4 and 1", n, m-before)
	}
	close(release)
	<-done
	serve(rb)
	if n := flaky.calls.Load(); n != 5 {
		t.Errorf("after a good probe the deployment was called %d times in all; want 5 (traffic is back)", n)
	}
	if st := rb.Deployments()[0].Breaker; st != "closed" {
		t.Errorf("B's breaker after a good probe = %s; want closed", st)
	}
}
