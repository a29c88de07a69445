package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"llmproxy/budget"
)

// Budgets is the shared budget.Ledger: every replica reserves and settles
// against the same counters, so N replicas spend one budget, not N.
//
// Keys, all under the client's prefix and hash-tagged by team so one
// request's script touches one Cluster slot:
//
//	{b:<team>}:bud:<bucket>:<period start unix>  hash t (tokens), n (nano-USD),
//	                                             rt, rn (held by reservations in flight)
//	{b:<team>}:rl:<limiter>                      hash rq, rqt, tk, tkt (token buckets)
//	{b:<team>}:res:<reservation id>              what the reservation charged, expiring
//
// Per-alias rate limits are shared by all teams and live under {b:}; a
// request that has one touches two slots, which a single Redis (the
// supported deployment) runs in the same script; Redis Cluster would need
// the alias limit moved to its own call.
type Budgets struct {
	c       *Client
	reserve *goredis.Script
	settle  *goredis.Script
	// seed is set by RebuildFromLedger (budget_seed.go).
	seed *goredis.Script
}

var _ budget.SettledLedger = (*Budgets)(nil)

// Budgets returns the budget ledger on c.
func (c *Client) Budgets() *Budgets {
	return &Budgets{c: c, reserve: goredis.NewScript(reserveLua), settle: goredis.NewScript(settleLua)}
}

func (b *Budgets) tag(team string) string { return "{b:" + team + "}" }

func (b *Budgets) bucketKey(k budget.Bucket) string {
	return b.c.key(b.tag(k.Team), "bud", k.ID, strconv.FormatInt(k.Start.Unix(), 10))
}

func (b *Budgets) limitKey(l budget.Limit) string { return b.c.key(b.tag(l.Team), "rl", l.ID) }

func (b *Budgets) resKey(r budget.Reservation) string {
	team := ""
	switch {
	case len(r.Buckets) > 0:
		team = r.Buckets[0].Team
	case len(r.Limits) > 0:
		team = r.Limits[0].Team
	}
	return b.c.key(b.tag(team), "res", r.ID)
}

func (b *Budgets) keys(r budget.Reservation) []string {
	keys := make([]string, 0, 1+len(r.Buckets)+len(r.Limits))
	keys = append(keys, b.resKey(r))
	for _, k := range r.Buckets {
		keys = append(keys, b.bucketKey(k))
	}
	for _, l := range r.Limits {
		keys = append(keys, b.limitKey(l))
	}
	if b.seed != nil {
		for _, k := range r.Buckets {
			keys = append(keys, b.markerKey(k))
		}
	}
	return keys
}

// Reserve implements budget.Ledger in one EVALSHA round trip: rate limits
// and every budget are checked, then all charged, atomically.
func (b *Budgets) Reserve(ctx context.Context, r budget.Reservation) (budget.Grant, error) {
	ttl := r.TTL
	if ttl <= 0 {
		ttl = 15 * time.Minute
	}
	args := make([]any, 0, 8+3*len(r.Buckets)+2*len(r.Limits))
	args = append(args, ttl.Milliseconds(), len(r.Buckets), len(r.Limits), r.Prompt.Tokens, r.Prompt.NanoUSD,
		strconv.FormatFloat(r.NanoPerToken, 'g', -1, 64), r.MinCompletion, r.MaxCompletion)
	for _, k := range r.Buckets {
		args = append(args, k.Limit.Tokens, k.Limit.NanoUSD, k.End.Unix())
	}
	for _, l := range r.Limits {
		args = append(args, l.RPM, l.TPM)
	}
	v, err := b.reserve.Run(ctx, b.c.rdb, b.keys(r), args...).Int64Slice()
	if err != nil {
		return budget.Grant{}, fmt.Errorf("reserve budget: %w", err)
	}
	if len(v) < 2 {
		return budget.Grant{}, fmt.Errorf("reserve budget: short reply %v", v)
	}
	switch v[0] {
	case 2, 3: // rpm or tpm: limiter index, retry ms, then its state
		l := r.Limits[v[1]-1]
		var st budget.RateState
		if len(v) >= 9 {
			st = rateState(v[3:9])
		}
		return budget.Grant{}, &budget.LimitError{Rate: true, ID: l.ID, RetryAfter: time.Duration(v[2]) * time.Millisecond, State: st}
	case 4:
		return budget.Grant{}, &budget.LimitError{ID: r.Buckets[v[1]-1].ID}
	case 5:
		return budget.Grant{}, unseeded(v[1:])
	}
	g := budget.Grant{Completion: v[1], Charged: budget.Amount{Tokens: v[2], NanoUSD: v[3]}}
	i := 4
	for range r.Buckets {
		g.Spent = append(g.Spent, budget.Amount{Tokens: v[i], NanoUSD: v[i+1]})
		i += 2
	}
	for range r.Limits {
		st := rateState(v[i : i+6])
		g.Rate = tightest(g.Rate, st)
		i += 6
	}
	for range r.Buckets {
		if i+1 >= len(v) {
			break
		}
		g.Settled = append(g.Settled, budget.Amount{Tokens: v[i], NanoUSD: v[i+1]})
		i += 2
	}
	return g, nil
}

