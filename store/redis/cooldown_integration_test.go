//go:build integration

package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"llmproxy/router"
)

// mustRedis connects to LLMPROXY_TEST_REDIS (default db 15) under a key
// prefix of its own, deleted in cleanup. Without Redis it skips, or fails
// under CI.
func mustRedis(tb testing.TB) (url, prefix string) {
	tb.Helper()
	url = os.Getenv("LLMPROXY_TEST_REDIS")
	if url == "" {
		url = "redis://127.0.0.1:6379/15"
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix = "test-cd-" + hex.EncodeToString(b[:])
	c, err := New(Options{URL: url, Prefix: prefix})
	if err != nil {
		tb.Fatalf("redis.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		c.Close()
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis at %s: %v", url, err)
		}
		tb.Skipf("no redis at %s: %v", url, err)
	}
	tb.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.rdb.Keys(ctx, prefix+":*").Result()
		if len(keys) > 0 {
			c.rdb.Del(ctx, keys...)
		}
		c.Close()
	})
	return url, prefix
}

// replica is one proxy replica's view: its own pool and subscription.
func replica(t *testing.T, url, prefix string) *Cooldowns {
	t.Helper()
	c, err := New(Options{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cd, err := c.Cooldowns(ctx)
	if err != nil {
		t.Fatalf("Cooldowns: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); cd.Run(ctx) }()
	t.Cleanup(func() { cancel(); cd.Close(); <-done; c.Close() })
	return cd
}

func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// TestCooldownsTwoReplicas: a 429 on replica A benches the deployment on
// replica B at once, a replica that starts later still sees it, and the
// cooldown ends on both when it expires.
func TestCooldownsTwoReplicas(t *testing.T) {
	url, prefix := mustRedis(t)
	a, b := replica(t, url, prefix), replica(t, url, prefix)
	limited := &countingProvider{err: &router.Error{Kind: router.KindUpstreamRateLimited, Message: "slow down", RetryAfter: 2 * time.Second}}
	ok := &countingProvider{}
	newRouter := func(cd router.Cooldowns) *router.Router {
		r, err := router.New(router.Options{Cooldowns: cd, Strategy: router.StrategyPriority, Routes: []router.Route{{Alias: "chat",
			Deployments: []router.Deployment{{Provider: "p1", Model: "m", Client: limited}, {Provider: "p2", Model: "m", Client: ok}}}}})
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
			t.Fatalf("Serve: %v", err)
		}
		s.Close()
	}
	serve(ra) // p1 answers 429 with Retry-After: 2s
	if !eventually(time.Second, func() bool { return time.Now().Before(b.Get("p1/m").Until) }) {
		t.Fatalf("replica B never learned the cooldown: %+v", b.Get("p1/m"))
	}
	if ga, gb := a.Get("p1/m"), b.Get("p1/m"); !ga.Until.Equal(gb.Until) || gb.Reason != router.CooldownRateLimited {
		t.Errorf("replicas disagree: A %+v, B %+v", ga, gb)
	}
	for range 5 {
		serve(rb)
	}
	if n := limited.calls.Load(); n != 1 {
		t.Errorf("rate-limited deployment called %d times across replicas; want 1", n)
	}
	late := replica(t, url, prefix)
	if got := late.Get("p1/m"); got.Reason != router.CooldownRateLimited {
		t.Errorf("a replica started later sees %+v; want the rate_limited cooldown", got)
	}
	time.Sleep(time.Until(b.Get("p1/m").Until) + 50*time.Millisecond)
	serve(rb)
	if n := limited.calls.Load(); n != 2 {
		t.Errorf("after the cooldown the deployment was called %d times in all; want 2", n)
	}
}
