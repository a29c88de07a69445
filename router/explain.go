package router

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// SkipText says in words why the candidate is skipped ("" when eligible).
func (c *Candidate) SkipText() string {
	h := &c.Health
	switch c.Skip {
	case SkipBreakerOpen:
		return "breaker open"
	case SkipCooldown:
		return fmt.Sprintf("cooldown (%s) until %s", h.Cooldown.Reason, h.Cooldown.Until.UTC().Format(time.RFC3339Nano))
	case SkipRPM:
		return fmt.Sprintf("over rpm: %d per minute, %.0f left", h.RPM, h.RPMLeft)
	case SkipTPM:
		return fmt.Sprintf("over tpm: needs %d tokens, %.0f of %d left", c.Need, h.TPMLeft, h.TPM)
	case SkipContextWindow:
		if c.Window > 0 && c.Need > c.Window {
			return fmt.Sprintf("context window too small: needs %d tokens, window %d", c.Need, c.Window)
		}
		return "context window too small: the upstream answered context_length_exceeded"
	case SkipNotAllowed:
		return "not allowed for the team"
	case SkipUnknownAlias:
		return "unknown alias"
	case SkipNoEmbeddings:
		return "does not support embeddings"
	case SkipNoRerank:
		return "does not support rerank"
	case SkipNotConfigured:
		return "provider not configured (no API key)"
	}
	return ""
}

// Reason says in words why an eligible candidate sits where it does.
func (c *Candidate) Reason() string {
	if !c.Eligible() {
		return c.SkipText()
	}
	var why string
	d := c.Deployment
	switch c.Strategy {
	case StrategyPriority:
		why = "priority order"
	case StrategyLeastLatency:
		if c.Health.Latency == 0 {
			why = "least_latency: no sample yet"
		} else {
			why = "least_latency: ewma ttft " + c.Health.Latency.Round(time.Millisecond).String()
		}
	case StrategyLeastInflight:
		why = "least_inflight: " + strconv.Itoa(c.Health.Inflight) + " in flight"
	case StrategyCost:
		if c.Priced {
			why = "cost: est. $" + strconv.FormatFloat(c.Cost, 'f', 6, 64)
		} else {
			why = "cost: unpriced, last"
		}
	default:
		why = fmt.Sprintf("weighted: weight %d of %d", d.weight(), c.TotalWeight)
	}
	if d.Priority != 0 {
		why = "priority " + strconv.Itoa(d.Priority) + ", " + why
	}
	if c.FallbackFrom != "" {
		why = "fallback from " + c.FallbackFrom + ", " + why
	}
	if c.Health.Breaker == BreakerHalfOpen {
		why += " (breaker half-open: probe)"
	}
	return why
}

// Explained is one candidate as POST /v1/route/explain reports it.
type Explained struct {
	Alias        string   `json:"alias"`
	Provider     string   `json:"provider,omitempty"`
	Model        string   `json:"model,omitempty"`
	Deployment   string   `json:"deployment,omitempty"`
	FallbackFrom string   `json:"fallback_from,omitempty"`
	Chosen       bool     `json:"chosen"`
	Rank         int      `json:"rank,omitempty"`
	Reason       string   `json:"reason"`
	Breaker      string   `json:"breaker,omitempty"`
	EstCostUSD   *float64 `json:"estimated_cost_usd,omitempty"`
}

// Explain plans req as Serve would, without calling any upstream. Eligible
// candidates are ranked from 1 in the order Serve tries them; the first
// is Chosen.
func (r *Router) Explain(ctx context.Context, req *ChatRequest) ([]Explained, error) {
	if _, ok := r.routes[req.Model]; !ok {
		return nil, modelNotFound(req.Model)
	}
	plan := Plan(r.planInput(ctx, req))
	out := make([]Explained, 0, len(plan))
	rank := 0
	for i := range plan {
		c := &plan[i]
		e := Explained{Alias: c.Alias, FallbackFrom: c.FallbackFrom, Reason: c.Reason()}
		if d := c.Deployment; d != nil {
			e.Provider, e.Model, e.Deployment, e.Breaker = d.Provider, d.Model, d.ID(), c.Health.Breaker.String()
		}
		if c.Priced {
			cost := c.Cost
			e.EstCostUSD = &cost
		}
		if c.Eligible() {
			rank++
			e.Rank, e.Chosen = rank, rank == 1
		}
		out = append(out, e)
	}
	return out, nil
}

// DeploymentStatus is one deployment as GET /admin/deployments shows it.
type DeploymentStatus struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
	Model    string `json:"model"`
	// Breaker is closed, half-open or open. A deployment that another
	// replica's breaker benched (a breaker_open cooldown shared through
	// Redis) reports open here too, though this replica's own breaker is
	// closed, with BreakerRemote set.
	Breaker string `json:"breaker"`
	// BreakerState is Breaker as a number (the llmproxy_breaker_state gauge).
	BreakerState BreakerState `json:"-"`
	// BreakerRemote says Breaker comes from another replica's breaker.
	BreakerRemote bool      `json:"breaker_remote,omitempty"`
	Cooldown      *Cooldown `json:"cooldown,omitempty"`
	Inflight      int       `json:"inflight"`
	// EWMALatencyMS is the EWMA of time to first token in milliseconds.
	EWMALatencyMS float64 `json:"ewma_ttft_ms"`
	RPM           int     `json:"rpm,omitempty"`
	TPM           int     `json:"tpm,omitempty"`
}

// Deployments reports every deployment's live state, in config order.
func (r *Router) Deployments() []DeploymentStatus {
	now := r.now()
	out := make([]DeploymentStatus, 0, len(r.order))
	for _, st := range r.order {
		h := st.health(now, r.cooldowns)
		b := h.Breaker
		if b == BreakerClosed && h.Cooldown.Reason == CooldownBreakerOpen && now.Before(h.Cooldown.Until) {
			b = BreakerOpen // benched by another replica's breaker (remote.go)
		}
		ds := DeploymentStatus{ID: st.id, Provider: st.provider, Model: st.model, Breaker: b.String(), BreakerState: b,
			BreakerRemote: b != BreakerClosed && breakerState(st.cb.State()) == BreakerClosed,
			Inflight:      h.Inflight, EWMALatencyMS: float64(h.Latency) / float64(time.Millisecond), RPM: h.RPM, TPM: h.TPM}
		if now.Before(h.Cooldown.Until) {
			cd := h.Cooldown
			ds.Cooldown = &cd
		}
		out = append(out, ds)
	}
	return out
}

// SetCooldown benches every deployment of provider until until (an active
// health probe failed); a zero until clears a probe cooldown.
func (r *Router) SetCooldown(ctx context.Context, provider string, until time.Time) {
	for _, st := range r.order {
		if st.provider != provider {
			continue
		}
		if until.IsZero() && r.cooldowns.Get(st.id).Reason != CooldownProbe {
			continue
		}
		r.share(ctx, st, Cooldown{Until: until, Reason: CooldownProbe})
	}
}
