package main

import (
	"fmt"
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
