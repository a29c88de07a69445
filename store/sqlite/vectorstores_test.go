package sqlite

import (
	"testing"

	"llmproxy/vectorstore/vectorstoretest"
)

func TestVectorStores(t *testing.T) { vectorstoretest.Run(t, openTemp(t)) }

// BenchmarkVectorSearch: go test -run '^$' -bench VectorSearch ./store/sqlite/
// (LLMPROXY_BENCH_CHUNKS=100000 for the larger store).
func BenchmarkVectorSearch(b *testing.B) {
	db := openTemp(b)
	store := vectorstoretest.Load(b, db, vectorstoretest.BenchChunks(), 384)
	b.ResetTimer()
	vectorstoretest.BenchSearch(b, db, store, 384)
}
