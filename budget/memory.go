package budget

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Memory is the in-process Ledger: one replica's budgets and limits, and
// the fallback a fail_open guard uses while Redis is down. One mutex makes
// Reserve atomic across every bucket and limit; it is held for
// microseconds.
type Memory struct {
	mu    sync.Mutex
	now   func() time.Time
	spent map[string]*memBucket
	rpm   map[string]*rate.Limiter
	tpm   map[string]*tokenBucket
	res   map[string]memReservation
	swept time.Time
	// rebuild makes Reserve refuse buckets not seeded yet (memory_seed.go).
	rebuild bool
}

type memBucket struct {
	start time.Time
	Amount
	// held is what reservations in flight charged; Amount - held is the
	// settled spend (see settled).
	held Amount
	// seeded: the spend of earlier processes was added (memory_seed.go).
	seeded bool
}

// settled is the bucket's spend without the reservations in flight.
func (b *memBucket) settled() Amount {
	return Amount{Tokens: b.Tokens - b.held.Tokens, NanoUSD: b.NanoUSD - b.held.NanoUSD}
}

type memReservation struct {
	charged Amount
	tpm     int64 // tokens taken from each TPM bucket
	expires time.Time
}

var _ SettledLedger = (*Memory)(nil)

// NewMemory returns an empty in-process ledger. now is the clock (nil:
// time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, spent: map[string]*memBucket{}, rpm: map[string]*rate.Limiter{},
		tpm: map[string]*tokenBucket{}, res: map[string]memReservation{}}
}

func limitKey(l Limit) string { return l.Team + "\x00" + l.ID }

func (m *Memory) bucket(b Bucket) *memBucket {
	k := b.Team + "\x00" + b.ID
	mb := m.spent[k]
	if mb == nil || !mb.start.Equal(b.Start) {
		mb = &memBucket{start: b.Start} // a new period starts from zero
		m.spent[k] = mb
	}
	return mb
}

// rpmLimiter is x/time/rate's token bucket: a minute's worth of requests,
// refilled continuously.
func (m *Memory) rpmLimiter(l Limit) *rate.Limiter {
	k := limitKey(l)
	lim := m.rpm[k]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(float64(l.RPM)/60), int(l.RPM))
		m.rpm[k] = lim
	}
	return lim
}

// tpmBucket is our own token bucket: x/time/rate cannot refund part of a
// reservation (Reservation.Cancel restores nothing once it took effect),
// and TPM is charged the worst case and refunded on Settle.
func (m *Memory) tpmBucket(l Limit, now time.Time) *tokenBucket {
	k := limitKey(l)
	tb := m.tpm[k]
	if tb == nil {
		tb = &tokenBucket{capacity: float64(l.TPM), level: float64(l.TPM), at: now}
		m.tpm[k] = tb
	}
	tb.refill(now)
	return tb
}

// Reserve implements Ledger.
func (m *Memory) Reserve(_ context.Context, r Reservation) (Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if now.Sub(m.swept) > time.Minute {
		m.sweep(now)
	}
	var g Grant
	// Rate limits first: a refusal there is retryable, a budget is not.
	need := float64(r.Prompt.Tokens + r.MinCompletion)
	for _, l := range r.Limits {
		if l.RPM > 0 {
			lim := m.rpmLimiter(l)
			if lv := lim.TokensAt(now); lv < 1 {
				st := rpmState(l, lv)
				return Grant{}, &LimitError{Rate: true, ID: l.ID, RetryAfter: secs((1 - lv) * 60 / float64(l.RPM)), State: st}
			}
		}
		if l.TPM > 0 {
			tb := m.tpmBucket(l, now)
			if want := math.Min(need, tb.capacity); tb.level < want {
				return Grant{}, &LimitError{Rate: true, ID: l.ID, RetryAfter: secs((want - tb.level) * 60 / float64(l.TPM)), State: tpmState(l, tb.level)}
			}
		}
	}
	spent := make([]Amount, len(r.Buckets))
	mbs := make([]*memBucket, len(r.Buckets))
	for i, b := range r.Buckets {
		mbs[i] = m.bucket(b)
		spent[i] = mbs[i].Amount
	}
	if err := m.unseeded(mbs); err != nil {
		return Grant{}, err
	}
	n, refused := fitCompletion(&r, spent)
	if refused >= 0 {
		return Grant{}, &LimitError{ID: r.Buckets[refused].ID}
	}
	g.Completion, g.Charged = n, r.charge(n)
	g.Spent = spent
	g.Settled = make([]Amount, len(mbs))
	for i := range mbs {
		mbs[i].Tokens += g.Charged.Tokens
		mbs[i].NanoUSD += g.Charged.NanoUSD
		mbs[i].held.Tokens += g.Charged.Tokens
		mbs[i].held.NanoUSD += g.Charged.NanoUSD
		g.Spent[i] = mbs[i].Amount
		g.Settled[i] = mbs[i].settled()
	}
	tok := r.Prompt.Tokens + n
	for _, l := range r.Limits {
		if l.RPM > 0 {
			lim := m.rpmLimiter(l)
			lim.AllowN(now, 1)
			g.Rate.tighten(rpmState(l, lim.TokensAt(now)), RateState{})
		}
		if l.TPM > 0 {
			tb := m.tpmBucket(l, now)
			tb.take(float64(tok))
			g.Rate.tighten(RateState{}, tpmState(l, tb.level))
		}
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = 15 * time.Minute
	}
	m.res[r.ID] = memReservation{charged: g.Charged, tpm: tok, expires: now.Add(ttl)}
	return g, nil
}

