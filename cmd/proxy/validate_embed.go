package main

import (
	"fmt"
	"slices"
	"time"
)

func (v *validator) embeddings() {
	e := v.c.Embeddings
	v.embedBatch("embeddings.batch", e.Batch)
	v.duration("embeddings.cache.ttl", e.Cache.TTL, true)
	v.positive("embeddings.cache.max_entries", float64(e.Cache.MaxEntries))
	v.oneOf("embeddings.cache.scope", "scope", e.Cache.Scope, []string{"team", "shared"})
	for i, m := range v.c.Models {
		if m.Embeddings == nil || m.Embeddings.Batch == nil {
			continue
		}
		path := fmt.Sprintf("models[%d].embeddings", i)
		if m.Type != modelTypeEmbedding {
			v.add(path, "is set on a %q model; want type embedding", m.Type)
		}
		v.embedBatch(path+".batch", *m.Embeddings.Batch)
	}
}

func (v *validator) embedBatch(path string, b EmbedBatchConfig) {
	if b.MaxInputs < 0 || b.MaxInputs > 2048 {
		v.add(path+".max_inputs", "%d is out of range; want 1 to 2048 (OpenAI's limit per call)", b.MaxInputs)
	}
	if b.MaxWait != nil {
		v.duration(path+".max_wait", *b.MaxWait, false)
		if *b.MaxWait > Duration(time.Second) {
			v.add(path+".max_wait", "%q is more than 1s; a lone request waits this long", b.MaxWait.String())
		}
	}
}

// Bounds of vector_stores (OpenAI's for a static chunking strategy and for
// an upload).
const (
	minChunkTokens  = 100
	maxChunkTokens  = 4096
	maxFileBytesCap = 512 << 20
)

var vectorIndexes = []string{"hnsw", "ivfflat"}

func (v *validator) vectorStores() {
	vs := v.c.VectorStores
	if vs == nil {
		return
	}
	switch i := slices.IndexFunc(v.c.Models, func(m ModelConfig) bool { return m.Name == vs.EmbeddingModel }); {
	case vs.EmbeddingModel == "":
		v.add("vector_stores.embedding_model", "is required; want an alias with type: embedding")
	case i < 0:
		v.add("vector_stores.embedding_model", "%q is not a model alias; want one of models[].name with type: embedding", vs.EmbeddingModel)
	case v.c.Models[i].Type != modelTypeEmbedding:
		v.add("vector_stores.embedding_model", "%q is a %s model; want an alias with type: embedding", vs.EmbeddingModel, v.c.Models[i].Type)
	}
	c := vs.Chunking
	if c.MaxTokens < minChunkTokens || c.MaxTokens > maxChunkTokens {
		v.add("vector_stores.chunking.max_tokens", "%d is out of range; want %d to %d", c.MaxTokens, minChunkTokens, maxChunkTokens)
	}
	if o := *c.OverlapTokens; o < 0 || o > c.MaxTokens/2 {
		v.add("vector_stores.chunking.overlap_tokens", "%d is out of range; want 0 to half of max_tokens (%d)", o, c.MaxTokens/2)
	}
	if vs.MaxFileBytes <= 0 || vs.MaxFileBytes > maxFileBytesCap {
		v.add("vector_stores.max_file_bytes", "%d is out of range; want 1 to %d (512 MiB)", vs.MaxFileBytes, maxFileBytesCap)
	}
	v.oneOf("vector_stores.index", "index", vs.Index, vectorIndexes)
}
