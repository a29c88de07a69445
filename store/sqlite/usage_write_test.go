package sqlite

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"llmproxy/ledger"
)

// writeBatchRowByRow is WriteBatch as it was before the multi-row
// INSERTs: one transaction, one prepared statement, one Exec per record.
// It is the reference the new WriteBatch is compared with, in rows read
// back and in the benchmark.
func (d *DB) writeBatchRowByRow(ctx context.Context, recs []ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO usage_ledger (ts, request_id, route, team, key_id, alias, provider, model,
	prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd, latency_us, ttft_us,
	status, outcome, stream, estimated)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("sqlite: prepare insert: %w", err)
	}
	defer st.Close()
	for i := range recs {
		r := &recs[i]
		if _, err := st.ExecContext(ctx, r.Time.UnixMicro(), r.RequestID, r.Route, r.Team, r.KeyID, r.Alias,
			r.Provider, r.Model, r.PromptTokens, r.CompletionTokens, r.CachedTokens, r.ReasoningTokens,
			r.CostUSD, r.Latency.Microseconds(), r.TTFT.Microseconds(), r.Status, r.Outcome,
			r.Stream, r.Estimated); err != nil {
			return fmt.Errorf("sqlite: insert usage: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// usageRow is one usage_ledger row as stored, every column read with
// its storage class (typeof) so an int stored where an int was stored
// before, not a text or real, is what the comparison checks.
type usageRow struct {
	ID                                    int64
	TS                                    int64
	RequestID, Route, Team, KeyID, Alias  string
	Provider, Model                       string
	Prompt, Completion, Cached, Reasoning int64
	Cost                                  float64
	LatencyUS, TTFTUS                     int64
	Status                                int64
	Outcome                               string
	Stream, Estimated                     int64
	Types                                 string
}

func readUsageRows(tb testing.TB, d *DB) []usageRow {
	tb.Helper()
	rows, err := d.db.Query(`SELECT id, ts, request_id, route, team, key_id, alias, provider, model,
		prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd, latency_us, ttft_us,
		status, outcome, stream, estimated,
		typeof(ts)||typeof(request_id)||typeof(route)||typeof(team)||typeof(key_id)||typeof(alias)||
		typeof(provider)||typeof(model)||typeof(prompt_tokens)||typeof(completion_tokens)||
		typeof(cached_tokens)||typeof(reasoning_tokens)||typeof(cost_usd)||typeof(latency_us)||
		typeof(ttft_us)||typeof(status)||typeof(outcome)||typeof(stream)||typeof(estimated)
		FROM usage_ledger ORDER BY id`)
	if err != nil {
		tb.Fatalf("read usage_ledger: %v", err)
	}
	defer rows.Close()
	var out []usageRow
	for rows.Next() {
		var r usageRow
		if err := rows.Scan(&r.ID, &r.TS, &r.RequestID, &r.Route, &r.Team, &r.KeyID, &r.Alias, &r.Provider, &r.Model,
			&r.Prompt, &r.Completion, &r.Cached, &r.Reasoning, &r.Cost, &r.LatencyUS, &r.TTFTUS,
			&r.Status, &r.Outcome, &r.Stream, &r.Estimated, &r.Types); err != nil {
			tb.Fatalf("scan usage_ledger: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("usage_ledger rows: %v", err)
	}
	return out
}

// wantRow is the row rec should be stored as.
func wantRow(id int64, r ledger.Record) usageRow {
	b2i := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	return usageRow{ID: id, TS: r.Time.UnixMicro(), RequestID: r.RequestID, Route: r.Route, Team: r.Team,
		KeyID: r.KeyID, Alias: r.Alias, Provider: r.Provider, Model: r.Model,
		Prompt: int64(r.PromptTokens), Completion: int64(r.CompletionTokens), Cached: int64(r.CachedTokens),
		Reasoning: int64(r.ReasoningTokens), Cost: r.CostUSD, LatencyUS: r.Latency.Microseconds(),
		TTFTUS: r.TTFT.Microseconds(), Status: int64(r.Status), Outcome: r.Outcome,
		Stream: b2i(r.Stream), Estimated: b2i(r.Estimated),
		Types: "integertexttexttexttexttexttexttextintegerintegerintegerintegerrealintegerintegerintegertextintegerinteger"}
}

// realisticRecords are n records shaped like the proxy's: a few teams,
// keys and models, streamed and plain chats, embeddings, some failures and
// estimates, and for the round trip some edge values (empty strings, zero
// and negative durations, a pre-1970 time, huge counts, odd floats,
// non-ASCII and NUL in text).
func realisticRecords(n int, edges bool) []ledger.Record {
	base := time.Date(2025, 6, 3, 14, 7, 31, 123456789, time.UTC)
	teams := []string{"search", "support-bot", "growth", "platform"}
	models := []struct{ alias, provider, model, route string }{
		{"gpt-4o", "openai", "gpt-4o-2024-08-06", "chat"},
		{"gpt-4o-mini", "azure-eu", "gpt-4o-mini", "chat"},
		{"claude", "anthropic", "claude-3-5-sonnet-20241022", "chat"},
		{"embed", "openai", "text-embedding-3-small", "embeddings"},
	}
	recs := make([]ledger.Record, n)
	for i := range recs {
		m := models[i%len(models)]
		r := ledger.Record{
			Time:      base.Add(time.Duration(i) * 117 * time.Millisecond),
			RequestID: fmt.Sprintf("req_%016x%08x", uint64(i)*0x9e3779b97f4a7c15, i),
			Route:     m.route,
			Team:      teams[i%len(teams)],
			KeyID:     fmt.Sprintf("key_%012x", (i%7)*0x1f3a5c7e9b),
			Alias:     m.alias, Provider: m.provider, Model: m.model,
			PromptTokens: 200 + i*37%4000, CompletionTokens: i * 13 % 900, CachedTokens: i % 3 * 128,
			ReasoningTokens: i % 5 * 64, CostUSD: float64(200+i*37%4000)*2.5e-6 + float64(i*13%900)*1e-5,
			Latency: time.Duration(300+i*29%5000) * time.Millisecond, TTFT: time.Duration(80+i%400) * time.Millisecond,
			Status: 200, Outcome: "ok", Stream: i%2 == 0,
		}
		if m.route == "embeddings" {
			r.CompletionTokens, r.ReasoningTokens, r.TTFT, r.Stream = 0, 0, 0, false
		}
		if i%17 == 5 {
			r.Status, r.Outcome, r.CompletionTokens, r.CostUSD = 502, "upstream_error", 0, 0
		}
		if i%11 == 3 {
			r.Estimated = true
		}
		recs[i] = r
	}
	if edges && n > 0 {
		e := []ledger.Record{
			{}, // every field zero: the zero time, empty strings
			{Time: time.Date(1969, 12, 31, 23, 59, 59, 999_999_000, time.UTC), RequestID: "r\x00nul", Route: "chat",
				Team: "équipe-東京", KeyID: "key_'\"", Alias: "a;b", Provider: "p", Model: "m",
				PromptTokens: math.MaxInt32, CompletionTokens: math.MaxInt32 + 1, CachedTokens: -1,
				ReasoningTokens: math.MaxInt64, CostUSD: 0.1 + 0.2, Latency: -time.Microsecond,
				TTFT: time.Duration(math.MaxInt64), Status: 599, Outcome: "timeout", Stream: true, Estimated: true},
			{Time: base.In(time.FixedZone("x", 5*3600+1800)), RequestID: strings.Repeat("x", 5000), CostUSD: math.SmallestNonzeroFloat64,
				Latency: 999 * time.Nanosecond, TTFT: 1001 * time.Nanosecond},
			{CostUSD: math.MaxFloat64, PromptTokens: math.MinInt64, Status: -1},
			{CostUSD: math.Copysign(0, -1), Outcome: "ok"},
		}
		for i := range e {
			recs[(i*7919)%n] = e[i]
		}
	}
	return recs
}

// TestWriteBatchRoundTrip writes batches of every shape the grouping
// has (one row, a group, a group and one, odd sizes, several groups and a
// tail) and reads every column of every row back, with its storage
// class, against both the record and what the row-by-row writer stored.
func TestWriteBatchRoundTrip(t *testing.T) {
	sizes := []int{1, 2, 3, 7, 31, usageGroupMax - 1, usageGroupMax, usageGroupMax + 1,
		2*usageGroupMax + usageGroupMax/2 - 1, 200, 256, 1000, 1723}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			recs := realisticRecords(n, true)
			ctx := context.Background()
			newDB, oldDB := mustOpen(t, t.TempDir()), mustOpen(t, t.TempDir())
			// Twice, so the second batch uses the cached statements and
			// ids continue after the first batch's.
			for range 2 {
				if err := newDB.WriteBatch(ctx, recs); err != nil {
					t.Fatalf("WriteBatch(%d records): %v", n, err)
				}
				if err := oldDB.writeBatchRowByRow(ctx, recs); err != nil {
					t.Fatalf("writeBatchRowByRow(%d records): %v", n, err)
				}
			}
			got, old := readUsageRows(t, newDB), readUsageRows(t, oldDB)
			if len(got) != 2*n || len(old) != 2*n {
				t.Fatalf("rows = %d (row-by-row %d); want %d", len(got), len(old), 2*n)
			}
			for i := range got {
				want := wantRow(int64(i+1), recs[i%n])
				if got[i] != want {
					t.Errorf("row %d = %+v\nwant %+v", i, got[i], want)
				}
				if got[i] != old[i] {
					t.Errorf("row %d = %+v\nrow-by-row wrote %+v", i, got[i], old[i])
				}
				// == takes -0 for 0; SQLite stores -0.0 as 0 either way.
				if math.Signbit(got[i].Cost) != math.Signbit(old[i].Cost) {
					t.Errorf("row %d cost sign = %v; row-by-row's %v", i, math.Signbit(got[i].Cost), math.Signbit(old[i].Cost))
				}
			}
		})
	}
}

// TestWriteBatchEmpty writes nothing and needs no transaction.
func TestWriteBatchEmpty(t *testing.T) {
	db := mustOpen(t, t.TempDir())
	if err := db.WriteBatch(context.Background(), nil); err != nil {
		t.Fatalf("WriteBatch(nil) = %v", err)
	}
	if n := len(readUsageRows(t, db)); n != 0 {
		t.Errorf("rows = %d; want 0", n)
	}
}

// TestWriteBatchAtomicAcrossGroups fails a batch in the middle of its
// second INSERT, after the first went in and with earlier rows of the
// same statement kept (RAISE(FAIL) keeps them, as INSERT OR FAIL does):
// none of the batch's rows may stay, the rows written before it do, and a
// later batch is written whole (the cached statements survive).
func TestWriteBatchAtomicAcrossGroups(t *testing.T) {
	db := mustOpen(t, t.TempDir())
	ctx := context.Background()
	if _, err := db.db.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON usage_ledger WHEN NEW.request_id = 'bad'
		BEGIN SELECT RAISE(FAIL, 'refused'); END`); err != nil {
		t.Fatal(err)
	}
	before := realisticRecords(3, false)
	if err := db.WriteBatch(ctx, before); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	recs := realisticRecords(2*usageGroupMax+3, false)
	recs[usageGroupMax+usageGroupMax/2].RequestID = "bad"
	if err := db.WriteBatch(ctx, recs); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("WriteBatch with a refused row = %v; want the trigger's error", err)
	}
	if n := len(readUsageRows(t, db)); n != len(before) {
		t.Fatalf("rows after a failed batch = %d; want the %d written before it", n, len(before))
	}
	recs[usageGroupMax+usageGroupMax/2].RequestID = "good"
	if err := db.WriteBatch(ctx, recs); err != nil {
		t.Fatalf("WriteBatch after a failed one: %v", err)
	}
	got := readUsageRows(t, db)
	if len(got) != len(before)+len(recs) {
		t.Fatalf("rows = %d; want %d", len(got), len(before)+len(recs))
	}
	for i, r := range append(before, recs...) {
		// ids skip none: the failed batch's rows were rolled back.
		if want := wantRow(int64(i+1), r); got[i] != want {
			t.Errorf("row %d = %+v\nwant %+v", i, got[i], want)
		}
	}
}

// BenchmarkWriteBatch writes batches of 256 realistic records with the
// ledger's kind of context (one with a deadline, which the driver watches
// per statement), row by row as before and with multi-row INSERTs, and
// reports the wall and CPU (user and system, the whole process's) time
// per row; allocs/op are per batch of 256.
func BenchmarkWriteBatch(b *testing.B) {
	recs := realisticRecords(256, false)
	for _, bc := range []struct {
		name  string
		write func(*DB, context.Context, []ledger.Record) error
	}{
		{"rowByRow", (*DB).writeBatchRowByRow},
		{"multiRow", (*DB).WriteBatch},
	} {
		b.Run(bc.name, func(b *testing.B) {
			db := mustOpen(b, b.TempDir())
			b.ReportAllocs()
			cpu0, cpuOK := processCPU()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), ledger.DefaultWriteTimeout)
				if err := bc.write(db, ctx, recs); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
			rows := float64(b.N * len(recs))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
			if cpu1, ok := processCPU(); ok && cpuOK {
				b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/rows, "cpu-ns/row")
			}
		})
	}
}