// rateState reads rpm, requests left, reset ms, tpm, tokens left, reset ms.
func rateState(v []int64) budget.RateState {
	var st budget.RateState
	if v[0] > 0 {
		st.LimitRequests, st.RemainingRequests, st.ResetRequests = v[0], max(v[1], 0), time.Duration(v[2])*time.Millisecond
	}
	if v[3] > 0 {
		st.LimitTokens, st.RemainingTokens, st.ResetTokens = v[3], max(v[4], 0), time.Duration(v[5])*time.Millisecond
	}
	return st
}

func tightest(a, b budget.RateState) budget.RateState {
	if b.LimitRequests > 0 && (a.LimitRequests == 0 || b.RemainingRequests < a.RemainingRequests) {
		a.LimitRequests, a.RemainingRequests, a.ResetRequests = b.LimitRequests, b.RemainingRequests, b.ResetRequests
	}
	if b.LimitTokens > 0 && (a.LimitTokens == 0 || b.RemainingTokens < a.RemainingTokens) {
		a.LimitTokens, a.RemainingTokens, a.ResetTokens = b.LimitTokens, b.RemainingTokens, b.ResetTokens
	}
	return a
}

// Settle implements budget.Ledger. The reservation key makes it
// idempotent: the first Settle deletes it, later ones find nothing.
func (b *Budgets) Settle(ctx context.Context, r budget.Reservation, actual budget.Amount) error {
	args := make([]any, 0, 4+len(r.Limits))
	args = append(args, len(r.Buckets), len(r.Limits), actual.Tokens, actual.NanoUSD)
	for _, l := range r.Limits {
		args = append(args, l.TPM)
	}
	if err := b.settle.Run(ctx, b.c.rdb, b.keys(r), args...).Err(); err != nil {
		return fmt.Errorf("settle budget: %w", err)
	}
	return nil
}

// Spent implements budget.Ledger.
func (b *Budgets) Spent(ctx context.Context, buckets []budget.Bucket) ([]budget.Amount, error) {
	return b.read(ctx, buckets, "t", "n")
}

// Settled implements budget.SettledLedger: t and n less what reservations
// in flight hold (rt, rn; see budget_lua.go).
func (b *Budgets) Settled(ctx context.Context, buckets []budget.Bucket) ([]budget.Amount, error) {
	return b.read(ctx, buckets, "t", "n", "rt", "rn")
}

// read reads the fields of every bucket: tokens and nano-USD, less the
// held ones when four fields are asked.
func (b *Budgets) read(ctx context.Context, buckets []budget.Bucket, fields ...string) ([]budget.Amount, error) {
	cmds := make([]*goredis.SliceCmd, len(buckets))
	_, err := b.c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range buckets {
			cmds[i] = p.HMGet(ctx, b.bucketKey(k), fields...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read budget: %w", err)
	}
	out := make([]budget.Amount, len(buckets))
	for i, c := range cmds {
		v := c.Val()
		out[i] = budget.Amount{Tokens: toInt(v[0]), NanoUSD: toInt(v[1])}
		if len(v) == 4 {
			out[i].Tokens -= max(toInt(v[2]), 0)
			out[i].NanoUSD -= max(toInt(v[3]), 0)
		}
	}
	return out, nil
}

func toInt(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
