package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"llmproxy/budget"
	"llmproxy/ledger"
	"llmproxy/store/sqlite"
)

// TestUsageStoreSpendCountsQueued: a bucket rebuilt from the ledger counts
// the rows in the database and the records still in this replica's queue,
// which a FLUSHDB right after a burst would otherwise lose.
func TestUsageStoreSpendCountsQueued(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := connectUsage(func(context.Context) (dbStore, error) { return db, nil }, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	written := ledger.Record{Time: now, RequestID: "w", Team: "t", KeyID: "k", Alias: "a", PromptTokens: 10, CompletionTokens: 5, CostUSD: 0.5}
	if err := st.WriteBatch(ctx, []ledger.Record{written}); err != nil {
		t.Fatal(err)
	}
	// FlushEvery an hour: what is added stays queued during the test.
	l, err := ledger.New(ledger.Options{Writer: st, FlushEvery: time.Hour, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(ctx) })
	st.queue.Store(l)
	l.Add(ledger.Record{Time: now, RequestID: "q1", Team: "t", KeyID: "k", Alias: "a", PromptTokens: 1, CompletionTokens: 2, CostUSD: 0.25})
	l.Add(ledger.Record{Time: now, RequestID: "q2", Team: "t", KeyID: "other", Alias: "a", PromptTokens: 100, CostUSD: 4})
	start, _ := budget.Day.Bounds(now)
	tests := []struct {
		sel  budget.SpendSelector
		want budget.Amount
	}{
		{budget.SpendSelector{Team: "t"}, budget.Amount{Tokens: 118, NanoUSD: 4_750_000_000}},
		{budget.SpendSelector{Team: "t", KeyID: "k"}, budget.Amount{Tokens: 18, NanoUSD: 750_000_000}},
	}
	for _, tc := range tests {
		got, err := st.PeriodSpend(ctx, tc.sel, start, now.Add(time.Second))
		if err != nil || got != tc.want {
			t.Errorf("PeriodSpend(%+v) = %+v, %v; want %+v (database plus queue)", tc.sel, got, err, tc.want)
		}
	}
}

// TestUsageStoreNotConnected: before the database answers, writes and
// reads fail with ledger.ErrUnavailable, which the ledger retries and
// /v1/usage turns into 503.
func TestUsageStoreNotConnected(t *testing.T) {
	st := &usageStore{log: slog.New(slog.DiscardHandler), cancel: func() {}}
	ctx := context.Background()
	if err := st.WriteBatch(ctx, []ledger.Record{{Team: "t"}}); !isUnavailable(err) {
		t.Errorf("WriteBatch = %v; want ErrUnavailable", err)
	}
	if _, err := st.Usage(ctx, ledger.Filter{}); !isUnavailable(err) {
		t.Errorf("Usage = %v; want ErrUnavailable", err)
	}
	if _, err := st.PeriodSpend(ctx, budget.SpendSelector{Team: "t"}, time.Now(), time.Now()); !isUnavailable(err) {
		t.Errorf("PeriodSpend = %v; want ErrUnavailable", err)
	}
}

// slowWriter commits a batch to the database, then holds the write open
// until release is closed: the moment a batch is in the database and
// still in the ledger's pending index.
type slowWriter struct {
	ledger.Writer
	committed chan struct{}
	release   chan struct{}
}

func (w *slowWriter) WriteBatch(ctx context.Context, batch []ledger.Record) error {
	err := w.Writer.WriteBatch(ctx, batch)
	close(w.committed)
	<-w.release
	return err
}

// TestUsageStoreSpendDuringWrite: a rebuild that reads while a batch is
// both committed and still pending counts it once (the ledger's write
// sequence makes the two reads consistent), not twice.
func TestUsageStoreSpendDuringWrite(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := connectUsage(func(context.Context) (dbStore, error) { return db, nil }, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { st.Close() })
	w := &slowWriter{Writer: st, committed: make(chan struct{}), release: make(chan struct{})}
	l, err := ledger.New(ledger.Options{Writer: w, FlushEvery: 10 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(ctx) })
	st.queue.Store(l)
	now := time.Now().UTC()
	l.Add(ledger.Record{Time: now, RequestID: "r", Team: "t", KeyID: "k", Alias: "a", PromptTokens: 7, CostUSD: 0.5})
	<-w.committed
	time.AfterFunc(25*time.Millisecond, func() { close(w.release) })
	start, _ := budget.Day.Bounds(now)
	got, err := st.PeriodSpend(ctx, budget.SpendSelector{Team: "t"}, start, now.Add(time.Second))
	if want := (budget.Amount{Tokens: 7, NanoUSD: 500_000_000}); err != nil || got != want {
		t.Errorf("PeriodSpend during a write = %+v, %v; want %+v (the record once)", got, err, want)
	}
}
