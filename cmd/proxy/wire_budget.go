package main

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/budget"
	"llmproxy/router"
	"llmproxy/store/redis"
)

// budgetMetrics implements budget.Observer.
type budgetMetrics struct {
	downgrades  *prometheus.CounterVec
	redisErrors *prometheus.CounterVec
}

func newBudgetMetrics(reg prometheus.Registerer) *budgetMetrics {
	m := &budgetMetrics{
		downgrades: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmproxy_downgrades_total",
			Help: "Requests the downgrade ladder moved, by alias asked, alias used and reason (budget, request_size)."}, []string{"from", "to", "reason"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmproxy_redis_errors_total",
			Help: "Failed Redis operations by op (reserve, settle); redis.on_error decides what the request got."}, []string{"op"}),
	}
	reg.MustRegister(m.downgrades, m.redisErrors)
	return m
}

func (m *budgetMetrics) Downgrade(from, to, reason string) {
	m.downgrades.WithLabelValues(from, to, reason).Inc()
}

func (m *budgetMetrics) LedgerError(op string) { m.redisErrors.WithLabelValues(op).Inc() }

// needsGuard reports whether any team or model has a limit the guard
// enforces. Without one the guard is left out of the chain entirely.
func (c *Config) needsGuard() bool {
	if c.Budget.Unpriced == "deny" {
		return true
	}
	for _, t := range c.Teams {
		if t.Budget != nil || t.RateLimit != nil || len(t.Downgrade) > 0 || t.KeyBudget != nil || t.KeyRateLimit != nil || len(t.ModelBudgets) > 0 {
			return true
		}
	}
	for _, m := range c.Models {
		if m.RateLimit != nil {
			return true
		}
	}
	return false
}

// buildGuard turns the config's budgets, limits and prices into a guard,
// sharing state through rdb when Redis is configured. It returns nil when
// nothing needs guarding. spend is the usage ledger, from which counters
// Redis lost, or a restarted process never had, are rebuilt.
func buildGuard(cfg *Config, log *slog.Logger, reg prometheus.Registerer, rdb *redis.Client, spend budget.SpendSource) (*budget.Guard, error) {
	if !cfg.needsGuard() {
		return nil, nil
	}
	prices := budget.NewPrices()
	models := make(map[string]budget.ModelPolicy, len(cfg.Models))
	for _, m := range cfg.Models {
		mp := budget.ModelPolicy{ContextWindow: m.ContextWindow, MaxOutputTokens: m.MaxOutputTokens, RateLimit: rateSpec(m.RateLimit),
			Tools: slices.Contains(m.Capabilities, "tools"), Vision: slices.Contains(m.Capabilities, "vision"),
			JSONSchema: slices.Contains(m.Capabilities, "json_schema"),
			Fallbacks:  append(slices.Clone(m.Fallbacks), m.ContextWindowFallbacks...)}
		if m.Pricing != nil {
			mp.Price, mp.Priced = toPrice(m.Pricing), true
			prices.SetAlias(m.Name, mp.Price)
		}
		for _, d := range m.Deployments {
			if d.Pricing == nil {
				continue
			}
			p := toPrice(d.Pricing)
			prices.SetDeployment(d.Provider, d.Model, p)
			// Reserve the dearest: the deployment is picked after admission.
			mp.Price.InputPerMTok = max(mp.Price.InputPerMTok, p.InputPerMTok)
			mp.Price.OutputPerMTok = max(mp.Price.OutputPerMTok, p.OutputPerMTok)
			mp.Priced = mp.Priced || allDeploymentsPriced(m)
		}
		models[m.Name] = mp
	}
	teams := make(map[string]budget.TeamPolicy, len(cfg.Teams))
	for _, t := range cfg.Teams {
		tp := budget.TeamPolicy{Budget: budgetSpec(t.Budget), KeyBudget: budgetSpec(t.KeyBudget),
			RateLimit: rateSpec(t.RateLimit), KeyRateLimit: rateSpec(t.KeyRateLimit), DenyDowngrade: t.DowngradePolicy == "deny"}
		for alias, b := range t.ModelBudgets {
			if tp.ModelBudgets == nil {
				tp.ModelBudgets = map[string]budget.BudgetSpec{}
			}
			tp.ModelBudgets[alias] = *budgetSpec(&b)
		}
		for _, r := range t.Downgrade {
			tp.Downgrade = append(tp.Downgrade, budget.DowngradeRule{AtBudgetUsed: r.AtBudgetUsed, From: r.From, To: r.To,
				MaxPromptTokens: r.MaxPromptTokens, NoTools: r.NoTools})
		}
		teams[t.Name] = tp
	}
	opts := budget.GuardOptions{Teams: teams, Models: models, Prices: prices, DenyUnpriced: cfg.Budget.Unpriced == "deny",
		Observer: newBudgetMetrics(reg), Log: log, Spend: spend}
	if rdb != nil {
		opts.Ledger = rdb.Budgets()
		if spend != nil {
			opts.Ledger = rdb.Budgets().RebuildFromLedger()
		}
		opts.FailOpen = cfg.Redis.OnError == "fail_open"
		opts.OpTimeout = time.Duration(cfg.Redis.Timeout)
	}
	return budget.NewGuard(opts)
}

func toPrice(p *PricingConfig) budget.Price {
	return budget.Price{InputPerMTok: p.InputPerMTok, OutputPerMTok: p.OutputPerMTok, CachedInputPerMTok: p.CachedInputPerMTok}
}

func budgetSpec(b *BudgetLimit) *budget.BudgetSpec {
	if b == nil {
		return nil
	}
	return &budget.BudgetSpec{USD: b.USD, Tokens: b.Tokens, Period: budget.Period(b.Period)}
}

func rateSpec(r *RateLimitConfig) *budget.RateSpec {
	if r == nil || (r.RPM == 0 && r.TPM == 0) {
		return nil
	}
	return &budget.RateSpec{RPM: int64(r.RPM), TPM: int64(r.TPM)}
}

// redisCheck is the /ready check for the shared Redis.
func redisCheck(rdb *redis.Client) readyCheck {
	return readyCheck{name: "redis", check: func(ctx context.Context) error { return rdb.Ping(ctx) }}
}

// setMetaHeaders sends what the guard decided (x-ratelimit-*, clamps,
// downgrades, budget left); it runs for errors too, so a 429 carries them.
func setMetaHeaders(set func(k, v string), m *router.Meta) {
	for _, h := range m.Headers() {
		set(h[0], h[1])
	}
	if m != nil && m.EmbedCache != "" {
		set("x-llmproxy-cache", m.EmbedCache) // hit, miss or partial (embed.Service)
	}
}
