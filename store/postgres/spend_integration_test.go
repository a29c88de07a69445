//go:build integration

package postgres

import (
	"context"
	"testing"
	"time"

	"llmproxy/budget"
)

// TestPeriodSpend sums a bucket's rows in [from, to): the team's, one
// key's, one alias's, each with tokens = prompt + completion.
func TestPeriodSpend(t *testing.T) {
	t.Parallel()
	db, _ := mustOpenDB(t)
	ctx := context.Background()
	if err := db.WriteBatch(ctx, sample()); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	day2 := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	end := day2.AddDate(0, 0, 1)
	tests := []struct {
		name     string
		sel      budget.SpendSelector
		from, to time.Time
		want     budget.Amount
	}{
		{"team, both days", budget.SpendSelector{Team: "a"}, day2.AddDate(0, 0, -1), end, budget.Amount{Tokens: 28, NanoUSD: 1_750_000_000}},
		{"team, second day", budget.SpendSelector{Team: "a"}, day2, end, budget.Amount{Tokens: 11, NanoUSD: 1_000_000_000}},
		{"one key", budget.SpendSelector{Team: "a", KeyID: "key_1"}, day2.AddDate(0, 0, -1), end, budget.Amount{Tokens: 15, NanoUSD: 500_000_000}},
		{"one alias", budget.SpendSelector{Team: "b", Alias: "emb"}, day2, end, budget.Amount{Tokens: 100, NanoUSD: 10_000_000}},
		{"key and alias", budget.SpendSelector{Team: "a", KeyID: "key_1", Alias: "gpt"}, day2.AddDate(0, 0, -1), end, budget.Amount{Tokens: 15, NanoUSD: 500_000_000}},
		{"to excludes", budget.SpendSelector{Team: "a"}, day2.AddDate(0, 0, -1), day2, budget.Amount{Tokens: 17, NanoUSD: 750_000_000}},
		{"no rows", budget.SpendSelector{Team: "c"}, day2, end, budget.Amount{}},
	}
	for _, tc := range tests {
		got, err := db.PeriodSpend(ctx, tc.sel, tc.from, tc.to)
		if err != nil || got != tc.want {
			t.Errorf("%s: PeriodSpend(%+v) = %+v, %v; want %+v", tc.name, tc.sel, got, err, tc.want)
		}
	}
}
