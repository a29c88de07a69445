package budget

import (
	"context"
	"time"

	"llmproxy/router"
)

// Embeddings under budgets and rate limits (issue 9).
//
// An embeddings call has no completion: admission counts every input with
// the tokenizer (strings, and token arrays by their length) and reserves
// that prompt alone (MaxCompletion 0) in the same atomic Reserve as chat,
// against the same buckets (team, key, model budgets) and limits (rpm,
// tpm). A call therefore fits whole or is refused with insufficient_quota:
// there is nothing to clamp. The downgrade ladder never applies, because
// another model is another vector space. Settlement charges the upstream's
// usage at the price of what served, through settleUsage, the step a chat
// stream's Close takes too.

// guardHandler is the guard in a chain whose inner stage also serves
// embeddings.
type guardHandler struct {
	router.Handler
	g    *Guard
	next router.EmbedHandler
}

// ServeEmbed implements router.EmbedHandler.
func (h guardHandler) ServeEmbed(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
	return h.g.serveEmbed(ctx, req, h.next)
}

// withEmbed makes the guard's chat handler h guard embeddings too, when
// next serves them.
func (g *Guard) withEmbed(h, next router.Handler) router.Handler {
	if e, ok := next.(router.EmbedHandler); ok {
		return guardHandler{Handler: h, g: g, next: e}
	}
	return h
}

func (g *Guard) serveEmbed(ctx context.Context, req *router.EmbedRequest, next router.EmbedHandler) (*router.EmbedResponse, error) {
	id, _ := router.IdentityFrom(ctx)
	tp := g.teams[id.Team]
	mp, known := g.models[req.Model]
	if tp == nil && mp.RateLimit == nil && !g.denyUnpriced {
		return next.ServeEmbed(ctx, req) // nothing to enforce
	}
	req, res := req.WithResult()
	if g.denyUnpriced && known && !mp.Priced {
		return nil, &router.Error{Kind: router.KindBudgetExceeded, Message: "The model " + req.Model + " has no price configured and budget.unpriced is deny."}
	}
	r := Reservation{ID: newID(), Buckets: g.buckets(tp, id, req.Model, g.now()), Limits: g.limits(tp, id, mp, req.Model), TTL: time.Hour}
	tokens := g.embedTokens(req, needsCount(&r))
	r.Prompt = promptAmount(tokens, g.reservePrice(req.Model)) // the dearest of the fallback chain: settlement bills what served
	actx, sp := startAdmit(ctx, id.Team, r)
	gr, led, err := g.reserve(actx, r)
	if err != nil {
		err = g.refusal(err, res)
		sp.End(err)
		return nil, err
	}
	endAdmit(sp, gr)
	var teamLimit Amount // the team budget's limit, when it has one
	res.RateLimit = router.RateLimitInfo(gr.Rate)
	if len(r.Buckets) > 0 && tp.Budget != nil {
		teamLimit = r.Buckets[0].Limit
		g.noteSettled(id.Team, teamLimit, gr, res)
	}
	req.PromptTokens = tokens // the router's TPM check plans on it
	resp, err := next.ServeEmbed(ctx, req)
	if err != nil {
		g.settle(ctx, led, r, Amount{}) // nothing was billed: release it all
		return nil, err
	}
	u := resp.Usage
	if u.PromptTokens <= 0 {
		// No usage reported: charge what admission counted. A bound
		// (rate limits alone) is never below the real count.
		u = router.Usage{PromptTokens: tokens, TotalTokens: tokens, Estimated: true}
	}
	g.settleUsage(ctx, settlement{led: led, res: r, alias: res.ServedAlias(req.Model), target: res.Target, price: mp.Price, usage: u, result: res,
		team: id.Team, teamLimit: teamLimit})
	return resp, nil
}

// needsCount reports whether r's admission depends on the prompt's token
// count: a budget, or a tokens-per-minute limit. Otherwise a byte bound
// will do and the tokenizer does not run.
func needsCount(r *Reservation) bool {
	if len(r.Buckets) > 0 {
		return true
	}
	for _, l := range r.Limits {
		if l.TPM > 0 {
			return true
		}
	}
	return false
}

// embedTokens is the token count of req's inputs: the tokenizer's count of
// each string (or, when !exact, its byte length, an upper bound), plus the
// length of every token array.
func (g *Guard) embedTokens(req *router.EmbedRequest, exact bool) int {
	n := req.InputTokens
	for _, s := range req.Input {
		if exact {
			n += g.counter.Text(req.Model, s)
		} else {
			n += len(s)
		}
	}
	return n
}
