//go:build integration

package postgres

import (
	"context"
	"testing"

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
// larger store), with each index kind, the index built after the load.
func BenchmarkVectorSearch(b *testing.B) {
	for _, kind := range []string{IndexHNSW, IndexIVFFlat} {
		b.Run(kind, func(b *testing.B) {
			db, _ := mustOpenDB(b)
			v, err := db.VectorStores(context.Background(), kind)
			if err != nil {
				b.Fatal(err)
			}
			store := vectorstoretest.Load(b, v, vectorstoretest.BenchChunks(), 384)
			if err := v.BuildIndex(context.Background(), 384); err != nil {
				b.Fatal(err)
			}
			if _, err := v.pool.Exec(context.Background(), `ANALYZE documents`); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			vectorstoretest.BenchSearch(b, v, store, 384)
		})
	}
}
