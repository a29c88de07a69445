package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"llmproxy/ledger"
	"llmproxy/store"
)

func mustOpen(tb testing.TB, dir string) *DB {
	tb.Helper()
	db, err := Open(context.Background(), dir)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

var day1 = time.Date(2025, 3, 1, 23, 59, 0, 0, time.UTC)

func sample() []ledger.Record {
	day2 := day1.Add(2 * time.Minute) // 2025-03-02 00:01 UTC
	return []ledger.Record{
		{Time: day1, RequestID: "r1", Route: "chat", Team: "a", KeyID: "key_1", Alias: "gpt", Provider: "p", Model: "m",
			PromptTokens: 10, CompletionTokens: 5, CachedTokens: 2, CostUSD: 0.5, Latency: 1500 * time.Microsecond, TTFT: time.Millisecond,
			Status: 200, Outcome: "ok", Stream: true},
		{Time: day1, RequestID: "r2", Route: "chat", Team: "a", Alias: "gpt", PromptTokens: 1, CompletionTokens: 1,
			CostUSD: 0.25, Status: 502, Outcome: "upstream_error", Estimated: true},
		{Time: day2, RequestID: "r3", Route: "chat", Team: "a", Alias: "gpt", PromptTokens: 7, ReasoningTokens: 3, CompletionTokens: 4, CostUSD: 1, Status: 200, Outcome: "ok"},
		{Time: day2, RequestID: "r4", Route: "embeddings", Team: "b", Alias: "emb", PromptTokens: 100, CostUSD: 0.01, Status: 200, Outcome: "ok"},
	}
}

func TestWriteAndUsage(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir)
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
		{"unknown team", ledger.Filter{Team: "zzz", From: all.From, To: all.To}, nil},
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
}

func TestReopenKeepsRowsAndSchema(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir)
	ctx := context.Background()
	if err := db.WriteBatch(ctx, sample()); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	db.Close()
	db2 := mustOpen(t, dir)
	if db2.Path() != filepath.Join(dir, FileName) {
		t.Errorf("Path = %s; want %s", db2.Path(), filepath.Join(dir, FileName))
	}
	var n, versions int
	if err := db2.db.QueryRow(`SELECT COUNT(*) FROM usage_ledger`).Scan(&n); err != nil || n != 4 {
		t.Errorf("rows after reopen = %d, %v; want 4", n, err)
	}
	ms, _ := store.Migrations(migrationFS)
	if err := db2.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&versions); err != nil || versions != len(ms) {
		t.Errorf("schema_migrations rows = %d, %v; want %d (each migration runs once)", versions, err, len(ms))
	}
	var r struct {
		ts, lat, ttft  int64
		stream, estim  bool
		keyID, outcome string
	}
	if err := db2.db.QueryRow(`SELECT ts, latency_us, ttft_us, stream, estimated, key_id, outcome FROM usage_ledger WHERE request_id = 'r1'`).
		Scan(&r.ts, &r.lat, &r.ttft, &r.stream, &r.estim, &r.keyID, &r.outcome); err != nil {
		t.Fatalf("read r1: %v", err)
	}
	if r.ts != day1.UnixMicro() || r.lat != 1500 || r.ttft != 1000 || !r.stream || r.estim || r.keyID != "key_1" || r.outcome != "ok" {
		t.Errorf("r1 = %+v; want the written values", r)
	}
}

func TestWriteBatchIsAtomic(t *testing.T) {
	db := mustOpen(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := db.WriteBatch(ctx, sample()); err == nil {
		t.Fatal("WriteBatch with a cancelled context = nil; want an error")
	}
	var n int
	if err := db.db.QueryRow(`SELECT COUNT(*) FROM usage_ledger`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows after a failed batch = %d, %v; want 0", n, err)
	}
}

// TestConcurrentOpen is two proxies starting on one data dir: the
// immediate transaction makes the second wait, not fail or migrate twice.
func TestConcurrentOpen(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(context.Background(), dir)
			if err != nil {
				errs <- err
				return
			}
			errs <- db.WriteBatch(context.Background(), sample())
			db.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Open/WriteBatch: %v", err)
		}
	}
	db := mustOpen(t, dir)
	var n int
	if err := db.db.QueryRow(`SELECT COUNT(*) FROM usage_ledger`).Scan(&n); err != nil || n != 16 {
		t.Errorf("rows = %d, %v; want 16", n, err)
	}
}

func TestOpenCreatesNestedDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	db := mustOpen(t, dir)
	if err := db.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func BenchmarkWriteBatch200(b *testing.B) {
	db := mustOpen(b, b.TempDir())
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
