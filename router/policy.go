package router

import (
	"math"
	"slices"
	"time"
)

// Strategy names how an alias orders its deployments. Priority tiers
// (Deployment.Priority, lower first) apply under every strategy; the
// strategy orders deployments within a tier.
type Strategy string

// The strategies router.strategy and a model's strategy: may name.
const (
	// StrategyWeighted shuffles by weight: a deployment of weight 3 goes
	// first three times as often as one of weight 1. The default.
	StrategyWeighted Strategy = "weighted"
	// StrategyPriority keeps the configured order within a tier.
	StrategyPriority Strategy = "priority"
	// StrategyLeastLatency prefers the lowest EWMA time to first token;
	// deployments with no sample yet go first so they get one.
	StrategyLeastLatency Strategy = "least_latency"
	// StrategyLeastInflight prefers the fewest requests in flight.
	StrategyLeastInflight Strategy = "least_inflight"
	// StrategyCost prefers the cheapest estimate by the price table;
	// unpriced deployments go last.
	StrategyCost Strategy = "cost"
)

// BreakerState is a deployment's circuit state, numbered as the
// llmproxy_breaker_state gauge reports it.
type BreakerState int

// The breaker states.
const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

// String returns "closed", "half-open" or "open".
func (s BreakerState) String() string {
	switch s {
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "closed"
}

// Health is what Plan knows about one deployment at one instant.
type Health struct {
	Breaker BreakerState
	// Reopen is when an open breaker admits a probe again; zero when it
	// is not open or the time is not known here.
	Reopen time.Time
	// Cooldown is set while the deployment must not be called (an upstream
	// 429, or a breaker opened on this or another replica).
	Cooldown Cooldown
	// Inflight counts requests this replica has open on the deployment.
	Inflight int
	// Latency is the EWMA of time to first token; 0 before any sample.
	Latency time.Duration
	// RPM and TPM are the deployment's limits (0: none); RPMLeft and
	// TPMLeft are what its limiters would grant now.
	RPM, TPM         int
	RPMLeft, TPMLeft float64
}

// PriceFunc prices a deployment of an alias in USD per million tokens;
// ok is false when it has no price.
type PriceFunc func(alias, provider, model string) (inPerMTok, outPerMTok float64, ok bool)

// PlanInput is everything Plan decides on. Plan reads nothing else, so
// the same input always gives the same order.
type PlanInput struct {
	// Alias is the model the client asked for.
	Alias string
	// Route looks an alias up; nil means unknown.
	Route func(alias string) *Route
	// Health reports a deployment's state; nil means all healthy.
	Health func(d *Deployment) Health
	// Strategy applies to aliases that set none. Empty means weighted.
	Strategy Strategy
	// PromptTokens and MaxTokens size the request: context-window checks,
	// TPM limits and the cost estimate use them.
	PromptTokens, MaxTokens int
	// Allowed reports whether the caller may use a fallback alias; nil
	// allows all. The requested alias was checked before routing.
	Allowed func(alias string) bool
	// Price prices deployments for the cost strategy and explain.
	Price PriceFunc
	// Now is the instant health is judged at.
	Now time.Time
	// Seed drives the weighted shuffle; one request keeps one seed so
	// re-planning after a failure keeps the order.
	Seed uint64
	// Overflow marks aliases whose upstream answered
	// context_length_exceeded during this request.
	Overflow map[string]bool
}

// Skip says why a candidate is not eligible.
type Skip int

// The skip reasons. SkipNone marks an eligible candidate.
const (
	SkipNone Skip = iota
	SkipBreakerOpen
	SkipCooldown
	SkipRPM
	SkipTPM
	SkipContextWindow
	SkipNotAllowed
	SkipUnknownAlias
	// SkipNoEmbeddings marks a chat-only deployment in an embeddings plan.
	SkipNoEmbeddings
	// SkipNotConfigured marks a deployment whose provider failed this
	// request with ErrNotConfigured: calling it again cannot help.
	SkipNotConfigured
	// SkipNoRerank marks a deployment whose provider cannot rerank in a
	// rerank plan.
	SkipNoRerank
)

// Candidate is one deployment in a plan, eligible or not.
type Candidate struct {
	// Alias is the alias the deployment serves; FallbackFrom is the alias
	// whose failure or size led here ("" for the requested alias).
	Alias, FallbackFrom string
	// Deployment is nil only for SkipUnknownAlias and SkipNotAllowed.
	Deployment *Deployment
	Skip       Skip
	Strategy   Strategy
	Health     Health
	// Cost is the estimated USD of the request; Priced is false when the
	// price table has no entry.
	Cost   float64
	Priced bool
	// Need is the request's token estimate (prompt plus completion cap);
	// Window is the alias's context window.
	Need, Window int
	// TotalWeight is the weight of the alias's deployments together.
	TotalWeight int
	key         float64
}

// Eligible reports whether the router may call the candidate now.
func (c *Candidate) Eligible() bool { return c.Skip == SkipNone }

// Plan is the routing policy: the candidates for in.Alias in the order the
// router tries them, alias by alias (the requested alias, then its
// context-window fallbacks when the request does not fit, then its
// fallbacks, depth first). Ineligible candidates stay in the list, after
// the eligible ones of their alias, so explain can say why.
func Plan(in PlanInput) []Candidate {
	// Sized for the requested alias's deployments plus one candidate per
	// fallback alias: a Candidate is some 200 bytes and Plan runs for
	// every request, so a fixed 8 was most of the router's garbage
	// (issue 15); a longer plan grows as it needs.
	n := 1
	if rt := in.Route(in.Alias); rt != nil {
		n = len(rt.Deployments) + len(rt.Fallbacks) + len(rt.ContextWindowFallbacks)
	}
	out := make([]Candidate, 0, n)
	var seen [8]string
	visited := seen[:0]
	var walk func(alias, from string)
	walk = func(alias, from string) {
		if slices.Contains(visited, alias) {
			return
		}
		visited = append(visited, alias)
		rt := in.Route(alias)
		switch {
		case rt == nil:
			out = append(out, Candidate{Alias: alias, FallbackFrom: from, Skip: SkipUnknownAlias})
			return
		case from != "" && in.Allowed != nil && !in.Allowed(alias):
			out = append(out, Candidate{Alias: alias, FallbackFrom: from, Skip: SkipNotAllowed})
			return
		}
		need := in.PromptTokens + in.MaxTokens
		if in.Overflow[alias] || (rt.ContextWindow > 0 && need > rt.ContextWindow) {
			out = appendOrdered(out, rt, from, in, SkipContextWindow)
			for _, a := range rt.ContextWindowFallbacks {
				walk(a, alias)
			}
		} else {
			out = appendOrdered(out, rt, from, in, SkipNone)
		}
		for _, a := range rt.Fallbacks {
			walk(a, alias)
		}
	}
	walk(in.Alias, "")
	return out
}

// appendOrdered appends rt's deployments in strategy order, eligible
// first. force, when set, skips them all for that reason.
func appendOrdered(out []Candidate, rt *Route, from string, in PlanInput, force Skip) []Candidate {
	strategy := rt.Strategy
	if strategy == "" {
		strategy = in.Strategy
	}
	if strategy == "" {
		strategy = StrategyWeighted
	}
	total := 0
	for i := range rt.Deployments {
		total += rt.Deployments[i].weight()
	}
	start := len(out)
	need := in.PromptTokens + in.MaxTokens
	for i := range rt.Deployments {
		d := &rt.Deployments[i]
		c := Candidate{Alias: rt.Alias, FallbackFrom: from, Deployment: d, Strategy: strategy,
			Need: need, Window: rt.ContextWindow, TotalWeight: total}
		if in.Health != nil {
			c.Health = in.Health(d)
		}
		if in.Price != nil {
			if pin, pout, ok := in.Price(rt.Alias, d.Provider, d.Model); ok {
				c.Cost, c.Priced = (float64(in.PromptTokens)*pin+float64(in.MaxTokens)*pout)/1e6, true
			}
		}
		c.Skip = force
		if c.Skip == SkipNone {
			c.Skip = skipFor(&c.Health, in.Now, need)
		}
		c.key = sortKey(&c, strategy, in.Seed, i)
		out = append(out, c)
	}
	group := out[start:]
	slices.SortStableFunc(group, func(a, b Candidate) int {
		switch {
		case a.Eligible() != b.Eligible():
			if a.Eligible() {
				return -1
			}
			return 1
		case a.Deployment.Priority != b.Deployment.Priority:
			return a.Deployment.Priority - b.Deployment.Priority
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	return out
}

// skipFor judges one deployment's health for a request of need tokens.
func skipFor(h *Health, now time.Time, need int) Skip {
	switch {
	case h.Breaker == BreakerOpen:
		return SkipBreakerOpen
	case now.Before(h.Cooldown.Until):
		return SkipCooldown
	case h.RPM > 0 && h.RPMLeft < 1:
		return SkipRPM
	case h.TPM > 0 && h.TPMLeft < float64(max(need, 1)):
		return SkipTPM
	}
	return SkipNone
}

// sortKey is the candidate's place within its priority tier: lower first.
func sortKey(c *Candidate, s Strategy, seed uint64, i int) float64 {
	switch s {
	case StrategyPriority:
		return float64(i)
	case StrategyLeastLatency:
		return float64(c.Health.Latency)
	case StrategyLeastInflight:
		// Ties broken by weight, so equal load still honours the weights.
		return float64(c.Health.Inflight) + weightedKey(seed, i, c.Deployment.weight())/1e6
	case StrategyCost:
		if !c.Priced {
			return math.Inf(1)
		}
		return c.Cost
	}
	return weightedKey(seed, i, c.Deployment.weight())
}

// weightedKey is an exponential race (Efraimidis–Spirakis): sorting by
// -ln(u)/w puts deployment i first with probability w_i / Σw.
func weightedKey(seed uint64, i, w int) float64 {
	x := splitmix64(seed + uint64(i)*0x9e3779b97f4a7c15)
	u := (float64(x>>11) + 0.5) / (1 << 53) // in (0, 1)
	return -math.Log(u) / float64(w)
}

// splitmix64 is a fast, well-mixed hash of x.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
