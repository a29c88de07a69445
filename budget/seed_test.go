package budget

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// spendFunc is a SpendSource made of a function.
type spendFunc func(ctx context.Context, sel SpendSelector, from, to time.Time) (Amount, error)

func (f spendFunc) PeriodSpend(ctx context.Context, sel SpendSelector, from, to time.Time) (Amount, error) {
	return f(ctx, sel, from, to)
}

// TestMemoryRebuildsFromLedger: with a SpendSource, the in-process ledger
// adds what earlier processes spent (rows before the guard started) once
// per bucket before admitting, and a failing source refuses nothing
// silently: the reservation fails and the next one asks again.
func TestMemoryRebuildsFromLedger(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	start, end := Day.Bounds(now)
	var calls atomic.Int32
	var fail atomic.Bool
	var asked []SpendSelector
	src := spendFunc(func(_ context.Context, sel SpendSelector, from, to time.Time) (Amount, error) {
		calls.Add(1)
		if fail.Load() {
			return Amount{}, errors.New("database down")
		}
		if !from.Equal(start) || !to.Equal(now) {
			t.Errorf("PeriodSpend range [%v, %v); want [%v, %v)", from, to, start, now)
		}
		asked = append(asked, sel)
		return Amount{Tokens: 900, NanoUSD: 9}, nil
	})
	g, err := NewGuard(GuardOptions{Spend: src, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	team := Bucket{Team: "t", ID: "team", Limit: Amount{Tokens: 1000}, Start: start, End: end}
	key := Bucket{Team: "t", ID: "key:key_1", Limit: Amount{Tokens: 1000}, Start: start, End: end}
	r := Reservation{ID: "r1", Buckets: []Bucket{team, key}, Prompt: Amount{Tokens: 10}, MinCompletion: 16, MaxCompletion: 200}

	fail.Store(true)
	if _, _, err := g.reserve(context.Background(), r); err == nil {
		t.Fatal("reserve with the ledger down succeeded; want an error (no fallback)")
	}
	fail.Store(false)
	gr, _, err := g.reserve(context.Background(), r)
	if err != nil {
		t.Fatalf("reserve = %v", err)
	}
	if gr.Completion != 90 {
		t.Errorf("granted %d completion tokens; want 90 (1000 - 900 spent before - 10 prompt)", gr.Completion)
	}
	want := []SpendSelector{{Team: "t"}, {Team: "t", KeyID: "key_1"}}
	if len(asked) != 2 || asked[0] != want[0] || asked[1] != want[1] {
		t.Errorf("selectors asked = %+v; want %+v", asked, want)
	}
	before := calls.Load()
	r.ID = "r2"
	if _, _, err := g.reserve(context.Background(), r); err == nil {
		t.Error("second reserve fits; want refused: 900 + 100 charged of 1000")
	}
	if calls.Load() != before {
		t.Errorf("ledger asked %d more times; want once per bucket and period", calls.Load()-before)
	}
}

// TestMemorySeedOnce: concurrent seeds of one bucket add one sum.
func TestMemorySeedOnce(t *testing.T) {
	m := NewMemory(nil)
	m.RebuildFromLedger()
	start, end := Day.Bounds(time.Now())
	b := Bucket{Team: "t", ID: "team", Start: start, End: end}
	if idx, _ := m.Unseeded(context.Background(), []Bucket{b}); len(idx) != 1 {
		t.Fatalf("Unseeded = %v; want [0]", idx)
	}
	for range 3 {
		_ = m.Seed(context.Background(), b, Amount{Tokens: 5, NanoUSD: 7})
	}
	sp, _ := m.Spent(context.Background(), []Bucket{b})
	if sp[0] != (Amount{Tokens: 5, NanoUSD: 7}) {
		t.Errorf("spent after three seeds = %+v; want one sum {5 7}", sp[0])
	}
}
