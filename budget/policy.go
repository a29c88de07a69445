package budget

import (
	"context"
	"math"
	"time"

	"llmproxy/router"
)

// BudgetSpec caps spend per calendar period; a zero dimension is
// unlimited, and both apply when both are set.
type BudgetSpec struct {
	USD    float64
	Tokens int64
	Period Period
}

// RateSpec is a per-minute rate limit; a zero dimension is unlimited.
type RateSpec struct{ RPM, TPM int64 }

// TeamPolicy is one team's limits.
type TeamPolicy struct {
	// Budget is the team's shared budget.
	Budget *BudgetSpec
	// KeyBudget applies to each of the team's keys separately.
	KeyBudget *BudgetSpec
	// ModelBudgets cap the team's spend on one alias.
	ModelBudgets map[string]BudgetSpec
	// RateLimit is the team's shared rate limit; KeyRateLimit applies to
	// each key.
	RateLimit, KeyRateLimit *RateSpec
	// Downgrade is the cost ladder, applied in order.
	Downgrade []DowngradeRule
	// DenyDowngrade refuses a request whose downgrade target cannot serve
	// it, instead of keeping the requested model.
	DenyDowngrade bool
}

// ModelPolicy is what the guard knows about an alias.
type ModelPolicy struct {
	// ContextWindow and MaxOutputTokens are in tokens; 0 is unknown.
	ContextWindow, MaxOutputTokens int
	// Tools, Vision and JSONSchema are the declared capabilities.
	Tools, Vision, JSONSchema bool
	// RateLimit caps the alias across all teams.
	RateLimit *RateSpec
	// Price is the alias's price for reservations: the dearest of the
	// alias's and its deployments' prices, since the deployment is picked
	// later. Settling uses the price of the deployment that served.
	Price  Price
	Priced bool
	// Fallbacks are the aliases the router may serve the alias with instead
	// (its fallbacks and context-window fallbacks): a request reserves at
	// the dearest price along them, see Guard.reservePrice.
	Fallbacks []string
}

// DowngradeRule moves a request to a cheaper alias when all its triggers
// hold. Rules apply in order and each sees the alias the previous ones
// chose, so a ladder can step down twice.
type DowngradeRule struct {
	// AtBudgetUsed fires once this share of the team budget is spent.
	AtBudgetUsed float64
	// From limits the rule to one alias ("" is any).
	From string
	To   string
	// MaxPromptTokens fires for prompts of at most this many tokens.
	MaxPromptTokens int
	// NoTools fires for requests without tools.
	NoTools bool
}

// Downgrade reasons, the llmproxy_downgrades_total reason label.
const (
	ReasonBudget      = "budget"
	ReasonRequestSize = "request_size"
)

// matches reports whether the rule fires. The prompt is counted exactly
// only when max_prompt_tokens lies below its bound and every cheaper
// trigger holds.
func (r DowngradeRule) matches(model string, p *promptCount, used float64) bool {
	switch {
	case r.From != "" && r.From != model, r.To == model:
		return false
	case r.AtBudgetUsed > 0 && used < r.AtBudgetUsed:
		return false
	case r.NoTools && p.Tools:
		return false
	case r.MaxPromptTokens > 0 && !p.atMost(r.MaxPromptTokens):
		return false
	}
	return true
}

// covers reports whether alias m can serve the request, counting the
// prompt exactly only when its bound overflows m's context window.
func (m ModelPolicy) covers(p *promptCount, completion int) bool {
	if (p.Tools && !m.Tools) || (p.Vision && !m.Vision) || (p.JSONSchema && !m.JSONSchema) {
		return false
	}
	return m.ContextWindow == 0 || p.atMost(m.ContextWindow-completion)
}

