package router

import (
	"context"
	"sync"
	"time"
)

// Cooldown is a period in which a deployment must not be called.
type Cooldown struct {
	// Until is when the cooldown ends; the zero time means none.
	Until time.Time `json:"until"`
	// Reason is CooldownRateLimited or CooldownBreakerOpen.
	Reason string `json:"reason"`
}

// The cooldown reasons the router sets.
const (
	// CooldownRateLimited follows an upstream 429, for its Retry-After.
	CooldownRateLimited = "rate_limited"
	// CooldownBreakerOpen mirrors an open breaker, so replicas that share
	// Cooldowns stop calling the deployment too. When it ends, a replica
	// whose own breaker did not open treats the deployment as half-open:
	// its first half_open_probes requests probe it, a failed probe
	// publishes a fresh breaker_open cooldown and a good one closes it
	// (see remoteProbe in remote.go for the whole contract).
	CooldownBreakerOpen = "breaker_open"
	// CooldownProbe follows a failed active health probe.
	CooldownProbe = "probe_failed"
)

// Cooldowns stores cooldowns by deployment ID (Deployment.ID). Get is on
// the hot path and must not block on a network; Set may. An in-process
// MemoryCooldowns serves one replica; store/redis shares them.
type Cooldowns interface {
	Get(deployment string) Cooldown
	Set(ctx context.Context, deployment string, c Cooldown) error
}

// MemoryCooldowns is an in-process Cooldowns.
type MemoryCooldowns struct {
	mu sync.RWMutex
	m  map[string]Cooldown
}

var _ Cooldowns = (*MemoryCooldowns)(nil)

// NewMemoryCooldowns returns an empty MemoryCooldowns.
func NewMemoryCooldowns() *MemoryCooldowns { return &MemoryCooldowns{m: map[string]Cooldown{}} }

// Get returns the deployment's cooldown; an expired one is returned too,
// and callers compare Until with their clock.
func (m *MemoryCooldowns) Get(deployment string) Cooldown {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.m[deployment]
}

// Set records c; a zero Until clears the cooldown.
func (m *MemoryCooldowns) Set(_ context.Context, deployment string, c Cooldown) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.Until.IsZero() {
		delete(m.m, deployment)
		return nil
	}
	m.m[deployment] = c
	return nil
}

// cappedCooldowns caps what a rate_limited cooldown read from the store
// can bench: one another replica wrote from an uncapped Retry-After (an
// older version, or a tampered store) ends at most max from now. Breaker
// and probe cooldowns follow the operator's own settings and pass as they
// are.
type cappedCooldowns struct {
	Cooldowns
	max time.Duration
	now func() time.Time
}

func (c cappedCooldowns) Get(deployment string) Cooldown {
	cd := c.Cooldowns.Get(deployment)
	if cd.Reason == CooldownRateLimited {
		if limit := c.now().Add(c.max); cd.Until.After(limit) {
			cd.Until = limit
		}
	}
	return cd
}
