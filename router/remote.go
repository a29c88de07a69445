package router

import (
	"sync"
	"sync/atomic"
	"time"
)

// remoteProbe is one deployment's half-open state for a breaker that
// another replica opened.
//
// A replica whose breaker opens publishes a CooldownBreakerOpen cooldown
// ending open_for later; with shared Cooldowns every other replica skips
// the deployment until then (SkipCooldown), though its own breaker never
// saw a failure and stays closed. When the cooldown ends, such a replica
// does not send it full traffic at once: the deployment is half-open
// here, and the first half_open_probes requests to reach it are probes
// while the rest go elsewhere (SkipBreakerOpen, as a local half-open
// breaker would answer). A probe that succeeds settles the cooldown and
// the deployment is closed again; one that fails as the breaker counts
// failures publishes a fresh breaker_open cooldown, benching it on every
// replica for another open_for; one that says nothing about the upstream
// (the client left, a 429) frees its slot for the next request to probe.
// Each replica probes on its own, so up to replicas × half_open_probes
// requests may probe at once. The replica whose own breaker opened lets
// that breaker run its half-open state instead, and a cooldown is settled
// only once: the state is keyed by its end, to the millisecond that the
// shared store keeps.
type remoteProbe struct {
	mu sync.Mutex
	// probes is how many probes may be in flight (half_open_probes).
	probes   int
	inflight int
	// settled is the end, in unix ms, of the last breaker_open cooldown
	// settled here.
	settled int64
}

// pending reports whether cd is a breaker_open cooldown that has ended
// and not been settled here; callers hold mu.
func (p *remoteProbe) pending(cd Cooldown, now time.Time) bool {
	return cd.Reason == CooldownBreakerOpen && !cd.Until.IsZero() && !now.Before(cd.Until) &&
		cd.Until.UnixMilli() != p.settled
}

// state is the breaker state to report while the local breaker is closed.
func (p *remoteProbe) state(cd Cooldown, now time.Time) BreakerState {
	if cd.Reason != CooldownBreakerOpen {
		return BreakerClosed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !p.pending(cd, now):
		return BreakerClosed
	case p.inflight >= p.probes:
		return BreakerOpen
	}
	return BreakerHalfOpen
}

// acquire decides whether a call admitted now is a probe. ok is false when
// it would be one but every probe slot is taken; a probe must end with
// release or through wrap's done.
func (p *remoteProbe) acquire(cd Cooldown, now time.Time, localClosed bool) (probe, ok bool) {
	if !localClosed {
		return false, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.pending(cd, now) {
		return false, true
	}
	if p.inflight >= p.probes {
		return false, false
	}
	p.inflight++
	return true, true
}

// release frees a probe slot whose call never went out.
func (p *remoteProbe) release() {
	p.mu.Lock()
	p.inflight--
	p.mu.Unlock()
}

// settle marks the breaker_open cooldown ending at until as handled here.
func (p *remoteProbe) settle(until time.Time) {
	p.mu.Lock()
	p.settled = until.UnixMilli()
	p.mu.Unlock()
}

// wrap makes done, the breaker's report for a probe of the cooldown ending
// at until, also settle the probe; a failure sets reopen, so the caller
// publishes a fresh breaker_open cooldown.
func (p *remoteProbe) wrap(until time.Time, done func(error), reopen *atomic.Bool) func(error) {
	return func(err error) {
		done(err)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.inflight--
		switch {
		case err != nil && breakerExcluded(err):
			// Says nothing about the upstream: the next request probes.
		case err == nil || !AsError(err).Retryable():
			p.settled = until.UnixMilli()
		default:
			// Left pending until the fresh cooldown replaces this one, so
			// a request in between is a probe too, not full traffic.
			reopen.Store(true)
		}
	}
}
