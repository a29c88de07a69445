package router

import (
	"sync"
	"time"
)

// tokenBucket is the per-deployment TPM limiter. Unlike rate.Limiter it
// can be corrected after the fact: admission takes the request's estimate
// (prompt plus completion cap), and when the stream ends the actual usage
// refunds the difference or charges it. A charge may leave the bucket in
// debt, which later requests wait out, just as the upstream's own TPM
// window would make them.
type tokenBucket struct {
	mu     sync.Mutex
	perSec float64
	burst  float64
	tokens float64
	last   time.Time
}

// newTokenBucket holds tpm tokens, refilled at tpm per minute.
func newTokenBucket(tpm int) *tokenBucket {
	return &tokenBucket{perSec: float64(tpm) / 60, burst: float64(tpm), tokens: float64(tpm)}
}

// advance refills the bucket up to now; callers hold mu.
func (b *tokenBucket) advance(now time.Time) {
	if b.last.IsZero() {
		b.last = now
		return
	}
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt.Seconds()*b.perSec)
		b.last = now
	}
}

// tokensAt reports what the bucket would grant at now.
func (b *tokenBucket) tokensAt(now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	return b.tokens
}

// take removes n tokens if the bucket has them.
func (b *tokenBucket) take(now time.Time, n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	if float64(n) > b.tokens {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// adjust adds delta tokens: a refund when positive (never above the
// burst), a charge when negative. A charge may put the bucket in debt, of
// at most one burst, so one misreported usage cannot bench a deployment
// for longer than a minute.
func (b *tokenBucket) adjust(now time.Time, delta int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	b.tokens = max(-b.burst, min(b.burst, b.tokens+float64(delta)))
}
