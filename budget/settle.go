package budget

import (
	"context"

	"llmproxy/router"
)

// settlement is the return leg of one admitted request: its reservation
// and the usage its reply reported.
type settlement struct {
	led Ledger
	res Reservation
	// alias and target are what served: they pick the price.
	alias  string
	target router.Target
	// price is the reservation's, used when the table has none.
	price Price
	usage router.Usage
	// meta, when set, receives the settled usage and cost, which the
	// usage ledger writes: the ledger row and the budget agree.
	meta *router.Meta
}

// settleUsage prices s's usage, replaces the reservation's charge with
// it and records it in s.meta, returning the cost. A chat stream's Close
// and an embeddings reply both settle here, so every reply takes one
// path back.
func (g *Guard) settleUsage(ctx context.Context, s settlement) float64 {
	price := s.price
	if g.prices != nil {
		if p, ok := g.prices.For(s.alias, s.target.Provider, s.target.Model); ok {
			price = p
		}
	}
	cost := price.Cost(s.usage)
	g.settle(ctx, s.led, s.res, Amount{Tokens: int64(s.usage.PromptTokens + s.usage.CompletionTokens), NanoUSD: ToNano(cost)})
	if m := s.meta; m != nil {
		m.Usage, m.CostUSD, m.Estimated, m.Settled = s.usage, cost, s.usage.Estimated, true
	}
	return cost
}
