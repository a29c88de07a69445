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
	rt, ok := r.routes[req.Model]
	if !ok {
		return nil, modelNotFound(req.Model)
	}
	if !slices.ContainsFunc(rt.Deployments, func(d Deployment) bool { return embeds(&d) }) {
		return nil, &Error{Kind: KindInvalidRequest, Message: fmt.Sprintf("model %q does not support embeddings", req.Model), Param: "model"}
	}
	if err := ctx.Err(); err != nil {
		return nil, AsError(err)
	}
	if total := capped(rt.Timeouts.Total, r.opts.Timeouts.Total, 0); total > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, total)
		defer cancel()
	}
	in := r.basePlanInput(ctx, req.Model)
	in.PromptTokens = req.PromptTokens // TPM only: embeddings bill the input
	if in.PromptTokens == 0 {
		in.PromptTokens = len(req.Body) / 4
	}
	req, res := req.WithResult()
	res.Alias = req.Model
	var out *EmbedResponse
	err := r.walk(ctx, in, walkCount{&res.Attempts, &res.Fallbacks}, embeds, func(ctx context.Context, c *Candidate, st *depState, a admission) *Error {
		resp, err := r.embedOnce(ctx, c, st, a, req)
		out = resp
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ServeEmbed is Embed: the Router is the innermost EmbedHandler of a
// Chain.
func (r *Router) ServeEmbed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
	return r.Embed(ctx, req)
}

func embeds(d *Deployment) bool { _, ok := d.Client.(Embedder); return ok }

// embedOnce makes one admitted embeddings call and reports it to the
// breaker, the limiters and the shared cooldowns.
func (r *Router) embedOnce(ctx context.Context, c *Candidate, st *depState, a admission, req *EmbedRequest) (*EmbedResponse, *Error) {
	d := c.Deployment
	req.Target = Target{Provider: d.Provider, Model: d.Model}
	noteTarget(req.Result, req.Target, c.Alias, req.Model)
	actx, cancel := ctx, context.CancelFunc(func() {})
	if total := r.timeouts(c, 0).Total; total > 0 {
		actx, cancel = context.WithTimeout(ctx, total)
	}
	defer cancel()
	actx, span := r.startAttempt(actx, Attempt{Operation: "embeddings", Alias: c.Alias, Target: req.Target, Body: req.Body})
	st.inflight.Add(1)
	start := r.now()
	resp, err := d.Client.(Embedder).Embed(actx, req)
	took := r.now().Sub(start)
	st.inflight.Add(-1)
	var (
		e       *Error
		usage   *Usage
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
	} else {
		usage = &resp.Usage
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
		return nil, e
	}
	return resp, nil
}
