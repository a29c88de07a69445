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
	rpm, tpm            *rate.Limiter
	rpmN, tpmN          int
	inflight            atomic.Int64
	// opened is set by the breaker's state hook (which runs under the
	// breaker's lock) and consumed after the call, where sharing the open
	// state may block on a network.
	opened atomic.Bool
	mu     sync.Mutex
	ewma   time.Duration
}

// newDepState builds d's breaker and limiters; onChange sees every
// breaker transition.
func newDepState(d *Deployment, bs BreakerSettings, onChange func(*depState, BreakerState)) *depState {
	s := &depState{id: d.ID(), provider: d.Provider, model: d.Model, rpmN: d.RPM, tpmN: d.TPM}
	if d.RPM > 0 {
		s.rpm = rate.NewLimiter(rate.Limit(float64(d.RPM)/60), d.RPM)
	}
	if d.TPM > 0 {
		s.tpm = rate.NewLimiter(rate.Limit(float64(d.TPM)/60), d.TPM)
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
				s.opened.Store(true)
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
	s.mu.Lock()
	h.Latency = s.ewma
	s.mu.Unlock()
	if s.rpm != nil {
		h.RPMLeft = s.rpm.TokensAt(now)
	}
	if s.tpm != nil {
		h.TPMLeft = s.tpm.TokensAt(now)
	}
	return h
}

// admit takes the deployment's quota for a request of need tokens and
// asks its breaker. On SkipNone the caller must call done exactly once.
func (s *depState) admit(now time.Time, need int) (done func(error), skip Skip) {
	if s.rpm != nil && !s.rpm.AllowN(now, 1) {
		return nil, SkipRPM
	}
	if s.tpm != nil && !s.tpm.AllowN(now, max(need, 1)) {
		return nil, SkipTPM
	}
	done, err := s.cb.Allow()
	if err != nil {
		return nil, SkipBreakerOpen
	}
	return done, SkipNone
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
