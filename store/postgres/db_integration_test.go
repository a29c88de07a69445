//go:build integration

package postgres

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"llmproxy/ledger"
	"llmproxy/store"
	"llmproxy/store/postgres/pgtest"
)

// mustOpenDB opens a DB in a fresh schema of the test database
// (pgtest.Schema), so tests run in parallel.
func mustOpenDB(tb testing.TB) (*DB, string) {
	tb.Helper()
	u := pgtest.Schema(tb, "llmproxy_test_")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := Open(ctx, u)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, u
}

var day1 = time.Date(2025, 3, 1, 23, 59, 0, 0, time.UTC)

func sample() []ledger.Record {
	day2 := day1.Add(2 * time.Minute)
	return []ledger.Record{
		{Time: day1, RequestID: "r1", Route: "chat", Team: "a", KeyID: "key_1", Alias: "gpt", Provider: "p", Model: "m",
			PromptTokens: 10, CompletionTokens: 5, CachedTokens: 2, CostUSD: 0.5, Latency: 1500 * time.Microsecond, TTFT: time.Millisecond,
			Status: 200, Outcome: "ok", Stream: true},
		{Time: day1, RequestID: "r2", Route: "chat", Team: "a", Alias: "gpt", PromptTokens: 1, CompletionTokens: 1,
			CostUSD: 0.25, Status: 502, Outcome: "upstream_error", Estimated: true},
		{Time: day2, RequestID: "r3", Route: "chat", Team: "a", Alias: "gpt", PromptTokens: 7, ReasoningTokens: 3, CompletionTokens: 4, CostUSD: 1, Status: 200, Outcome: "ok"},
		// A time in another zone is stored as the same instant.
		{Time: day2.In(time.FixedZone("X", -5*3600)), RequestID: "r4", Route: "embeddings", Team: "b", Alias: "emb", PromptTokens: 100, CostUSD: 0.01, Status: 200, Outcome: "ok"},
	}
}

func TestWriteAndUsage(t *testing.T) {
	t.Parallel()
	db, _ := mustOpenDB(t)
	ctx := context.Background()
	if err := db.WriteBatch(ctx, sample()); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	all := ledger.Filter{From: day1.Add(-time.Hour), To: day1.Add(time.Hour)}
	tests := []struct {
		name string
		f    ledger.Filter
		want []ledger.Row
	}{
		{"every team, by day", all, []ledger.Row{
			{Day: "2025-03-01", Team: "a", Alias: "gpt", Requests: 2, Failed: 1, Estimated: 1, PromptTokens: 11, CompletionTokens: 6, CachedTokens: 2, CostUSD: 0.75},
			{Day: "2025-03-02", Team: "a", Alias: "gpt", Requests: 1, PromptTokens: 7, CompletionTokens: 4, ReasoningTokens: 3, CostUSD: 1},
			{Day: "2025-03-02", Team: "b", Alias: "emb", Requests: 1, PromptTokens: 100, CostUSD: 0.01},
		}},
		{"one team", ledger.Filter{Team: "b", From: all.From, To: all.To}, []ledger.Row{
			{Day: "2025-03-02", Team: "b", Alias: "emb", Requests: 1, PromptTokens: 100, CostUSD: 0.01},
		}},
		{"to is exclusive", ledger.Filter{From: all.From, To: day1}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.Usage(ctx, tc.f)
			if err != nil {
				t.Fatalf("Usage: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Usage = %+v; want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("Usage[%d] = %+v; want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
	var lat, ttft int64
	var stream bool
	if err := db.pool.QueryRow(ctx, `SELECT latency_us, ttft_us, stream FROM usage_ledger WHERE request_id = 'r1'`).Scan(&lat, &ttft, &stream); err != nil {
		t.Fatalf("read r1: %v", err)
	}
	if lat != 1500 || ttft != 1000 || !stream {
		t.Errorf("r1 latency_us, ttft_us, stream = %d, %d, %v; want 1500, 1000, true", lat, ttft, stream)
	}
}

func TestReopenMigratesOnce(t *testing.T) {
	t.Parallel()
	_, u := mustOpenDB(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 { // replicas starting together
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(ctx, u)
			if err == nil {
				err = db.WriteBatch(ctx, sample())
				db.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Open/WriteBatch: %v", err)
		}
	}
	db, err := Open(ctx, u)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	var rows, versions int
	if err := db.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM usage_ledger), (SELECT count(*) FROM schema_migrations)`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	ms, _ := store.Migrations(migrationFS)
	if rows != 12 || versions != len(ms) {
		t.Errorf("rows, migrations = %d, %d; want 12, %d", rows, versions, len(ms))
	}
}

func TestWriteBatchIsAtomic(t *testing.T) {
	t.Parallel()
	db, _ := mustOpenDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := db.WriteBatch(ctx, sample()); err == nil {
		t.Fatal("WriteBatch with a cancelled context = nil; want an error")
	}
	var n int
	if err := db.pool.QueryRow(context.Background(), `SELECT count(*) FROM usage_ledger`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows after a failed batch = %d, %v; want 0", n, err)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	db, _ := mustOpenDB(t)
	if err := db.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestOpenHidesURL(t *testing.T) {
	t.Parallel()
	_, err := Open(context.Background(), "postgres://u:hunter2@[::1")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open(bad url) = %v; want an error that does not quote the password", err)
	}
}

func BenchmarkWriteBatch200(b *testing.B) {
	db, _ := mustOpenDB(b)
	recs := make([]ledger.Record, 200)
	for i := range recs {
		recs[i] = sample()[i%4]
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := db.WriteBatch(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
}
