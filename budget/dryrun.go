package budget

import (
	"context"
	"fmt"

	"llmproxy/router"
)

// dryState is what serve decided before a dry run's admission.
type dryState struct {
	tp   *TeamPolicy
	team string
	p    *promptCount
	why  string // the downgrade's reason, "" when none
}

// dryRun reports what admission would decide for r (POST
// /v1/route/explain) without reserving: it reads the buckets' spend
// (Ledger.Spent, which takes nothing; a counter the ledger lost is rebuilt
// from the usage ledger first, as for any read) and applies the arithmetic
// Reserve applies. Rate limits are not evaluated and their counters are not
// touched, so a dry run neither spends budget nor consumes rpm or tpm. The router
// still plans the (possibly downgraded) request, so the candidates shown
// are the ones that would serve it.
func (g *Guard) dryRun(ctx context.Context, req *router.ChatRequest, res *router.Result, r *Reservation, ds dryState, next router.Handler) (router.Stream, error) {
	p := ds.p
	if !p.Exact && len(r.Buckets) > 0 {
		p.exact()
	}
	d := &router.BudgetDecision{Team: ds.team, Admit: true, DowngradeReason: ds.why, PromptTokens: p.Tokens,
		ReserveUSD: float64(r.Prompt.NanoUSD)/NanoPerUSD + float64(r.MaxCompletion)*r.NanoPerToken/NanoPerUSD}
	if ds.tp != nil && ds.tp.Budget != nil {
		d.UsedShare = g.usedShare(ctx, ds.team, ds.tp)
	}
	res.Budget = d
	if res.DowngradedFrom != "" {
		res.Note("budget", fmt.Sprintf("downgrade %s to %s (%s)", res.DowngradedFrom, req.Model, ds.why))
	}
	if len(r.Buckets) > 0 {
		sctx, cancel := context.WithTimeout(ctx, g.opTimeout)
		spent, err := g.spent(sctx, r.Buckets)
		cancel()
		if err != nil {
			return nil, &router.Error{Kind: router.KindNoProvider, Message: "The budget service is unavailable; try again shortly.", Err: err}
		}
		n, refused := fitCompletion(r, spent)
		switch {
		case refused >= 0:
			d.Admit = false
			d.Error = &router.Error{Kind: router.KindBudgetExceeded, Code: "insufficient_quota",
				Message: "You exceeded your current quota (" + r.Buckets[refused].ID + " budget for this period). Ask your administrator or wait for the period to reset."}
			res.Note("budget", "refuse: "+d.Error.Message)
		case n < r.MaxCompletion:
			d.MaxTokensClamped = int(n / int64(choices(req)))
			res.Note("budget", fmt.Sprintf("clamp the completion to %d tokens per choice", d.MaxTokensClamped))
		}
	}
	setPrompt(req, p)
	return next.Serve(ctx, req)
}

// refuse returns err, a refusal decided before admission; a dry run
// reports it in res instead and lets the router still show its plan.
func (g *Guard) refuse(ctx context.Context, req *router.ChatRequest, res *router.Result, team string, err error, next router.Handler) (router.Stream, error) {
	if !req.DryRun {
		return nil, err
	}
	d := &router.BudgetDecision{Team: team, Error: router.AsError(err)}
	res.Budget = d
	res.Note("budget", "refuse: "+d.Error.Message)
	return next.Serve(ctx, req)
}
