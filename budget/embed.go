package budget

import (
	"context"
	"time"

	"llmproxy/router"
)

// Embeddings and rerank calls under budgets and rate limits (issues 9, 12).
//
// Neither has a completion: admission counts the input with the tokenizer
// (embeddings: every input, token arrays by their length; rerank: the
// query once per document plus every document, what a cross-encoder
// reads) and reserves that prompt alone (MaxCompletion 0) in the same
// atomic Reserve as chat, against the same buckets (team, key, model
// budgets) and limits (rpm, tpm). A call therefore fits whole or is
// refused with insufficient_quota: there is nothing to clamp. The
// downgrade ladder never applies, because another model is another vector
// space (or another ranking). Settlement charges the upstream's usage at
// the price of what served, through settleUsage, the step a chat stream's
// Close takes too.

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

// Rerank returns next behind the guard: each rerank call is admitted,
// limited and settled like an embeddings call.
func (g *Guard) Rerank(next router.RerankHandler) router.RerankHandler {
	return router.RerankHandlerFunc(func(ctx context.Context, req *router.RerankRequest) (*router.RerankResponse, error) {
		return admitInput(g, ctx, inputCall[router.RerankResponse]{model: req.Model,
			withResult: func() (res *router.Result) { req, res = req.WithResult(); return res },
			count:      func(exact bool) int { return g.rerankTokens(req, exact) },
			call: func(tokens int) (*router.RerankResponse, router.Usage, error) {
				req.PromptTokens = tokens // the router's TPM check plans on it
				resp, err := next.ServeRerank(ctx, req)
				if err != nil {
					return nil, router.Usage{}, err
				}
				return resp, resp.Usage, nil
			}})
	})
}

func (g *Guard) serveEmbed(ctx context.Context, req *router.EmbedRequest, next router.EmbedHandler) (*router.EmbedResponse, error) {
	return admitInput(g, ctx, inputCall[router.EmbedResponse]{model: req.Model,
		withResult: func() (res *router.Result) { req, res = req.WithResult(); return res },
		count:      func(exact bool) int { return g.embedTokens(req, exact) },
		call: func(tokens int) (*router.EmbedResponse, router.Usage, error) {
			req.PromptTokens = tokens // the router's TPM check plans on it
			resp, err := next.ServeEmbed(ctx, req)
			if err != nil {
				return nil, router.Usage{}, err
			}
			return resp, resp.Usage, nil
		}})
}

// inputCall is one call billed by its input alone; T is its reply.
type inputCall[T any] struct {
	model string
	// withResult is the request's WithResult: it switches the request the
	// other functions see to one with a Result (a copy when the caller
	// attached none, so the guard never writes into its caller's request).
	withResult func() *router.Result
	// count is the input's token count: exact, or an upper bound.
	count func(exact bool) int
	// call makes the call with the admitted token count and returns the
	// reply and the upstream's usage (zero when it reported none).
	call func(tokens int) (*T, router.Usage, error)
}

// admitInput admits c, calls it, and settles to its usage: what it
// reported, else what admission counted.
func admitInput[T any](g *Guard, ctx context.Context, c inputCall[T]) (*T, error) {
	id, _ := router.IdentityFrom(ctx)
	tp := g.teams[id.Team]
	mp, known := g.models[c.model]
	if tp == nil && mp.RateLimit == nil && !g.denyUnpriced {
		resp, _, err := c.call(0) // nothing to enforce
		return resp, err
	}
	res := c.withResult()
	if g.denyUnpriced && known && !mp.Priced {
		return nil, &router.Error{Kind: router.KindBudgetExceeded, Message: "The model " + c.model + " has no price configured and budget.unpriced is deny."}
	}
	r := Reservation{ID: newID(), Buckets: g.buckets(tp, id, c.model, g.now()), Limits: g.limits(tp, id, mp, c.model), TTL: time.Hour}
	tokens := c.count(needsCount(&r))
	r.Prompt = promptAmount(tokens, g.reservePrice(c.model)) // the dearest of the fallback chain: settlement bills what served
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
	resp, u, err := c.call(tokens)
	if err != nil {
		g.settle(ctx, led, r, Amount{}) // nothing was billed: release it all
		return nil, err
	}
	if u.PromptTokens <= 0 {
		// No usage reported: charge what admission counted. A bound
		// (rate limits alone) is never below the real count.
		u = router.Usage{PromptTokens: tokens, TotalTokens: tokens, Estimated: true}
	}
	g.settleUsage(ctx, settlement{led: led, res: r, alias: res.ServedAlias(c.model), target: res.Target, price: mp.Price, usage: u, result: res,
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
		n += g.textTokens(req.Model, s, exact)
	}
	return n
}

// rerankTokens is what a cross-encoder reads for req: the query once per
// document, plus every document (exact, or bounded by bytes).
func (g *Guard) rerankTokens(req *router.RerankRequest, exact bool) int {
	n := g.textTokens(req.Model, req.Query, exact) * len(req.Documents)
	for _, d := range req.Documents {
		n += g.textTokens(req.Model, d, exact)
	}
	return n
}

func (g *Guard) textTokens(model, s string, exact bool) int {
	if exact {
		return g.counter.Text(model, s)
	}
	return len(s)
}
