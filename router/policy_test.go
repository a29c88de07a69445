package router

import (
	"strings"
	"testing"
	"time"
)

// planRoutes is the route table the policy tests plan against.
func planRoutes() map[string]*Route {
	p := &fakeProvider{chat: answers()}
	return map[string]*Route{
		"gpt-4o": {Alias: "gpt-4o", ContextWindow: 1000,
			Deployments: []Deployment{
				{Provider: "openai", Model: "gpt-4o", Client: p, Weight: 3, RPM: 10, TPM: 5000},
				{Provider: "backup", Model: "gpt-4o", Client: p, Weight: 1, Priority: 1},
				{Provider: "azure", Model: "gpt-4o", Client: p, Weight: 1},
			},
			Fallbacks: []string{"claude"}, ContextWindowFallbacks: []string{"gpt-4.1"}},
		"claude":  {Alias: "claude", Deployments: []Deployment{{Provider: "anthropic", Model: "sonnet", Client: p}}, Fallbacks: []string{"gpt-4o"}},
		"gpt-4.1": {Alias: "gpt-4.1", ContextWindow: 100000, Deployments: []Deployment{{Provider: "openai", Model: "gpt-4.1", Client: p}}},
		"secret":  {Alias: "secret", Deployments: []Deployment{{Provider: "openai", Model: "o3", Client: p}}},
	}
}

// order renders a plan as "alias:deployment" for eligible candidates and
// "alias:deployment!skip" for the rest.
func order(plan []Candidate) string {
	var b []string
	for _, c := range plan {
		s := c.Alias
		if c.Deployment != nil {
			s += ":" + c.Deployment.ID()
		}
		if !c.Eligible() {
			s += "!" + c.SkipText()[:min(len(c.SkipText()), 12)]
		}
		b = append(b, s)
	}
	return strings.Join(b, " ")
}

