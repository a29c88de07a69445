//go:build integration

package postgres

import (
	"context"
	"testing"
	"time"

	"llmproxy/vectorstore/vectorstoretest"
)

func mustVectorDB(t *testing.T, kind string) *VectorDB {
	t.Helper()
	db, _ := mustOpenDB(t)
	v, err := db.VectorStores(context.Background(), kind)
	if err != nil {
		t.Fatalf("VectorStores: %v", err)
	}
	return v
}

func TestVectorStoresHNSW(t *testing.T) {
	t.Parallel()
	vectorstoretest.Run(t, mustVectorDB(t, IndexHNSW))
}

func TestVectorStoresIVFFlat(t *testing.T) {
	t.Parallel()
	vectorstoretest.Run(t, mustVectorDB(t, IndexIVFFlat))
}

// BenchmarkVectorSearch: go test -tags integration -run '^$' -bench
// VectorSearch ./store/postgres/ (LLMPROXY_BENCH_CHUNKS=100000 for the
// larger store), with each index kind built after the load, as a bulk load
// should (the load itself goes through ivfflat, whose builds are quick).
func BenchmarkVectorSearch(b *testing.B) {
	ctx := context.Background()
	db, _ := mustOpenDB(b)
	load, err := db.VectorStores(ctx, IndexIVFFlat)
	if err != nil {
		b.Fatal(err)
	}
	store := vectorstoretest.Load(b, load, vectorstoretest.BenchChunks(), 384)
	for _, kind := range []string{IndexIVFFlat, IndexHNSW} {
		b.Run(kind, func(b *testing.B) {
			v, err := db.VectorStores(ctx, kind)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := v.pool.Exec(ctx, `DROP INDEX IF EXISTS documents_ivfflat_384, documents_hnsw_384`); err != nil {
				b.Fatal(err)
			}
			if _, err := v.pool.Exec(ctx, `DELETE FROM vector_indexes`); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := v.BuildIndex(ctx, 384); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s index over %d chunks built in %v", kind, vectorstoretest.BenchChunks(), time.Since(start).Round(time.Millisecond))
			if _, err := v.pool.Exec(ctx, `ANALYZE documents`); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			vectorstoretest.BenchSearch(b, v, store, 384)
		})
	}
}
