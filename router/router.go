package router

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Deployment is one upstream that can serve an alias.
type Deployment struct {
	// Provider is the configured provider name.
	Provider string
	// Model is the upstream model name.
	Model string
	// Client serves chat; it may also implement Embedder.
	Client Provider
	// Weight is the share under the weighted strategy; 0 means 1.
	Weight int
	// Priority is the tier: lower tiers are tried first under every
	// strategy.
	Priority int
	// RPM and TPM are the upstream account's quota for this model; the
	// router skips the deployment rather than exceed them. 0: no limit.
	RPM, TPM int
	// Timeouts are the provider's; zero fields take Options.Timeouts.
	Timeouts Timeouts
}

// ID names the deployment in breakers, cooldowns and metrics: provider
// and upstream model, shared by every alias that routes there.
func (d *Deployment) ID() string { return d.Provider + "/" + d.Model }

func (d *Deployment) weight() int { return max(d.Weight, 1) }

// Route is one model alias and its deployments.
type Route struct {
	Alias       string
	Deployments []Deployment
	// Strategy overrides Options.Strategy for this alias.
	Strategy Strategy
	// Fallbacks are aliases tried when every deployment failed.
	Fallbacks []string
	// ContextWindowFallbacks are aliases tried when the request does not
	// fit ContextWindow, or the upstream said context_length_exceeded.
	ContextWindowFallbacks []string
	// ContextWindow is the alias's size in tokens; 0 is not checked.
	ContextWindow int
	// Timeouts override the deployments' non-zero fields for this alias.
	Timeouts Timeouts
}

// Observer receives one call per upstream attempt. outcome is "ok" or an
// error Kind's label; ttft is the time to the committing chunk (or to
// failure).
type Observer interface {
	Attempt(provider, model, outcome string, ttft time.Duration)
}

// RouteObserver is an Observer that also counts routing decisions.
type RouteObserver interface {
	// Retry counts an attempt after a request's first.
	Retry(alias string)
	// Fallback counts a move from one alias to another.
	Fallback(from, to string)
	// BreakerState reports a deployment's breaker transition.
	BreakerState(provider, deployment string, s BreakerState)
}

// TokenCounter estimates the prompt tokens of a chat-completions body as
// model would count them.
type TokenCounter func(model string, body []byte) int

// Options configures a Router.
type Options struct {
	Routes   []Route
	Observer Observer // optional; may also be a RouteObserver
	// Timeouts are the defaults for every deployment.
	Timeouts Timeouts
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Strategy is the default strategy; empty means weighted.
	Strategy Strategy
	// MaxAttempts bounds upstream calls per request. Default 3.
	MaxAttempts int
	// Breaker configures the per-deployment breakers.
	Breaker BreakerSettings
	// Cooldowns stores cooldowns; nil means in process only.
	Cooldowns Cooldowns
	// RateLimitCooldown is how long a 429 without Retry-After benches a
	// deployment. Default 5s.
	RateLimitCooldown time.Duration
	// MaxCooldown caps an upstream's Retry-After (or retry-after-ms, or
	// Gemini's retryDelay): the longest a 429 benches a deployment, here or
	// in the shared cooldowns, the longest the router waits before calling
	// it again, and the longest Retry-After passed on to the client. An
	// upstream's "Retry-After: 99999999" once benched a deployment until
	// 2030 (issue 16). Default 5m.
	MaxCooldown time.Duration
	// RetryBase and RetryMax shape the backoff before calling the same
	// deployment again: full jitter over min(RetryMax, RetryBase·2^n).
	// Defaults 200ms and 5s.
	RetryBase, RetryMax time.Duration
	// Price prices deployments (cost strategy, explain); optional.
	Price PriceFunc
	// Tokens counts prompt tokens; nil estimates len(body)/4.
	Tokens TokenCounter
	// Allowed reports whether a team may use an alias (fallbacks to other
	// aliases are checked); nil allows all.
	Allowed func(team, alias string) bool
	// Tracer, when set, starts a span for each upstream attempt (see
	// Tracer); nil traces nothing.
	Tracer Tracer
	// Rand seeds each request's weighted shuffle and draws the retry
	// backoff's jitter; nil means math/rand/v2.
	Rand func() uint64
}

