package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// TestPending: queued records count in Pending by team, key, alias and
// period until their batch is written, and leave it once written.
func TestPending(t *testing.T) {
	release := make(chan struct{})
	w := &fakeWriter{write: func(ctx context.Context, _ int, _ []Record) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	l := mustNew(t, Options{Writer: w, BatchSize: 100, FlushEvery: 10 * time.Millisecond})
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	at := day.Add(10 * time.Hour)
	recs := []Record{
		{Time: at, Team: "a", KeyID: "k1", Alias: "gpt", PromptTokens: 10, CompletionTokens: 5, CostUSD: 0.5},
		{Time: at, Team: "a", KeyID: "k2", Alias: "gpt", PromptTokens: 1, CompletionTokens: 1, CostUSD: 0.25},
		{Time: at, Team: "a", KeyID: "k1", Alias: "mini", PromptTokens: 3, CostUSD: 0.125},
		{Time: day.Add(-time.Hour), Team: "a", KeyID: "k1", Alias: "gpt", PromptTokens: 100, CostUSD: 8},
		{Time: at, Team: "b", KeyID: "k3", Alias: "gpt", PromptTokens: 1000, CostUSD: 64},
	}
	for _, r := range recs {
		l.Add(r)
	}
	now := at.Add(time.Minute)
	tests := []struct {
		name       string
		key, alias string
		from, to   time.Time
		tokens     int64
		cost       float64
	}{
		{"team, today", "", "", day, now, 20, 0.875},
		{"one key", "k1", "", day, now, 18, 0.625},
		{"one alias", "", "gpt", day, now, 17, 0.75},
		{"key and alias", "k1", "gpt", day, now, 15, 0.5},
		{"since yesterday", "", "", day.AddDate(0, 0, -1), now, 120, 8.875},
		{"before the records", "", "", day, at, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, cost := l.Pending("a", tc.key, tc.alias, tc.from, tc.to)
			if tok != tc.tokens || cost != tc.cost {
				t.Errorf("Pending(a, %q, %q) = %d, %g; want %d, %g", tc.key, tc.alias, tok, cost, tc.tokens, tc.cost)
			}
		})
	}
	close(release)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tok, cost := l.Pending("a", "", "", day.AddDate(0, 0, -1), now); tok != 0 || cost != 0 {
		t.Errorf("Pending after the write = %d, %g; want 0", tok, cost)
	}
}

// TestUnavailableIsRetriedUntilWritten: a batch the writer refuses with
// ErrUnavailable is kept past Retries and written once the store is back;
// any other error still drops it after Retries.
func TestUnavailableIsRetriedUntilWritten(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantWrite  uint64
		wantFailed uint64
	}{
		{"store down", fmt.Errorf("%w: connection refused", ErrUnavailable), 4, 0},
		{"bad batch", errors.New("constraint violated"), 0, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &fakeWriter{write: func(_ context.Context, call int, _ []Record) error {
				if call <= 10 {
					return tc.err
				}
				return nil
			}}
			l := mustNew(t, Options{Writer: w, BatchSize: 4, Retries: 2, RetryBackoff: time.Millisecond, MaxRetryBackoff: 2 * time.Millisecond,
				Log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
			for i := range 4 {
				l.Add(rec(i))
			}
			if err := l.Close(context.Background()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			st := l.Stats()
			if st.Written != tc.wantWrite || st.DroppedFailed != tc.wantFailed || st.Queued != 0 {
				t.Errorf("written, dropped_failed, queued = %d, %d, %d; want %d, %d, 0", st.Written, st.DroppedFailed, st.Queued, tc.wantWrite, tc.wantFailed)
			}
		})
	}
}
