package router

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// BreakerSettings configures every deployment's circuit breaker.
type BreakerSettings struct {
	// FailureRatio opens the breaker once failures/(requests-exclusions)
	// reach it. Default 0.5.
	FailureRatio float64
	// MinRequests is how many counted requests the window needs first.
	// Default 10.
	MinRequests int
	// Window is the rolling window, kept in ten buckets. Default 60s.
	Window time.Duration
	// OpenFor is how long an open breaker rejects. Default 30s.
	OpenFor time.Duration
	// HalfOpenProbes is how many requests a half-open breaker admits; that
	// many successes close it. Default 2.
	HalfOpenProbes int
}

func (b *BreakerSettings) defaults() {
	if b.FailureRatio <= 0 {
		b.FailureRatio = 0.5
	}
	if b.MinRequests <= 0 {
		b.MinRequests = 10
	}
	if b.Window <= 0 {
		b.Window = time.Minute
	}
	if b.OpenFor <= 0 {
		b.OpenFor = 30 * time.Second
	}
	if b.HalfOpenProbes <= 0 {
		b.HalfOpenProbes = 2
	}
}

// ewmaAlpha weighs the newest TTFT sample.
const ewmaAlpha = 0.2

// depState is the live state of one deployment, shared by every alias
// that routes to the same provider and model.
type depState struct {
	id, provider, model string
	cb                  *gobreaker.TwoStepCircuitBreaker[struct{}]
	rpm                 *rate.Limiter
	tpm                 *tokenBucket
	rpmN, tpmN          int
	inflight            atomic.Int64
	// opened is set by the breaker's state hook (which runs under the
	// breaker's lock) and reopen by a failed remote probe (remote.go);
	// both are consumed after the call, where sharing the open state may
	// block on a network.
	opened, reopen atomic.Bool
	// reopenAt is when the open breaker admits probes again (unix nanos
	// by the router's clock; 0 while closed).
	reopenAt atomic.Int64
	// remote is the half-open state for a breaker another replica opened
	// (remote.go).
	remote remoteProbe
	mu     sync.Mutex
	ewma   time.Duration
}

// newDepState builds d's breaker and limiters; onChange sees every
// breaker transition and now is the router's clock.
func newDepState(d *Deployment, bs BreakerSettings, now func() time.Time, onChange func(*depState, BreakerState)) *depState {
	s := &depState{id: d.ID(), provider: d.Provider, model: d.Model, rpmN: d.RPM, tpmN: d.TPM}
	s.remote.probes = bs.HalfOpenProbes
	if d.RPM > 0 {
		s.rpm = rate.NewLimiter(rate.Limit(float64(d.RPM)/60), d.RPM)
	}
	if d.TPM > 0 {
		s.tpm = newTokenBucket(d.TPM)
	}
	ratio, minReq := bs.FailureRatio, uint32(bs.MinRequests)
	s.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         s.id,
		MaxRequests:  uint32(bs.HalfOpenProbes),
		Interval:     bs.Window,
		BucketPeriod: bs.Window / 10,
		Timeout:      bs.OpenFor,
		// Exclusions still count in Requests (DEPS.md), so the ratio is
		// taken over the requests that were judged.
		ReadyToTrip: func(c gobreaker.Counts) bool {
			judged := c.Requests - min(c.TotalExclusions, c.Requests)
			return judged >= minReq && float64(c.TotalFailures) >= ratio*float64(judged)
		},
		IsExcluded:   breakerExcluded,
		IsSuccessful: func(err error) bool { return err == nil || !AsError(err).Retryable() },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			st := breakerState(to)
			if st == BreakerOpen {
				s.reopenAt.Store(now().Add(bs.OpenFor).UnixNano())
				s.opened.Store(true)
			} else {
				s.reopenAt.Store(0)
			}
			if onChange != nil {
				onChange(s, st)
			}
		},
	})
	return s
}

// breakerExcluded reports outcomes that say nothing about the upstream's
// health: the client left, or the upstream asked us to slow down (a 429
// becomes a cooldown instead).
func breakerExcluded(err error) bool {
	if err == nil {
		return false
	}
	k := AsError(err).Kind
	return k == KindCanceled || k == KindUpstreamRateLimited
}

func breakerState(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// health snapshots the state for Plan.
func (s *depState) health(now time.Time, cd Cooldowns) Health {
	h := Health{Breaker: breakerState(s.cb.State()), Inflight: int(s.inflight.Load()), RPM: s.rpmN, TPM: s.tpmN}
	if cd != nil {
		h.Cooldown = cd.Get(s.id)
	}
	if h.Breaker == BreakerClosed {
		h.Breaker = s.remote.state(h.Cooldown, now)
	}
	if at := s.reopenAt.Load(); at != 0 && h.Breaker == BreakerOpen {
		h.Reopen = time.Unix(0, at)
	}
	s.mu.Lock()
	h.Latency = s.ewma
	s.mu.Unlock()
	if s.rpm != nil {
		h.RPMLeft = s.rpm.TokensAt(now)
	}
	if s.tpm != nil {
		h.TPMLeft = s.tpm.tokensAt(now)
	}
	return h
}

// admit takes the deployment's quota for a request of need tokens and
// asks its breaker; cd is the deployment's cooldown, which may make the
// call a probe (remote.go). On SkipNone the caller must call done exactly
// once, and settleTPM with the tokens taken, tpm.
func (s *depState) admit(now time.Time, need int, cd Cooldown) (done func(error), tpm int, skip Skip) {
	probe := false
	if cd.Reason == CooldownBreakerOpen {
		var ok bool
		if probe, ok = s.remote.acquire(cd, now, s.cb.State() == gobreaker.StateClosed); !ok {
			return nil, 0, SkipBreakerOpen
		}
	}
	release := func() {
		if probe {
			s.remote.release()
		}
	}
	if s.rpm != nil && !s.rpm.AllowN(now, 1) {
		release()
		return nil, 0, SkipRPM
	}
	if s.tpm != nil {
		tpm = max(need, 1)
		if !s.tpm.take(now, tpm) {
			release()
			return nil, 0, SkipTPM
		}
	}
	done, err := s.cb.Allow()
	if err != nil {
		release()
		s.settleTPM(now, tpm, nil, true)
		return nil, 0, SkipBreakerOpen
	}
	if probe {
		done = s.remote.wrap(cd.Until, done, &s.reopen)
	}
	return done, tpm, SkipNone
}

// settleTPM corrects the TPM limiter once a call has ended: took tokens
// were taken at admission, u is the usage the upstream reported (nil when
// none arrived: the estimate stands, since the upstream may well have
// counted the prompt). refund returns them all (the call never went out).
func (s *depState) settleTPM(now time.Time, took int, u *Usage, refund bool) {
	if s.tpm == nil || took == 0 {
		return
	}
	switch {
	case refund:
		s.tpm.adjust(now, took)
	case u != nil:
		used := u.TotalTokens
		if used == 0 {
			used = u.PromptTokens + u.CompletionTokens
		}
		if used > 0 {
			s.tpm.adjust(now, took-used)
		}
	}
}

// observeTTFT folds one time-to-first-token sample into the EWMA.
func (s *depState) observeTTFT(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ewma == 0 {
		s.ewma = d
		return
	}
	s.ewma = time.Duration(ewmaAlpha*float64(d) + (1-ewmaAlpha)*float64(s.ewma))
}
