//go:build integration

package redis

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"llmproxy/budget"
)

// TestBudgetsRebuildMarkers: with RebuildFromLedger, Reserve charges
// nothing and names the buckets without a marker; concurrent Seeds apply
// one sum (SET NX); a counter that outlived its marker keeps the larger
// value; after the keys are lost, Reserve asks again.
func TestBudgetsRebuildMarkers(t *testing.T) {
	c := mustBudgetRedis(t)
	b := c.Budgets().RebuildFromLedger()
	ctx := context.Background()
	start, end := budget.Day.Bounds(time.Now())
	team := budget.Bucket{Team: "t", ID: "team", Limit: budget.Amount{Tokens: 1000}, Start: start, End: end}
	key := budget.Bucket{Team: "t", ID: "key:k", Limit: budget.Amount{Tokens: 1000}, Start: start, End: end}
	r := budget.Reservation{ID: "r1", Buckets: []budget.Bucket{team, key}, Prompt: budget.Amount{Tokens: 10}, MinCompletion: 16, MaxCompletion: 100}

	_, err := b.Reserve(ctx, r)
	var ue *budget.UnseededError
	if !errors.As(err, &ue) || len(ue.Buckets) != 2 || ue.Buckets[0] != 0 || ue.Buckets[1] != 1 {
		t.Fatalf("Reserve before seeding = %v; want UnseededError for buckets [0 1]", err)
	}
	// The key's counter survived without its marker (written before
	// markers existed): the seed must not lower it.
	if err := c.rdb.HSet(ctx, b.bucketKey(key), "t", 700, "n", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := b.Seed(ctx, team, budget.Amount{Tokens: 800}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := b.Seed(ctx, key, budget.Amount{Tokens: 500}); err != nil {
		t.Fatal(err)
	}
	if idx, err := b.Unseeded(ctx, r.Buckets); err != nil || len(idx) != 0 {
		t.Fatalf("Unseeded after seeding = %v, %v; want none", idx, err)
	}
	sp, err := b.Spent(ctx, r.Buckets)
	if err != nil || sp[0].Tokens != 800 || sp[1].Tokens != 700 {
		t.Fatalf("Spent after seeding = %+v, %v; want team 800 (one of eight seeds), key 700 (kept)", sp, err)
	}
	g, err := b.Reserve(ctx, r)
	if err != nil || g.Completion != 100 {
		t.Fatalf("Reserve after seeding = %+v, %v; want 100 granted", g, err)
	}
	if ttl := c.rdb.TTL(ctx, b.markerKey(team)).Val(); ttl <= 0 || ttl > end.Sub(time.Now())+25*time.Hour {
		t.Errorf("marker TTL = %v; want until a day after the period ends", ttl)
	}
	// Lose everything: Reserve must ask for a rebuild again.
	if err := c.rdb.Del(ctx, b.bucketKey(team), b.markerKey(team), b.bucketKey(key), b.markerKey(key)).Err(); err != nil {
		t.Fatal(err)
	}
	r.ID = "r2"
	if _, err := b.Reserve(ctx, r); !errors.As(err, &ue) || len(ue.Buckets) != 2 {
		t.Fatalf("Reserve after losing the keys = %v; want UnseededError", err)
	}
	// Without RebuildFromLedger nothing changes: a missing counter is zero.
	if _, err := c.Budgets().Reserve(ctx, r); err != nil {
		t.Fatalf("Reserve without markers = %v; want granted", err)
	}
}