// Settle implements Ledger.
func (m *Memory) Settle(_ context.Context, r Reservation, actual Amount) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	res, ok := m.res[r.ID]
	if !ok {
		return nil
	}
	delete(m.res, r.ID)
	now := m.now()
	for _, b := range r.Buckets {
		mb := m.bucket(b)
		if !mb.start.Equal(b.Start) {
			continue
		}
		mb.Tokens += actual.Tokens - res.charged.Tokens
		mb.NanoUSD += actual.NanoUSD - res.charged.NanoUSD
		mb.held.Tokens -= res.charged.Tokens
		mb.held.NanoUSD -= res.charged.NanoUSD
	}
	for _, l := range r.Limits {
		if l.TPM > 0 {
			m.tpmBucket(l, now).take(float64(actual.Tokens - res.tpm))
		}
	}
	return nil
}

// Spent implements Ledger.
func (m *Memory) Spent(_ context.Context, buckets []Bucket) ([]Amount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Amount, len(buckets))
	for i, b := range buckets {
		out[i] = m.bucket(b).Amount
	}
	return out, nil
}

// Settled implements SettledLedger.
func (m *Memory) Settled(_ context.Context, buckets []Bucket) ([]Amount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Amount, len(buckets))
	for i, b := range buckets {
		out[i] = m.bucket(b).settled()
	}
	return out, nil
}

// sweep forgets expired reservations; their worst case stays charged.
func (m *Memory) sweep(now time.Time) {
	m.swept = now
	for id, r := range m.res {
		if now.After(r.expires) {
			delete(m.res, id)
		}
	}
}

// tokenBucket holds up to capacity tokens and refills capacity per
// minute. A charge larger than the level leaves it negative (debt), so a
// request bigger than the whole minute still gets through once and the
// average rate holds.
type tokenBucket struct {
	capacity, level float64
	at              time.Time
}

func (b *tokenBucket) refill(now time.Time) {
	if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.level = math.Min(b.capacity, b.level+dt*b.capacity/60)
		b.at = now
	}
}

func (b *tokenBucket) take(n float64) {
	b.level = math.Max(-b.capacity, math.Min(b.capacity, b.level-n))
}

func secs(s float64) time.Duration { return time.Duration(math.Ceil(s*1000)) * time.Millisecond }

func rpmState(l Limit, level float64) RateState {
	lv := math.Max(level, 0)
	return RateState{LimitRequests: l.RPM, RemainingRequests: int64(lv), ResetRequests: secs((float64(l.RPM) - lv) * 60 / float64(l.RPM))}
}

func tpmState(l Limit, level float64) RateState {
	lv := math.Max(level, 0)
	return RateState{LimitTokens: l.TPM, RemainingTokens: int64(lv), ResetTokens: secs((float64(l.TPM) - level) * 60 / float64(l.TPM))}
}

// tighten keeps, per dimension, the limit with the fewest remaining.
func (s *RateState) tighten(req, tok RateState) {
	if req.LimitRequests > 0 && (s.LimitRequests == 0 || req.RemainingRequests < s.RemainingRequests) {
		s.LimitRequests, s.RemainingRequests, s.ResetRequests = req.LimitRequests, req.RemainingRequests, req.ResetRequests
	}
	if tok.LimitTokens > 0 && (s.LimitTokens == 0 || tok.RemainingTokens < s.RemainingTokens) {
		s.LimitTokens, s.RemainingTokens, s.ResetTokens = tok.LimitTokens, tok.RemainingTokens, tok.ResetTokens
	}
}
