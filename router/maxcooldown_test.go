package router

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestMaxCooldown is issue 16's "Retry-After: 99999999": the router honours
// at most MaxCooldown, in the cooldown it records, in a shared cooldown it
// reads, and in the Retry-After the client gets.
func TestMaxCooldown(t *testing.T) {
	const maxCD = time.Minute
	huge := 99999999 * time.Second
	limited := &Error{Kind: KindUpstreamRateLimited, Message: "rate limited", RetryAfter: huge}

	t.Run("upstream 429", func(t *testing.T) {
		cd := NewMemoryCooldowns()
		r, err := New(Options{MaxCooldown: maxCD, MaxAttempts: 1, Cooldowns: cd,
			Routes: []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m", Client: &fakeProvider{chat: fails(limited)}}}}}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = r.Serve(context.Background(), &ChatRequest{Model: "chat"})
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindUpstreamRateLimited || e.RetryAfter > maxCD {
			t.Fatalf("Serve() = %v (RetryAfter %v); want a 429 with RetryAfter <= %v", err, e.RetryAfter, maxCD)
		}
		if until := cd.Get("p1/m").Until; until.After(start.Add(maxCD + time.Second)) {
			t.Errorf("cooldown until %v; want at most %v from now", until.Sub(start), maxCD)
		}
	})

	t.Run("shared cooldown from another replica", func(t *testing.T) {
		cd := NewMemoryCooldowns()
		_ = cd.Set(context.Background(), "p1/m", Cooldown{Until: time.Now().Add(huge), Reason: CooldownRateLimited})
		p := &fakeProvider{chat: answers()}
		r, err := New(Options{MaxCooldown: maxCD, Cooldowns: cd,
			Routes: []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m", Client: p}}}}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Serve(context.Background(), &ChatRequest{Model: "chat"})
		var e *Error
		if !errors.As(err, &e) || e.RetryAfter <= 0 || e.RetryAfter > maxCD+time.Second {
			t.Fatalf("Serve() = %v (RetryAfter %v); want a refusal with RetryAfter <= %v", err, e.RetryAfter, maxCD)
		}
	})
}
