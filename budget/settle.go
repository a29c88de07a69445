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
	// result receives the settled usage and cost, which the usage ledger
	// writes: the ledger row and the budget agree.
	result *router.Result
	// team and teamLimit name the team budget whose share the downgrade
	// ladder reads (teamLimit zero: none).
	team      string
	teamLimit Amount
}

// settleUsage prices s's usage, replaces the reservation's charge with
// it and records it in s.result, returning the cost. A chat stream's Close
// and an embeddings reply both settle here, so every reply takes one
// path back.
func (g *Guard) settleUsage(ctx context.Context, s settlement) float64 {
	cost := g.servedPrice(s.alias, s.target, s.price).Cost(s.usage)
	actual := Amount{Tokens: int64(s.usage.PromptTokens + s.usage.CompletionTokens), NanoUSD: ToNano(cost)}
	g.settle(ctx, s.led, s.res, actual)
	g.addSettled(s.team, s.teamLimit, actual)
	if m := s.result; m != nil {
		m.Usage, m.CostUSD, m.Estimated, m.Settled = s.usage, cost, s.usage.Estimated, true
	}
	return cost
}