// Router picks deployments for an alias, retries and falls back, and
// commits to the first attempt that produces content. It is the innermost
// Handler.
type Router struct {
	routes    map[string]*Route
	states    map[string]*depState
	order     []*depState
	obs       Observer
	robs      RouteObserver
	cooldowns Cooldowns
	opts      Options
	now       func() time.Time
}

// New checks opts and builds a Router.
func New(opts Options) (*Router, error) {
	r := &Router{routes: make(map[string]*Route, len(opts.Routes)), states: map[string]*depState{},
		obs: opts.Observer, cooldowns: opts.Cooldowns, now: opts.Now}
	r.robs, _ = opts.Observer.(RouteObserver)
	opts.Breaker.defaults()
	setDefault(&opts.MaxAttempts, 3)
	setDefault(&opts.RateLimitCooldown, 5*time.Second)
	setDefault(&opts.MaxCooldown, 5*time.Minute)
	setDefault(&opts.RetryBase, 200*time.Millisecond)
	setDefault(&opts.RetryMax, 5*time.Second)
	r.opts = opts
	if r.now == nil {
		r.now = time.Now
	}
	if r.cooldowns == nil {
		r.cooldowns = NewMemoryCooldowns()
	}
	r.cooldowns = cappedCooldowns{Cooldowns: r.cooldowns, max: opts.MaxCooldown, now: r.now}
	for i := range opts.Routes {
		rt := &opts.Routes[i]
		if err := r.addRoute(i, rt); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Router) addRoute(i int, rt *Route) error {
	if rt.Alias == "" {
		return fmt.Errorf("route %d: empty alias", i)
	}
	if _, dup := r.routes[rt.Alias]; dup {
		return fmt.Errorf("route %q: duplicate alias", rt.Alias)
	}
	if len(rt.Deployments) == 0 {
		return fmt.Errorf("route %q: no deployments", rt.Alias)
	}
	for j := range rt.Deployments {
		d := &rt.Deployments[j]
		if d.Client == nil {
			return fmt.Errorf("route %q: deployment %d has no client", rt.Alias, j)
		}
		if _, ok := r.states[d.ID()]; !ok {
			st := newDepState(d, r.opts.Breaker, r.now, r.breakerChanged)
			r.states[d.ID()] = st
			r.order = append(r.order, st)
		}
	}
	r.routes[rt.Alias] = rt
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Has reports whether alias is routable.
func (r *Router) Has(alias string) bool { _, ok := r.routes[alias]; return ok }

func (r *Router) route(alias string) *Route { return r.routes[alias] }

func (r *Router) breakerChanged(s *depState, st BreakerState) {
	if r.robs != nil {
		r.robs.BreakerState(s.provider, s.id, st)
	}
}

// planInput gathers the facts Plan decides on for req.
func (r *Router) planInput(ctx context.Context, req *ChatRequest) PlanInput {
	in := r.basePlanInput(ctx, req.Model)
	in.MaxTokens = req.MaxTokens
	if rt := r.routes[req.Model]; rt != nil {
		if req.PromptTokens > 0 {
			in.PromptTokens = req.PromptTokens
			if req.PromptTokensExact != nil && r.needsExactPrompt(req.Model, in.PromptTokens+in.MaxTokens, in.Now) {
				in.PromptTokens = req.PromptTokensExact()
			}
		} else if r.opts.Tokens != nil {
			in.PromptTokens = r.opts.Tokens(rt.Deployments[0].Model, req.Body)
		} else {
			in.PromptTokens = len(req.Body) / 4
		}
	}
	return in
}

// needsExactPrompt reports whether a plan for alias could differ between
// a prompt bound (need tokens with the completion cap) and the exact
// count: some alias the plan may reach has a context window below need,
// orders by cost, or has a deployment whose TPM room is below need.
// Otherwise every check passes with the bound as it would with the exact
// count. The TPM room can shrink before the call is admitted; a deployment
// skipped then would be skipped for a slightly smaller request too, and
// the bound taken from its bucket is corrected when the call ends.
func (r *Router) needsExactPrompt(alias string, need int, now time.Time) bool {
	var seen [8]string
	queue := append(seen[:0], alias)
	for i := 0; i < len(queue) && i < 32; i++ {
		rt := r.routes[queue[i]]
		if rt == nil {
			continue
		}
		if (rt.ContextWindow > 0 && need > rt.ContextWindow) || rt.Strategy == StrategyCost ||
			(rt.Strategy == "" && r.opts.Strategy == StrategyCost) {
			return true
		}
		for j := range rt.Deployments {
			d := &rt.Deployments[j]
			if d.TPM <= 0 {
				continue
			}
			if st := r.states[d.ID()]; st != nil && st.tpm != nil && st.tpm.tokensAt(now) < float64(need) {
				return true
			}
		}
		for _, list := range [2][]string{rt.ContextWindowFallbacks, rt.Fallbacks} {
			for _, a := range list {
				if !slices.Contains(queue, a) {
					queue = append(queue, a)
				}
			}
		}
	}
	return false
}

// basePlanInput is the plan input for any call to alias, before sizing.
func (r *Router) basePlanInput(ctx context.Context, alias string) PlanInput {
	in := PlanInput{Alias: alias, Route: r.route, Strategy: r.opts.Strategy, Price: r.opts.Price, Now: r.now()}
	// The closure outlives this copy of in (Serve re-plans with a fresh
	// Now), so it reads the clock itself.
	in.Health = func(d *Deployment) Health { return r.states[d.ID()].health(r.now(), r.cooldowns) }
	if r.opts.Rand != nil {
		in.Seed = r.opts.Rand()
	} else {
		in.Seed = rand.Uint64()
	}
	if r.opts.Allowed != nil {
		id, _ := IdentityFrom(ctx)
		in.Allowed = func(alias string) bool { return r.opts.Allowed(id.Team, alias) }
	}
	return in
}

// Serve implements Handler. req.Result (when set) reports the deployment
// that answered, how many calls were made and the alias that answered when
// it is not req.Model. A DryRun request calls no upstream: Result.Candidates
// receives the plan (as Explain returns it) and the stream is empty.
func (r *Router) Serve(ctx context.Context, req *ChatRequest) (Stream, error) {
	rt, ok := r.routes[req.Model]
	if !ok {
		return nil, modelNotFound(req.Model)
	}
	req, res := req.WithResult()
	res.Alias = req.Model
	if req.DryRun {
		cands, err := r.Explain(ctx, req)
		if err != nil {
			return nil, err
		}
		res.Candidates = cands
		return emptyStream{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, AsError(err)
	}
	cancel := context.CancelFunc(func() {})
	if total := capped(rt.Timeouts.Total, r.opts.Timeouts.Total, req.TimeoutCap); total > 0 {
		ctx, cancel = context.WithTimeout(ctx, total)
	}
	s, err := r.serve(ctx, req, res)
	if err != nil {
		cancel()
		return nil, err
	}
	return &onClose{Stream: s, fn: cancel}, nil
}

// capped is the first non-zero of v and def, lowered to limit when limit
// is positive.
func capped(v, def, limit time.Duration) time.Duration {
	if v == 0 {
		v = def
	}
	if limit > 0 && (v == 0 || limit < v) {
		v = limit
	}
	return v
}

// ModelNotFound is the error for an alias that is unknown or not allowed.
// The name is clipped (Clip): it is the client's, of any length.
func ModelNotFound(model string) *Error { return modelNotFound(model) }

func modelNotFound(model string) *Error {
	return &Error{Kind: KindNotFound, Code: "model_not_found", Param: "model",
		Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", Clip(model))}
}

// attributed returns err as an *Error naming provider. It copies rather
// than sets the field: the *Error belongs to the provider, which may return
// the same value to many concurrent requests.
func attributed(err error, provider string) *Error {
	e := AsError(err)
	if e.Provider != "" {
		return e
	}
	cp := *e
	cp.Provider = provider
	return &cp
}

// onClose runs fn once after the stream is closed.
type onClose struct {
	Stream
	fn   func()
	done bool
}

func (o *onClose) Close() error {
	err := o.Stream.Close()
	if !o.done {
		o.done = true
		o.fn()
	}
	return err
}