// downgrade walks tp's ladder and moves req.Model, returning the reason of
// the last move ("" when none). It returns a KindBudgetExceeded error when
// a rule fires, its target cannot serve the request and the policy is
// deny. A dry run is not counted in the metrics.
func (g *Guard) downgrade(ctx context.Context, req *router.ChatRequest, tp *TeamPolicy, team string, p *promptCount, res *router.Result) (string, error) {
	why := ""
	used := -1.0
	orig := req.Model
	for _, r := range tp.Downgrade {
		if r.AtBudgetUsed > 0 && used < 0 {
			used = g.usedShare(ctx, team, tp)
		}
		if !r.matches(req.Model, p, used) {
			continue
		}
		reason := ReasonRequestSize
		if r.AtBudgetUsed > 0 {
			reason = ReasonBudget
		}
		to, ok := g.models[r.To]
		completion := req.MaxTokens
		if completion == 0 {
			completion = g.minComp // no cap asked: the target must fit a useful reply
		}
		if !ok || !to.covers(p, completion) {
			if tp.DenyDowngrade {
				return "", &router.Error{Kind: router.KindBudgetExceeded, Message: "Budget policy moves " + req.Model + " requests to " + r.To +
					", which cannot serve this request (tools, images, json_schema or context size). Reduce the request or ask your administrator."}
			}
			continue // keep: the next rule may still apply
		}
		if !req.DryRun {
			g.obs.Downgrade(req.Model, r.To, reason)
		}
		req.Model, why = r.To, reason
	}
	if req.Model != orig {
		res.DowngradedFrom = orig
	}
	return why, nil
}

// usedShare is the share of the team budget settled, the larger of its
// dimensions. It comes from the last reservation this replica made for
// the team plus what it settled since, which avoids a second ledger round
// trip; a replica that has not seen the team yet asks the ledger once.
func (g *Guard) usedShare(ctx context.Context, team string, tp *TeamPolicy) float64 {
	if tp.Budget == nil {
		return 0
	}
	if v, ok := g.used.Load(team); ok {
		return v.(float64)
	}
	b := g.bucket(team, "team", *tp.Budget, g.now())
	read := g.spent
	if sl, ok := g.ledger.(SettledLedger); ok {
		read = func(ctx context.Context, b []Bucket) ([]Amount, error) {
			if err := g.seedMissing(ctx, b); err != nil {
				return nil, err
			}
			return sl.Settled(ctx, b)
		}
	}
	sp, err := read(ctx, []Bucket{b})
	if err != nil || len(sp) == 0 {
		return 0
	}
	u := share(b.Limit, sp[0])
	g.used.Store(team, u)
	return u
}

func share(limit, spent Amount) float64 {
	u := 0.0
	if limit.Tokens > 0 {
		u = math.Max(u, float64(spent.Tokens)/float64(limit.Tokens))
	}
	if limit.NanoUSD > 0 {
		u = math.Max(u, float64(spent.NanoUSD)/float64(limit.NanoUSD))
	}
	return u
}

// bucket is a budget's bucket for the period containing now.
func (g *Guard) bucket(team, id string, b BudgetSpec, now time.Time) Bucket {
	start, end := b.Period.Bounds(now)
	return Bucket{Team: team, ID: id, Limit: Amount{Tokens: b.Tokens, NanoUSD: ToNano(b.USD)}, Start: start, End: end}
}

// buckets lists every budget a request for alias by key is charged to; the
// team's own budget comes first.
func (g *Guard) buckets(tp *TeamPolicy, id router.Identity, alias string, now time.Time) []Bucket {
	if tp == nil {
		return nil
	}
	var out []Bucket
	if tp.Budget != nil {
		out = append(out, g.bucket(id.Team, "team", *tp.Budget, now))
	}
	if tp.KeyBudget != nil {
		out = append(out, g.bucket(id.Team, "key:"+id.KeyID, *tp.KeyBudget, now))
	}
	if mb, ok := tp.ModelBudgets[alias]; ok {
		out = append(out, g.bucket(id.Team, "model:"+alias, mb, now))
	}
	return out
}

// limits lists every rate limit a request counts against.
func (g *Guard) limits(tp *TeamPolicy, id router.Identity, mp ModelPolicy, alias string) []Limit {
	var out []Limit
	if tp != nil && tp.RateLimit != nil {
		out = append(out, Limit{Team: id.Team, ID: "team", RPM: tp.RateLimit.RPM, TPM: tp.RateLimit.TPM})
	}
	if tp != nil && tp.KeyRateLimit != nil {
		out = append(out, Limit{Team: id.Team, ID: "key:" + id.KeyID, RPM: tp.KeyRateLimit.RPM, TPM: tp.KeyRateLimit.TPM})
	}
	if mp.RateLimit != nil {
		out = append(out, Limit{ID: "model:" + alias, RPM: mp.RateLimit.RPM, TPM: mp.RateLimit.TPM})
	}
	return out
}