func TestPlan(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	routes := planRoutes()
	healthy := func(d *Deployment) Health {
		return Health{RPM: d.RPM, TPM: d.TPM, RPMLeft: float64(d.RPM), TPMLeft: float64(d.TPM)}
	}
	with := func(id string, f func(*Health)) func(d *Deployment) Health {
		return func(d *Deployment) Health {
			h := healthy(d)
			if d.ID() == id {
				f(&h)
			}
			return h
		}
	}
	price := func(alias, provider, model string) (float64, float64, bool) {
		switch provider {
		case "openai":
			return 5, 15, true
		case "azure":
			return 2, 8, true
		}
		return 0, 0, false
	}
	tests := []struct {
		name     string
		in       PlanInput
		want     string
		wantSkip string // a fragment of some candidate's SkipText
	}{
		{name: "priority keeps config order, tier 1 last",
			in:   PlanInput{Strategy: StrategyPriority},
			want: "gpt-4o:openai/gpt-4o gpt-4o:azure/gpt-4o gpt-4o:backup/gpt-4o claude:anthropic/sonnet"},
		{name: "breaker open is skipped after the eligible",
			in:   PlanInput{Strategy: StrategyPriority, Health: with("openai/gpt-4o", func(h *Health) { h.Breaker = BreakerOpen })},
			want: "gpt-4o:azure/gpt-4o gpt-4o:backup/gpt-4o gpt-4o:openai/gpt-4o!breaker open claude:anthropic/sonnet"},
		{name: "cooldown until a later instant is skipped",
			in: PlanInput{Strategy: StrategyPriority, Health: with("azure/gpt-4o", func(h *Health) {
				h.Cooldown = Cooldown{Until: now.Add(2 * time.Second), Reason: CooldownRateLimited}
			})},
			want:     "gpt-4o:openai/gpt-4o gpt-4o:backup/gpt-4o gpt-4o:azure/gpt-4o!cooldown (ra claude:anthropic/sonnet",
			wantSkip: "cooldown (rate_limited) until 2025-01-01T00:00:02Z"},
		{name: "expired cooldown is ignored",
			in: PlanInput{Strategy: StrategyPriority, Health: with("azure/gpt-4o", func(h *Health) {
				h.Cooldown = Cooldown{Until: now.Add(-time.Second), Reason: CooldownRateLimited}
			})},
			want: "gpt-4o:openai/gpt-4o gpt-4o:azure/gpt-4o gpt-4o:backup/gpt-4o claude:anthropic/sonnet"},
		{name: "over rpm",
			in:   PlanInput{Strategy: StrategyPriority, Health: with("openai/gpt-4o", func(h *Health) { h.RPMLeft = 0.5 })},
			want: "gpt-4o:azure/gpt-4o gpt-4o:backup/gpt-4o gpt-4o:openai/gpt-4o!over rpm: 10 claude:anthropic/sonnet"},
		{name: "over tpm for a big request",
			in:   PlanInput{Strategy: StrategyPriority, PromptTokens: 600, MaxTokens: 300, Health: with("openai/gpt-4o", func(h *Health) { h.TPMLeft = 800 })},
			want: "gpt-4o:azure/gpt-4o gpt-4o:backup/gpt-4o gpt-4o:openai/gpt-4o!over tpm: ne claude:anthropic/sonnet"},
		{name: "too big for the window goes to the context-window fallback first",
			in:       PlanInput{Strategy: StrategyPriority, PromptTokens: 900, MaxTokens: 200},
			want:     "gpt-4o:openai/gpt-4o!context wind gpt-4o:azure/gpt-4o!context wind gpt-4o:backup/gpt-4o!context wind gpt-4.1:openai/gpt-4.1 claude:anthropic/sonnet",
			wantSkip: "needs 1100 tokens, window 1000"},
		{name: "upstream overflow marks the alias",
			in:   PlanInput{Strategy: StrategyPriority, Overflow: map[string]bool{"gpt-4o": true}},
			want: "gpt-4o:openai/gpt-4o!context wind gpt-4o:azure/gpt-4o!context wind gpt-4o:backup/gpt-4o!context wind gpt-4.1:openai/gpt-4.1 claude:anthropic/sonnet"},
		{name: "fallback not allowed for the team",
			in:       PlanInput{Strategy: StrategyPriority, Allowed: func(a string) bool { return a == "gpt-4o" }},
			want:     "gpt-4o:openai/gpt-4o gpt-4o:azure/gpt-4o gpt-4o:backup/gpt-4o claude!not allowed ",
			wantSkip: "not allowed for the team"},
		{name: "least latency prefers the unsampled, then the fastest",
			in: PlanInput{Strategy: StrategyLeastLatency, Health: func(d *Deployment) Health {
				return map[string]Health{"openai/gpt-4o": {Latency: 300 * time.Millisecond}, "azure/gpt-4o": {Latency: 100 * time.Millisecond}}[d.ID()]
			}},
			want: "gpt-4o:azure/gpt-4o gpt-4o:openai/gpt-4o gpt-4o:backup/gpt-4o claude:anthropic/sonnet"},
		{name: "least inflight",
			in: PlanInput{Strategy: StrategyLeastInflight, Health: func(d *Deployment) Health {
				return map[string]Health{"openai/gpt-4o": {Inflight: 4}, "azure/gpt-4o": {Inflight: 1}}[d.ID()]
			}},
			want: "gpt-4o:azure/gpt-4o gpt-4o:openai/gpt-4o gpt-4o:backup/gpt-4o claude:anthropic/sonnet"},
		{name: "cost: cheapest priced first, unpriced last in the tier",
			in:   PlanInput{Strategy: StrategyCost, Price: price, PromptTokens: 100, MaxTokens: 100},
			want: "gpt-4o:azure/gpt-4o gpt-4o:openai/gpt-4o gpt-4o:backup/gpt-4o claude:anthropic/sonnet"},
		{name: "per-alias strategy overrides the default",
			in:   PlanInput{Alias: "gpt-4.1", Strategy: StrategyCost},
			want: "gpt-4.1:openai/gpt-4.1"},
		{name: "fallback cycle is walked once",
			in:   PlanInput{Alias: "claude", Strategy: StrategyPriority},
			want: "claude:anthropic/sonnet gpt-4o:openai/gpt-4o gpt-4o:azure/gpt-4o gpt-4o:backup/gpt-4o"},
		{name: "unknown fallback alias",
			in:   PlanInput{Alias: "nope"},
			want: "nope!unknown alia"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.Alias == "" {
				in.Alias = "gpt-4o"
			}
			in.Route = func(a string) *Route { return routes[a] }
			in.Now = now
			if in.Health == nil {
				in.Health = healthy
			}
			plan := Plan(in)
			if got := order(plan); got != tc.want {
				t.Errorf("Plan(%s) =\n  %s\nwant\n  %s", in.Alias, got, tc.want)
			}
			if tc.wantSkip != "" {
				found := false
				for _, c := range plan {
					found = found || strings.Contains(c.SkipText(), tc.wantSkip)
				}
				if !found {
					t.Errorf("Plan(%s): no candidate skipped with %q", in.Alias, tc.wantSkip)
				}
			}
		})
	}
}

