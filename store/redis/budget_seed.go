package redis

import (
	"context"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"llmproxy/budget"
)

// Rebuilding counters from the usage ledger (issue 17 item 6; see
// budget/seed.go). A FLUSHDB or a Redis restart loses every counter; the
// marker key
//
//	{b:<team>}:seed:<bucket>:<period start unix>
//
// says that the bucket's counter was seeded from the ledger this period.
// It is written with the counter, in one script, and expires with it.
// While it is missing, Reserve answers *budget.UnseededError and charges
// nothing; the guard sums the ledger and calls Seed, which sets the marker
// with SET NX, so replicas racing to seed apply one sum.

var _ budget.Seeder = (*Budgets)(nil)

// seedLua: KEYS[1] marker, KEYS[2] counter. ARGV: tokens, nano-USD,
// expire-at (unix seconds). The counter keeps the larger of what it holds
// and the ledger's sum, per dimension: a counter that outlived its marker
// (one written before markers existed, or a marker evicted alone) already
// counts requests still in flight, which the ledger does not.
const seedLua = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'EXAT', ARGV[3]) then return 0 end
local h = redis.call('HMGET', KEYS[2], 't', 'n')
if tonumber(ARGV[1]) > (tonumber(h[1]) or 0) then redis.call('HSET', KEYS[2], 't', ARGV[1]) end
if tonumber(ARGV[2]) > (tonumber(h[2]) or 0) then redis.call('HSET', KEYS[2], 'n', ARGV[2]) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIREAT', KEYS[2], ARGV[3]) end
return 1
`

// RebuildFromLedger returns b with lost counters detected: Reserve checks
// each bucket's marker in the same script (no extra round trip) and
// answers *budget.UnseededError when one is missing. cmd/proxy turns it on
// whenever the guard has the usage ledger to rebuild from.
func (b *Budgets) RebuildFromLedger() *Budgets {
	nb := *b
	nb.seed = goredis.NewScript(seedLua)
	return &nb
}

func (b *Budgets) markerKey(k budget.Bucket) string {
	return b.c.key(b.tag(k.Team), "seed", k.ID, strconv.FormatInt(k.Start.Unix(), 10))
}

// Seed implements budget.Seeder. Keys expire a day after the period ends,
// like the counter.
func (b *Budgets) Seed(ctx context.Context, k budget.Bucket, a budget.Amount) error {
	if b.seed == nil {
		return nil
	}
	err := b.seed.Run(ctx, b.c.rdb, []string{b.markerKey(k), b.bucketKey(k)},
		a.Tokens, a.NanoUSD, k.End.Unix()+86400).Err()
	if err != nil {
		return fmt.Errorf("seed budget: %w", err)
	}
	return nil
}

// Unseeded implements budget.Seeder: one EXISTS per bucket, pipelined.
func (b *Budgets) Unseeded(ctx context.Context, buckets []budget.Bucket) ([]int, error) {
	if b.seed == nil || len(buckets) == 0 {
		return nil, nil
	}
	cmds := make([]*goredis.IntCmd, len(buckets))
	_, err := b.c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range buckets {
			cmds[i] = p.Exists(ctx, b.markerKey(k))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read budget markers: %w", err)
	}
	var idx []int
	for i, c := range cmds {
		if c.Val() == 0 {
			idx = append(idx, i)
		}
	}
	return idx, nil
}

// unseeded reads the script's {5, buckets...} reply (1-based).
func unseeded(v []int64) error {
	idx := make([]int, len(v))
	for i, n := range v {
		idx[i] = int(n) - 1
	}
	return &budget.UnseededError{Buckets: idx}
}
