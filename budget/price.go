package budget

import "llmproxy/router"

// Price is what one model costs, in USD per million tokens.
type Price struct {
	InputPerMTok  float64
	OutputPerMTok float64
	// CachedInputPerMTok prices prompt tokens the upstream served from its
	// cache; zero means they cost the same as other input.
	CachedInputPerMTok float64
}

// Cost is the USD cost of u. Cached prompt tokens are part of
// PromptTokens (as OpenAI reports them) and are billed at the cached rate
// when one is set; reasoning tokens are part of CompletionTokens.
func (p Price) Cost(u router.Usage) float64 {
	cached := min(max(u.CachedTokens, 0), u.PromptTokens)
	cachedRate := p.CachedInputPerMTok
	if cachedRate == 0 {
		cachedRate = p.InputPerMTok
	}
	return (float64(u.PromptTokens-cached)*p.InputPerMTok +
		float64(cached)*cachedRate +
		float64(u.CompletionTokens)*p.OutputPerMTok) / 1e6
}

// Prices is the price table: per alias, optionally overridden per
// deployment (provider and upstream model).
type Prices struct {
	alias      map[string]Price
	deployment map[[2]string]Price
}

// NewPrices returns an empty table.
func NewPrices() *Prices {
	return &Prices{alias: map[string]Price{}, deployment: map[[2]string]Price{}}
}

// SetAlias prices an alias.
func (t *Prices) SetAlias(alias string, p Price) { t.alias[alias] = p }

// SetDeployment prices one deployment of an alias, overriding the alias.
func (t *Prices) SetDeployment(provider, model string, p Price) {
	t.deployment[[2]string{provider, model}] = p
}

// For returns the price of a request to alias served by provider/model,
// and false when neither the deployment nor the alias has one.
func (t *Prices) For(alias, provider, model string) (Price, bool) {
	if p, ok := t.deployment[[2]string{provider, model}]; ok {
		return p, true
	}
	p, ok := t.alias[alias]
	return p, ok
}

// Served is the price of a reply to alias that target served: the
// deployment's, else the alias's; false when neither is priced (or t is
// nil). The budget guard's settlement and the usage ledger of a proxy
// without a guard both price through it, so they cannot disagree.
func (t *Prices) Served(alias string, target router.Target) (Price, bool) {
	if t == nil {
		return Price{}, false
	}
	return t.For(alias, target.Provider, target.Model)
}

// SettleResult prices u at what res says served (a request for alias) and
// records it as res's settled usage and cost, returning the cost; an
// unpriced reply costs 0. It is the usage ledger's settlement when no
// budget guard settled the request.
func (t *Prices) SettleResult(res *router.Result, alias string, u router.Usage) float64 {
	cost := 0.0
	if p, ok := t.Served(res.ServedAlias(alias), res.Target); ok {
		cost = p.Cost(u)
	}
	res.Usage, res.CostUSD, res.Estimated, res.Settled = u, cost, u.Estimated, true
	return cost
}
