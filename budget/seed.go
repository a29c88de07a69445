package budget

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Rebuilding lost counters from the usage ledger (issue 17 item 6).
//
// Budget counters live in Redis or in process, and both can be lost: a
// FLUSHDB, a Redis restart, a proxy restart without Redis. The usage
// ledger (store/sqlite, store/postgres) is the source of truth, so a
// counter that is missing is rebuilt from it before any request is
// admitted against it:
//
//   - A ledger that can lose counters reports a bucket it has no counter
//     for with *UnseededError instead of admitting; the guard asks its
//     SpendSource for the bucket's period-to-date spend, hands it to the
//     ledger's Seed, and reserves again. Only the first request per bucket
//     and period (or after a loss) pays for the query; the common path
//     stays one Reserve round trip.
//   - store/redis keeps a marker key per bucket and period and seeds with
//     SET NX on the marker, so replicas that race to seed apply one sum;
//     the counter takes the larger of what it holds and the sum, so a
//     counter that survived (an upgrade, a marker evicted alone) is never
//     lowered.
//   - The in-process Memory counts everything this process charged, so it
//     is seeded with what earlier processes charged: ledger rows that
//     arrived before the guard was built.
//
// What the sum can miss, and so what a rebuilt counter can undercount:
//   - Records still queued in memory, not yet written: the SpendSource
//     cmd/proxy builds adds this replica's queue (ledger.Ledger.Pending).
//     Other replicas' queues are not visible: at most their last
//     FlushEvery (1 s) of settled spend, or, while their database writes
//     fail, what their queue holds (ledger.Options.Capacity records).
//   - Requests in flight when the counter was lost: their reservation was
//     lost with it, so their settlement changes nothing, and their rows
//     reach the ledger after the sum was taken. They count again at the
//     next rebuild (the next period, or the next loss).
//
// If the SpendSource fails (the database is down), the reservation fails
// like a ledger outage: 503, or the in-process fallback under fail_open;
// the bucket stays unseeded and the next request tries again.

// SpendSelector picks the usage-ledger rows one bucket counts: a team's,
// optionally narrowed to one API key or one model alias.
type SpendSelector struct {
	Team string
	// KeyID is the key's safe id ("key_…"); empty is every key.
	KeyID string
	// Alias is the model alias; empty is every alias.
	Alias string
}

// SpendSource answers period-to-date spend from the usage ledger:
// store/sqlite and store/postgres, wrapped by cmd/proxy so that records
// still queued in memory count too.
type SpendSource interface {
	// PeriodSpend sums tokens (prompt plus completion) and cost of the
	// rows sel picks whose time lies in [from, to).
	PeriodSpend(ctx context.Context, sel SpendSelector, from, to time.Time) (Amount, error)
}

// Seeder is a Ledger whose counters can be lost and rebuilt. Its Reserve
// returns *UnseededError for buckets without a counter.
type Seeder interface {
	// Seed sets b's counter from a once per period: a later Seed for the
	// same bucket and period does nothing.
	Seed(ctx context.Context, b Bucket, a Amount) error
	// Unseeded lists the indexes of buckets without a counter.
	Unseeded(ctx context.Context, buckets []Bucket) ([]int, error)
}

// UnseededError is a ledger's answer to a reservation whose buckets have
// no counter yet: Buckets are their indexes in Reservation.Buckets.
type UnseededError struct{ Buckets []int }

func (e *UnseededError) Error() string {
	return fmt.Sprintf("budget counters not rebuilt yet for buckets %v", e.Buckets)
}

// selectorOf is the ledger selector of a bucket, from its ID ("team",
// "key:<id>", "model:<alias>").
func selectorOf(b Bucket) SpendSelector {
	sel := SpendSelector{Team: b.Team}
	switch {
	case strings.HasPrefix(b.ID, "key:"):
		sel.KeyID = strings.TrimPrefix(b.ID, "key:")
	case strings.HasPrefix(b.ID, "model:"):
		sel.Alias = strings.TrimPrefix(b.ID, "model:")
	}
	return sel
}

