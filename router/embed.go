package router

import (
	"context"
	"fmt"
	"slices"
)

// Embed routes an embeddings call through the same plan, breakers,
// limiters, cooldowns, retries and fallbacks as chat. A reply is whole, so
// there is no commit point: a call succeeds or fails as one. Deployments
// whose provider cannot embed are skipped. On return req.Result (when set)
// names the last deployment called, how many calls were made and the alias
// that answered when it is not req.Model.
func (r *Router) Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
	req, res := req.WithResult()
	return routeWhole(r, ctx, wholeCall{alias: req.Model, tokens: req.PromptTokens, body: len(req.Body), res: res,
		unusable: noEmbed, what: "embeddings", raw: req.Body}, func(ctx context.Context, d *Deployment) (*EmbedResponse, *Usage, error) {
		req.Target = Target{Provider: d.Provider, Model: d.Model}
		resp, err := d.Client.(Embedder).Embed(ctx, req)
		if err != nil {
			return nil, nil, err
		}
		return resp, &resp.Usage, nil
	})
}

// ServeEmbed is Embed: the Router is the innermost EmbedHandler of a
// Chain.
func (r *Router) ServeEmbed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
	return r.Embed(ctx, req)
}

func noEmbed(d *Deployment) Skip {
	if _, ok := d.Client.(Embedder); ok {
		return SkipNone
	}
	return SkipNoEmbeddings
}

// wholeCall is a call whose reply is whole (embeddings, rerank): no
// stream, no commit point; it bills its input only.
type wholeCall struct {
	alias string
	// tokens is the input's token count when a stage counted it (the
	// budget guard); else body/4 estimates it for the TPM check.
	tokens, body int
	res          *Result
	// unusable says why a deployment cannot serve the call.
	unusable func(*Deployment) Skip
	// what names the ability in the 400 for an alias without it, and is
	// the attempt spans' operation.
	what string
	// raw is the request body, for the attempt spans' attributes.
	raw []byte
}

// routeWhole walks w.alias's plan, calling call with each attempt's
// deployment under the attempt's timeout, and reports every attempt to
// the breaker, the limiters and the shared cooldowns. It returns the reply
// of the call that answered.
func routeWhole[T any](r *Router, ctx context.Context, w wholeCall, call func(ctx context.Context, d *Deployment) (*T, *Usage, error)) (*T, error) {
	rt, ok := r.routes[w.alias]
	if !ok {
		return nil, modelNotFound(w.alias)
	}
	if !slices.ContainsFunc(rt.Deployments, func(d Deployment) bool { return w.unusable(&d) == SkipNone }) {
		return nil, &Error{Kind: KindInvalidRequest, Message: fmt.Sprintf("model %q does not support %s", w.alias, w.what), Param: "model"}
	}
	if err := ctx.Err(); err != nil {
		return nil, AsError(err)
	}
	if total := capped(rt.Timeouts.Total, r.opts.Timeouts.Total, 0); total > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, total)
		defer cancel()
	}
	in := r.basePlanInput(ctx, w.alias)
	in.PromptTokens = w.tokens // TPM only: these calls bill the input
	if in.PromptTokens == 0 {
		in.PromptTokens = w.body / 4
	}
	w.res.Alias = w.alias
	var out *T
	err := r.walk(ctx, in, walkCount{&w.res.Attempts, &w.res.Fallbacks}, w.unusable, func(ctx context.Context, c *Candidate, st *depState, a admission) *Error {
		d := c.Deployment
		noteTarget(w.res, Target{Provider: d.Provider, Model: d.Model}, c.Alias, w.alias)
		at := Attempt{Operation: w.what, Alias: c.Alias, Target: Target{Provider: d.Provider, Model: d.Model}, Body: w.raw}
		return r.wholeOnce(ctx, c, st, a, at, func(ctx context.Context) (*Usage, error) {
			resp, u, err := call(ctx, d)
			out = resp
			return u, err
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// wholeOnce makes one admitted whole-reply call and reports it to the
// breaker, the limiters and the shared cooldowns.
func (r *Router) wholeOnce(ctx context.Context, c *Candidate, st *depState, a admission, at Attempt, call func(ctx context.Context) (*Usage, error)) *Error {
	d := c.Deployment
	actx, cancel := ctx, context.CancelFunc(func() {})
	if total := r.timeouts(c, 0).Total; total > 0 {
		actx, cancel = context.WithTimeout(ctx, total)
	}
	defer cancel()
	actx, span := r.startAttempt(actx, at)
	st.inflight.Add(1)
	start := r.now()
	usage, err := call(actx)
	took := r.now().Sub(start)
	st.inflight.Add(-1)
	var (
		e       *Error
		outcome error // what the breaker hears
	)
	if err != nil {
		e = attributed(err, d.Provider)
		r.capRetryAfter(e)
		outcome = e
		if ctx.Err() != nil {
			outcome = errLeftEarly // the request's own context ended
		}
		r.observe(d, e, took)
		usage = nil
	} else {
		st.observeTTFT(took)
		r.observe(d, nil, took)
	}
	a.done(outcome)
	if span != nil {
		span.End(usage, outcome)
	}
	st.settleTPM(r.now(), a.tpm, usage, false)
	r.shareOpen(ctx, st)
	if e != nil {
		if e.Kind == KindUpstreamRateLimited {
			r.coolDown(ctx, st, e.RetryAfter)
		}
		return e
	}
	return nil
}
