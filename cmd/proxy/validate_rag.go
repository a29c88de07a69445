package main

import (
	"fmt"
	"strconv"
	"strings"

	"llmproxy/rag"
)

// rag checks the rag block and every models[].rag block; a model's unset
// fields are checked as the merged settings (ragSettings) would be.
func (v *validator) rag() {
	g := v.c.RAG
	v.ragFields("rag", g, g)
	for i, m := range v.c.Models {
		if m.RAG == nil {
			continue
		}
		path := fmt.Sprintf("models[%d].rag", i)
		if m.Type != modelTypeChat {
			v.add(path, "is set on a %q model; want type chat", m.Type)
		}
		switch n := len(m.RAG.VectorStores); {
		case n == 0:
			v.add(path+".vector_stores", "required: at least one vector store name or vs_ id")
		case n > rag.MaxStores:
			v.add(path+".vector_stores", "%d stores; want at most %d", n, rag.MaxStores)
		}
		for j, s := range m.RAG.VectorStores {
			if strings.TrimSpace(s) == "" || strings.Contains(s, ",") {
				v.add(fmt.Sprintf("%s.vector_stores[%d]", path, j), "%q is not a store name or vs_ id", s)
			}
		}
		v.ragFields(path, m.RAG.RAGConfig, mergeRAG(m.RAG.RAGConfig, g))
	}
}

// ragFields checks the fields set in own (the block at path); merged is
// own over the top-level defaults, for the checks that relate two fields.
func (v *validator) ragFields(path string, own, merged RAGConfig) {
	if own.TopK != 0 && (own.TopK < 1 || own.TopK > rag.MaxTopK) {
		v.add(path+".top_k", "%d is out of range; want 1 to %d", own.TopK, rag.MaxTopK)
	}
	if own.RerankTopK != 0 || own.TopK != 0 {
		if merged.RerankTopK < 1 || merged.RerankTopK > merged.TopK {
			v.add(path+".rerank_top_k", "%d is out of range; want 1 to top_k (%d)", merged.RerankTopK, merged.TopK)
		}
	}
	if t := own.ScoreThreshold; t != nil && (*t < 0 || *t > 1) {
		v.add(path+".score_threshold", "%s is out of range; want 0 to 1", strconv.FormatFloat(*t, 'g', -1, 64))
	}
	if own.MaxContextTokens < 0 {
		v.add(path+".max_context_tokens", "%d is negative; want a token count", own.MaxContextTokens)
	}
	if own.RerankModel != "" {
		k, ok := v.c.modelIndex()[own.RerankModel]
		switch {
		case !ok:
			v.add(path+".rerank_model", "unknown model %q", own.RerankModel)
		case v.c.Models[k].Type != modelTypeRerank:
			v.add(path+".rerank_model", "%q is a %s model; want a type rerank model", own.RerankModel, v.c.Models[k].Type)
		}
	}
	if own.Template != "" {
		if _, err := rag.ParseTemplate(own.Template); err != nil {
			v.add(path+".template", "%v", err)
		}
	}
	if own.OnError != "" {
		v.oneOf(path+".on_error", "on_error", own.OnError, ragOnError)
	}
}

// mergeRAG is own with its unset fields taken from def.
func mergeRAG(own, def RAGConfig) RAGConfig {
	setDefault(&own.TopK, def.TopK)
	setDefault(&own.RerankTopK, min(def.RerankTopK, own.TopK))
	setDefault(&own.MaxContextTokens, def.MaxContextTokens)
	setDefault(&own.RerankModel, def.RerankModel)
	setDefault(&own.Template, def.Template)
	setDefault(&own.OnError, def.OnError)
	if own.ScoreThreshold == nil {
		own.ScoreThreshold = def.ScoreThreshold
	}
	return own
}
