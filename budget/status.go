package budget

import (
	"context"
	"time"
)

// TeamStatus is a team's budget in its current period, for /v1/usage.
// Spent includes reservations of requests still in flight (at their worst
// case): it is what the limit admits against, while the downgrade ladder and
// x-llmproxy-budget-remaining-usd read settled spend (Grant.Settled).
type TeamStatus struct {
	Team string
	// HasBudget is false when the team has no budget; the rest is zero.
	HasBudget bool
	Period    Period
	// Start and Reset bound the current period (Reset is when spend goes
	// back to zero).
	Start, Reset time.Time
	// Limits; zero is unlimited.
	LimitUSD    float64
	LimitTokens int64
	SpentUSD    float64
	SpentTokens int64
	// Remaining is the limit minus the spend, never below zero; only
	// meaningful for a dimension with a limit.
	RemainingUSD    float64
	RemainingTokens int64
}

// Status reports the team's budget. A team the guard does not know, or
// one without a budget, has HasBudget false.
func (g *Guard) Status(ctx context.Context, team string) (TeamStatus, error) {
	st := TeamStatus{Team: team}
	tp := g.teams[team]
	if tp == nil || tp.Budget == nil {
		return st, nil
	}
	b := g.bucket(team, "team", *tp.Budget, g.now())
	ctx, cancel := context.WithTimeout(ctx, g.opTimeout)
	defer cancel()
	sp, err := g.spent(ctx, []Bucket{b})
	if err != nil {
		return st, err
	}
	s := sp[0]
	st.HasBudget, st.Period, st.Start, st.Reset = true, tp.Budget.Period, b.Start, b.End
	st.LimitUSD, st.LimitTokens = tp.Budget.USD, tp.Budget.Tokens
	st.SpentUSD, st.SpentTokens = s.USD(), s.Tokens
	st.RemainingUSD = max(tp.Budget.USD-s.USD(), 0)
	st.RemainingTokens = max(tp.Budget.Tokens-s.Tokens, 0)
	return st, nil
}
