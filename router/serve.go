package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
)

// admission is what admit took for one call: the breaker's report,
// which the call makes exactly once, and the tokens the TPM limiter took.
type admission struct {
	done func(error)
	tpm  int
}

// try makes one admitted call on c and returns nil once the request is
// answered. It reports the outcome to a.done itself: a chat stream does
// so when it ends.
type try func(ctx context.Context, c *Candidate, st *depState, a admission) *Error

// serve routes a chat request through walk; the stream it returns is the
// committed attempt's.
func (r *Router) serve(ctx context.Context, req *ChatRequest, res *Result) (Stream, error) {
	var out Stream
	err := r.walk(ctx, r.planInput(ctx, req), walkCount{&res.Attempts, &res.Fallbacks}, nil, func(ctx context.Context, c *Candidate, st *depState, a admission) *Error {
		r.prepare(req, res, c)
		s, err := r.attempt(ctx, c, st, a, req)
		out = s
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// walkCount is where walk counts: the Result's Attempts and Fallbacks.
type walkCount struct{ attempts, fallbacks *int }

// walk walks the plan: each eligible candidate once, then the first
// eligible one again after a backoff, until a call answers, a failure
// cannot be retried, or max attempts or the deadline run out. It re-plans
// after every failure, so a breaker that just opened or a 429 cooldown
// takes effect within the request. unusable, when set, says why a
// deployment cannot serve the call (SkipNoEmbeddings, SkipNoRerank;
// SkipNone when it can); n counts calls and the fallback aliases called.
func (r *Router) walk(ctx context.Context, in PlanInput, n walkCount, unusable func(*Deployment) Skip, call try) *Error {
	attempts := n.attempts
	var (
		tried    []string
		broken   []string // deployments failed by ErrNotConfigured
		last     *Error
		plan     []Candidate
		retries  int
		fellBack []string
	)
	for guard := 0; *attempts < r.opts.MaxAttempts && guard < 4*r.opts.MaxAttempts+16; guard++ {
		if err := ctx.Err(); err != nil {
			return r.contextError(err, last)
		}
		in.Now = r.now()
		plan = Plan(in)
		for i := range plan {
			c := &plan[i]
			switch {
			case !c.Eligible():
			case unusable != nil && unusable(c.Deployment) != SkipNone:
				c.Skip = unusable(c.Deployment)
			case slices.Contains(broken, c.Deployment.ID()):
				c.Skip = SkipNotConfigured
			}
		}
		c, again := pick(plan, tried)
		if c == nil {
			break
		}
		if again {
			if !r.backoff(ctx, retries, last) {
				break
			}
			retries++
		}
		st := r.states[c.Deployment.ID()]
		done, tpm, skip := st.admit(r.now(), c.Need, r.cooldowns.Get(st.id))
		if skip != SkipNone {
			if again {
				break
			}
			tried = append(tried, c.Deployment.ID())
			continue
		}
		if *attempts > 0 && r.robs != nil {
			r.robs.Retry(in.Alias)
		}
		if c.FallbackFrom != "" && !slices.Contains(fellBack, c.Alias) {
			fellBack = append(fellBack, c.Alias)
			*n.fallbacks = len(fellBack)
			if r.robs != nil {
				r.robs.Fallback(c.FallbackFrom, c.Alias)
			}
		}
		*attempts++
		err := call(ctx, c, st, admission{done: done, tpm: tpm})
		if err == nil {
			return nil
		}
		last = err
		tried = append(tried, c.Deployment.ID())
		if errors.Is(last, ErrNotConfigured) {
			broken = append(broken, c.Deployment.ID())
		}
		if r.overflowed(last, c.Alias) {
			if in.Overflow == nil {
				in.Overflow = map[string]bool{}
			}
			in.Overflow[c.Alias] = true
			continue
		}
		if !retryable(last) {
			return last
		}
	}
	if last != nil {
		return last
	}
	return noDeployment(in.Alias, plan, in.Now)
}

// prepare points req at candidate c for the next attempt and reports the
// attempt in res.
func (r *Router) prepare(req *ChatRequest, res *Result, c *Candidate) {
	req.Target = Target{Provider: c.Deployment.Provider, Model: c.Deployment.Model}
	req.Timeouts = r.timeouts(c, req.TimeoutCap)
	noteTarget(res, req.Target, c.Alias, req.Model)
}

// noteTarget reports the attempt on t, for alias, in res.
func noteTarget(res *Result, t Target, alias, asked string) {
	res.Target = t
	res.FallbackAlias = ""
	if alias != asked {
		res.FallbackAlias = alias
	}
}

// pick returns the first eligible candidate not yet tried, else the first
// eligible one with again set (a retry of the same deployment).
func pick(plan []Candidate, tried []string) (c *Candidate, again bool) {
	var first *Candidate
	for i := range plan {
		p := &plan[i]
		if !p.Eligible() {
			continue
		}
		if first == nil {
			first = p
		}
		if !slices.Contains(tried, p.Deployment.ID()) {
			return p, false
		}
	}
	return first, first != nil
}

// retryable reports failures another call might not have: connection
// errors, timeouts, 408, 409, 429 and 5xx (the adapters map those to the
// Retryable kinds, except 409, which keeps its status).
func retryable(e *Error) bool {
	return e.Retryable() || e.StatusCode() == http.StatusConflict
}

// overflowed reports an upstream context_length_exceeded on alias when a
// context-window fallback can still take the request.
func (r *Router) overflowed(e *Error, alias string) bool {
	if e.Kind != KindInvalidRequest || e.Code != "context_length_exceeded" {
		return false
	}
	rt := r.routes[alias]
	return rt != nil && len(rt.ContextWindowFallbacks) > 0
}

// backoff sleeps before calling the same deployment again: full jitter
// over an exponential cap, at least the upstream's Retry-After. It reports
// false, without sleeping, when the wait would pass the deadline.
func (r *Router) backoff(ctx context.Context, n int, last *Error) bool {
	ceil := min(r.opts.RetryMax, r.opts.RetryBase<<min(n, 20))
	d := time.Duration(r.jitter() * float64(ceil))
	if last != nil && last.RetryAfter > d {
		d = last.RetryAfter
	}
	if dl, ok := ctx.Deadline(); ok && r.now().Add(d).After(dl) {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// jitter is a uniform number in [0, 1) from Options.Rand when set (tests),
// else math/rand/v2.
func (r *Router) jitter() float64 {
	if r.opts.Rand != nil {
		return float64(r.opts.Rand()>>11) / (1 << 53)
	}
	return rand.Float64()
}

// timeouts resolves one attempt's bounds: the alias's non-zero fields over
// the deployment's (the provider's) over the router defaults, each lowered
// to the request's cap.
func (r *Router) timeouts(c *Candidate, limit time.Duration) Timeouts {
	d, def := c.Deployment.Timeouts, r.opts.Timeouts
	var a Timeouts
	if rt := r.routes[c.Alias]; rt != nil {
		a = rt.Timeouts
	}
	choose := func(alias, dep, def time.Duration) time.Duration {
		if alias != 0 {
			return capped(alias, 0, limit)
		}
		return capped(dep, def, limit)
	}
	return Timeouts{
		FirstToken: choose(a.FirstToken, d.FirstToken, def.FirstToken),
		Idle:       choose(a.Idle, d.Idle, def.Idle),
		Total:      choose(a.Total, d.Total, def.Total),
	}
}

// contextError is the error for a request whose context ended: a client
// cancel, or the total deadline (reported with the last upstream failure
// when there was one).
func (r *Router) contextError(err error, last *Error) *Error {
	e := AsError(err)
	if e.Kind == KindUpstreamTimeout {
		e.Message = "request timed out"
		if last != nil {
			e.Message += " after: " + last.Message
		}
	}
	return e
}

// noDeployment is the error when the plan has nothing eligible. The
// client sees only the alias and when to come back: Retry-After is the
// soonest end of a cooldown, an open breaker or a limiter's refill. The
// candidates and why each was skipped name configured providers and
// models, so they go in Err, which is logged and never sent. When every
// deployment is merely rate limited it is a 429.
func noDeployment(alias string, plan []Candidate, now time.Time) *Error {
	var reasons []string
	var soonest time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (soonest.IsZero() || t.Before(soonest)) {
			soonest = t
		}
	}
	limited := len(plan) > 0
	for i := range plan {
		c := &plan[i]
		name := c.Alias
		if c.Deployment != nil {
			name += " " + c.Deployment.ID()
		}
		reasons = append(reasons, name+": "+c.SkipText())
		h := &c.Health
		switch c.Skip {
		case SkipRPM:
			earlier(refill(now, 1-h.RPMLeft, h.RPM))
		case SkipTPM:
			if c.Need <= h.TPM {
				earlier(refill(now, float64(c.Need)-h.TPMLeft, h.TPM))
			}
		case SkipCooldown:
			if h.Cooldown.Reason != CooldownRateLimited {
				limited = false
			}
			earlier(h.Cooldown.Until)
		case SkipBreakerOpen:
			limited = false
			if !h.Reopen.IsZero() {
				earlier(h.Reopen)
			} else {
				earlier(h.Cooldown.Until) // another replica's, or a probe in flight
			}
		default:
			limited = false
		}
	}
	e := &Error{Kind: KindNoProvider, Code: "no_healthy_deployment",
		Message: fmt.Sprintf("no healthy deployment for model %q; retry later", alias),
		Err:     errors.New("every candidate skipped: " + strings.Join(reasons, "; "))}
	if limited {
		e.Kind, e.Code = KindUpstreamRateLimited, "rate_limit_exceeded"
	}
	if !soonest.IsZero() {
		// Whole seconds, rounded up: Retry-After is sent in seconds and a
		// client that comes back early is skipped again.
		e.RetryAfter = max(soonest.Sub(now), time.Second)
		e.RetryAfter = (e.RetryAfter + time.Second - 1).Truncate(time.Second)
	}
	return e
}

// refill is when a limiter of perMinute tokens regains missing ones.
func refill(now time.Time, missing float64, perMinute int) time.Time {
	if perMinute <= 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(max(missing, 0) / float64(perMinute) * float64(time.Minute)))
}