// reserveSeeded reserves r on led and, when led reports buckets without a
// counter, rebuilds them from the usage ledger and reserves again. Each
// step has its own OpTimeout: the rebuild is the rare path, and a burst of
// first requests must not time out the database query it waits for.
func (g *Guard) reserveSeeded(ctx context.Context, led Ledger, r Reservation) (Grant, error) {
	gr, err := g.reserveOnce(ctx, led, r)
	var ue *UnseededError
	if !errors.As(err, &ue) {
		return gr, err
	}
	sd, ok := led.(Seeder)
	if !ok {
		return Grant{}, err
	}
	for _, i := range ue.Buckets {
		if i < 0 || i >= len(r.Buckets) {
			return Grant{}, fmt.Errorf("rebuild budget: %w", err)
		}
		if err := g.seed(ctx, led, sd, r.Buckets[i]); err != nil {
			return Grant{}, err
		}
	}
	return g.reserveOnce(ctx, led, r)
}

func (g *Guard) reserveOnce(ctx context.Context, led Ledger, r Reservation) (Grant, error) {
	rctx, cancel := context.WithTimeout(ctx, g.opTimeout)
	defer cancel()
	return led.Reserve(rctx, r)
}

// seedCall is one rebuild in progress; requests for the same bucket wait
// for it instead of each querying the database (a burst of first
// requests would otherwise send one query each).
type seedCall struct {
	done chan struct{}
	err  error
}

// seed rebuilds one bucket's counter, once at a time per bucket and
// ledger in this process: concurrent callers share the first one's result.
func (g *Guard) seed(ctx context.Context, led Ledger, sd Seeder, b Bucket) error {
	k := fmt.Sprintf("%p\x00%s\x00%s\x00%d", led, b.Team, b.ID, b.Start.Unix())
	g.seedMu.Lock()
	if c, ok := g.seeding[k]; ok {
		g.seedMu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := &seedCall{done: make(chan struct{})}
	if g.seeding == nil {
		g.seeding = map[string]*seedCall{}
	}
	g.seeding[k] = c
	g.seedMu.Unlock()
	// Others wait on this call: a client that leaves must not fail them.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.opTimeout)
	c.err = g.seedOnce(octx, led, sd, b)
	cancel()
	g.seedMu.Lock()
	delete(g.seeding, k)
	g.seedMu.Unlock()
	close(c.done)
	return c.err
}

// seedOnce queries the ledger and seeds. The in-process primary ledger
// counts from the guard's start, so it takes the rows before that; a
// shared ledger takes everything up to now.
func (g *Guard) seedOnce(ctx context.Context, led Ledger, sd Seeder, b Bucket) error {
	var a Amount
	to := g.now()
	if led == g.ledger && g.inProcess {
		to = g.started
	}
	if g.spend != nil && to.After(b.Start) {
		var err error
		if a, err = g.spend.PeriodSpend(ctx, selectorOf(b), b.Start, to); err != nil {
			return fmt.Errorf("rebuild budget %s from the usage ledger: %w", b.ID, err)
		}
	}
	if err := sd.Seed(ctx, b, a); err != nil {
		return fmt.Errorf("rebuild budget %s: %w", b.ID, err)
	}
	return nil
}

// spent is Ledger.Spent on the primary ledger with lost counters rebuilt
// first, for Status and the downgrade ladder.
func (g *Guard) spent(ctx context.Context, buckets []Bucket) ([]Amount, error) {
	if err := g.seedMissing(ctx, buckets); err != nil {
		return nil, err
	}
	return g.ledger.Spent(ctx, buckets)
}

// seedMissing rebuilds those of buckets whose counter the ledger lost.
func (g *Guard) seedMissing(ctx context.Context, buckets []Bucket) error {
	sd, ok := g.ledger.(Seeder)
	if !ok {
		return nil
	}
	idx, err := sd.Unseeded(ctx, buckets)
	if err != nil {
		return err
	}
	for _, i := range idx {
		if err := g.seed(ctx, g.ledger, sd, buckets[i]); err != nil {
			return err
		}
	}
	return nil
}
