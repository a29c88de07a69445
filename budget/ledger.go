package budget

import (
	"context"
	"fmt"
	"math"
	"time"
)

// NanoPerUSD converts dollars to the integer unit ledgers count in: whole
// nano-dollars add exactly in Redis (a float counter drifts), and 2^53
// nano-dollars is about 9 million USD per bucket and period.
const NanoPerUSD = 1e9

// Amount is usage in the two units budgets count.
type Amount struct {
	Tokens  int64
	NanoUSD int64
}

// USD returns the amount's dollars.
func (a Amount) USD() float64 { return float64(a.NanoUSD) / NanoPerUSD }

// ToNano converts dollars to nano-dollars, rounding up so that estimates
// never undercount.
func ToNano(usd float64) int64 { return int64(math.Ceil(usd*NanoPerUSD - 1e-6)) }

// Period is a calendar budget period in UTC.
type Period string

// The budget periods.
const (
	Day   Period = "day"
	Week  Period = "week" // ISO weeks: Monday 00:00 UTC
	Month Period = "month"
)

// Bounds returns the period containing t: [start, end).
func (p Period) Bounds(t time.Time) (start, end time.Time) {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch p {
	case Week:
		start = d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
		return start, start.AddDate(0, 0, 7)
	case Month:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	default:
		return d, d.AddDate(0, 0, 1)
	}
}

// Bucket is one budget a request is charged to, in its current period.
// A zero dimension of Limit is unlimited.
type Bucket struct {
	// Team is the owning team: ledgers shard and hash-tag keys by it.
	Team string
	// ID names the bucket within the team: "team", "key:<id>",
	// "model:<alias>".
	ID    string
	Limit Amount
	// Start and End bound the current period; Start is part of the key, so
	// a new period starts from zero.
	Start, End time.Time
}

// Limit is one rate limit a request counts against: a token bucket that
// holds a minute's worth and refills continuously.
type Limit struct {
	// Team is the owning team, or "" for a per-alias limit shared by all
	// teams.
	Team string
	// ID names the limiter: "team", "key:<id>", "model:<alias>".
	ID       string
	RPM, TPM int64
}

// Reservation asks a ledger for room for one request: the prompt, plus
// between MinCompletion and MaxCompletion completion tokens, the most that
// fits every bucket. Completion counts every choice of the request (n
// choices of the per-choice cap). Rate limits need one request and, in tokens, the
// prompt plus MinCompletion; they are charged the prompt plus the granted
// completion and refunded on Settle.
type Reservation struct {
	// ID identifies the reservation; Settle with the same ID is idempotent.
	ID      string
	Buckets []Bucket
	Limits  []Limit
	// Prompt is what the request costs before any completion.
	Prompt Amount
	// NanoPerToken is the price of one completion token.
	NanoPerToken  float64
	MinCompletion int64
	MaxCompletion int64
	// TTL bounds how long an unsettled reservation is remembered (a
	// replica that died mid-request): the worst case stays charged.
	TTL time.Duration
}

// charge is what granting n completion tokens costs each bucket.
func (r *Reservation) charge(n int64) Amount {
	return Amount{Tokens: r.Prompt.Tokens + n, NanoUSD: r.Prompt.NanoUSD + int64(math.Ceil(float64(n)*r.NanoPerToken))}
}

// Grant is an admitted reservation.
type Grant struct {
	// Completion is the completion cap granted, in [MinCompletion,
	// MaxCompletion].
	Completion int64
	// Charged is what each bucket was charged.
	Charged Amount
	// Spent is each bucket's spend after the charge, in Buckets order:
	// settled spend plus the reservations in flight (this one included).
	Spent []Amount
	// Settled is each bucket's settled spend, in Buckets order: what
	// Settle recorded, without any reservation in flight. Budget shares
	// and the remaining-budget header read it.
	Settled []Amount
	// Rate is the tightest rate limit after the charge.
	Rate RateState
}

// RateState is what OpenAI's x-ratelimit-* headers report: the tightest of
// the limits a request counted against. Zero limits mean none applied.
type RateState struct {
	LimitRequests, RemainingRequests int64
	ResetRequests                    time.Duration
	LimitTokens, RemainingTokens     int64
	ResetTokens                      time.Duration
}

// LimitError is a ledger's refusal: the request does not fit a budget
// (Rate false) or a rate limit (Rate true).
type LimitError struct {
	Rate bool
	// ID is the bucket or limiter that refused.
	ID string
	// RetryAfter is when a rate limit will have room again.
	RetryAfter time.Duration
	// State is the rate-limit state for the response headers.
	State RateState
}

func (e *LimitError) Error() string {
	if e.Rate {
		return fmt.Sprintf("rate limit %s exceeded, retry after %s", e.ID, e.RetryAfter)
	}
	return fmt.Sprintf("budget %s exhausted", e.ID)
}

// Ledger holds budgets, rate limits and reservations: in process
// (Memory) or shared by replicas (store/redis). Reserve checks every
// bucket and limit and charges them in one atomic step, returning a
// *LimitError when the request does not fit; any other error means the
// ledger itself failed.
type Ledger interface {
	Reserve(ctx context.Context, r Reservation) (Grant, error)
	// Settle replaces the reservation's charge by actual and refunds the
	// rate-limit tokens it did not use. A second Settle for the same ID,
	// or one after the reservation expired, does nothing.
	Settle(ctx context.Context, r Reservation, actual Amount) error
	// Spent reports each bucket's spend in its current period.
	Spent(ctx context.Context, buckets []Bucket) ([]Amount, error)
}

// SettledLedger is a Ledger that can also report settled spend: each
// bucket's spend in its current period without the reservations in
// flight (Grant.Settled without a reservation). The downgrade ladder reads
// it on a replica's first request for a team; a Ledger without it is read
// with Spent, which counts the reservations in flight too.
type SettledLedger interface {
	Ledger
	Settled(ctx context.Context, buckets []Bucket) ([]Amount, error)
}

// fitCompletion is the completion cap that fits every bucket given its
// spend, or -1 with the index of the refusing bucket. Memory and the Redis
// script implement the same arithmetic.
func fitCompletion(r *Reservation, spent []Amount) (n int64, refused int) {
	n = r.MaxCompletion
	for i, b := range r.Buckets {
		if b.Limit.Tokens > 0 {
			n = min(n, b.Limit.Tokens-spent[i].Tokens-r.Prompt.Tokens)
		}
		if b.Limit.NanoUSD > 0 {
			left := b.Limit.NanoUSD - spent[i].NanoUSD - r.Prompt.NanoUSD
			if left < 0 {
				n = -1
			} else if r.NanoPerToken > 0 {
				n = min(n, int64(float64(left)/r.NanoPerToken))
			}
		}
		if n < r.MinCompletion {
			return -1, i
		}
	}
	return n, -1
}