// TestPlanWeighted checks that the weighted shuffle leads with each
// deployment in proportion to its weight.
func TestPlanWeighted(t *testing.T) {
	routes := planRoutes()
	first := map[string]int{}
	const n = 20000
	for seed := uint64(0); seed < n; seed++ {
		plan := Plan(PlanInput{Alias: "gpt-4o", Route: func(a string) *Route { return routes[a] }, Seed: seed * 7919,
			Health: func(d *Deployment) Health { return Health{} }})
		first[plan[0].Deployment.ID()]++
	}
	// Tier 0 holds openai (weight 3) and azure (weight 1): 75% / 25%.
	if got := float64(first["openai/gpt-4o"]) / n; got < 0.72 || got > 0.78 {
		t.Errorf("weighted: openai first in %.3f of plans; want about 0.75", got)
	}
	if first["backup/gpt-4o"] != 0 {
		t.Errorf("weighted: priority-1 backup led %d plans; want 0", first["backup/gpt-4o"])
	}
}

func TestCandidateReason(t *testing.T) {
	routes := planRoutes()
	plan := Plan(PlanInput{Alias: "gpt-4o", Route: func(a string) *Route { return routes[a] }, Strategy: StrategyPriority})
	for _, c := range plan {
		if c.Reason() == "" {
			t.Errorf("Reason(%s) is empty", c.Deployment.ID())
		}
	}
	if got := plan[len(plan)-1].Reason(); !strings.Contains(got, "fallback from gpt-4o") {
		t.Errorf("Reason(claude) = %q; want it to name the fallback", got)
	}
}

// BenchmarkPlan measures candidate selection for a three-deployment alias
// with a fallback, as Serve runs it per attempt (health read from live
// deployment state).
func BenchmarkPlan(b *testing.B) {
	p := &fakeProvider{chat: answers()}
	r, err := New(Options{Routes: []Route{
		{Alias: "gpt-4o", Fallbacks: []string{"claude"}, ContextWindow: 128000, Deployments: []Deployment{
			{Provider: "openai", Model: "gpt-4o", Client: p, Weight: 3, RPM: 500, TPM: 300000},
			{Provider: "azure", Model: "gpt-4o", Client: p, Weight: 1},
			{Provider: "backup", Model: "gpt-4o", Client: p, Priority: 1},
		}},
		{Alias: "claude", Deployments: []Deployment{{Provider: "anthropic", Model: "sonnet", Client: p}}},
	}, Tokens: func(string, []byte) int { return 120 }})
	if err != nil {
		b.Fatal(err)
	}
	req := &ChatRequest{Model: "gpt-4o", Body: []byte(`{"model":"gpt-4o","messages":[]}`), MaxTokens: 256}
	b.ReportAllocs()
	for b.Loop() {
		in := r.planInput(b.Context(), req)
		plan := Plan(in)
		if c, _ := pick(plan, nil); c == nil {
			b.Fatal("no candidate")
		}
	}
}
