package vectorstoretest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"llmproxy/vectorstore"
)

// Load fills a new store of team "bench" with n chunks of dims random
// unit vectors and 300 words of a 50,000-word vocabulary, 500 chunks a
// file, and returns the store's id.
func Load(tb testing.TB, st vectorstore.Storage, n, dims int) string {
	tb.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(uint64(n), uint64(dims)))
	s := mustStoreTB(tb, st, "bench", "bench")
	for f := 0; f*500 < n; f++ {
		file := &vectorstore.File{ID: id("file-"), Team: "bench", Filename: fmt.Sprintf("f%d.txt", f), Purpose: "assistants", CreatedAt: t0}
		if err := st.CreateFile(ctx, file, []byte("x")); err != nil {
			tb.Fatal(err)
		}
		sf := []vectorstore.StoreFile{{StoreID: s.ID, FileID: file.ID, Team: "bench", Attributes: map[string]any{"n": float64(f % 10)},
			Chunking: vectorstore.Chunking{MaxTokens: 500}}}
		if err := st.AttachFiles(ctx, "bench", s.ID, sf, nil, t0); err != nil {
			tb.Fatal(err)
		}
		cs := make([]vectorstore.Chunk, min(500, n-f*500))
		for i := range cs {
			words := make([]string, 300)
			for j := range words {
				words[j] = "w" + strconv.Itoa(r.IntN(50000))
			}
			cs[i] = vectorstore.Chunk{Index: i, Content: strings.Join(words, " "), Embedding: randomUnit(r, dims)}
		}
		ref := vectorstore.FileRef{StoreID: s.ID, FileID: file.ID, Generation: sf[0].Generation}
		if _, err := st.StartIngest(ctx, ref, t0); err != nil {
			tb.Fatal(err)
		}
		if err := st.CompleteIngest(ctx, ref, cs, 1, t0); err != nil {
			tb.Fatal(err)
		}
	}
	return s.ID
}

func randomUnit(r *rand.Rand, dims int) []float32 {
	v := make([]float32, dims)
	var norm float64
	for i := range v {
		v[i] = float32(r.NormFloat64())
		norm += float64(v[i]) * float64(v[i])
	}
	for i := range v {
		v[i] /= float32(math.Sqrt(norm))
	}
	return v
}

func mustStoreTB(tb testing.TB, st vectorstore.Storage, team, name string) *vectorstore.Store {
	tb.Helper()
	s := &vectorstore.Store{ID: id("vs_"), Team: team, Name: name, EmbeddingModel: "emb", CreatedAt: t0, LastActiveAt: t0}
	if err := st.CreateStore(context.Background(), s); err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchChunks is the store size of BenchSearch: LLMPROXY_BENCH_CHUNKS, or
// 10,000.
func BenchChunks() int {
	if n, err := strconv.Atoi(os.Getenv("LLMPROXY_BENCH_CHUNKS")); err == nil && n > 0 {
		return n
	}
	return 10000
}

// BenchSearch measures the two halves of a search (K = 40, what a search
// for 10 results asks of each) over the store Load filled.
func BenchSearch(b *testing.B, st vectorstore.Storage, store string, dims int) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 7))
	b.Run("vector", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.VectorSearch(ctx, vectorstore.VectorQuery{StoreIDs: []string{store}, Vector: randomUnit(r, dims), K: 40}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("text", func(b *testing.B) {
		for b.Loop() {
			terms := []string{"w" + strconv.Itoa(r.IntN(50000)), "w" + strconv.Itoa(r.IntN(50000)), "w" + strconv.Itoa(r.IntN(50000))}
			if _, err := st.TextSearch(ctx, vectorstore.TextQuery{StoreIDs: []string{store}, Terms: terms, K: 40}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
