package main

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/budget"
	"llmproxy/rag"
	"llmproxy/router"
)

// Header names of RAG (issue 12): the request names its vector stores;
// the response says what retrieval did and which files it cited.
const (
	headerVectorStores = "x-llmproxy-vector-store-ids"
	headerRAG          = "x-llmproxy-rag"
	headerRAGSources   = "x-llmproxy-rag-sources"
)

// buildRAG is the retrieval stage: every alias's rag block merged over the
// top-level one. retriever is issue 11's vector-store search; nil (no
// vector stores in this build) fails each retrieval as its on_error says.
// rerank is the Go API's rerank chain (rerankAPI).
func buildRAG(cfg *Config, log *slog.Logger, reg prometheus.Registerer, retriever rag.Retriever, rerank router.RerankHandler) (*rag.RAG, error) {
	aliases := map[string]rag.Settings{}
	for _, m := range cfg.Models {
		if m.RAG != nil {
			s, err := ragSettings(mergeRAG(m.RAG.RAGConfig, cfg.RAG))
			if err != nil {
				return nil, err
			}
			s.VectorStores = m.RAG.VectorStores
			aliases[m.Name] = s
		}
	}
	def, err := ragSettings(cfg.RAG)
	if err != nil {
		return nil, err
	}
	obs := &ragMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmproxy_rag_requests_total",
			Help: "Chat requests that asked for retrieval, by outcome: used, no_results, skipped (failed open), failed (failed closed), refused (unknown store, budget, rate limit)."},
			[]string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "llmproxy_rag_retrieval_seconds",
			Help:    "Time retrieval added to a request: resolving the stores, the search (the query's embedding included) and the rerank.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
	}
	reg.MustRegister(obs.requests, obs.duration)
	return rag.New(rag.Options{Retriever: retriever, Rerank: rerank, Count: budget.NewCounter().Text, Aliases: aliases, Default: def,
		Observer: obs, Log: log})
}

// ragSettings is a merged rag block as rag.Settings (no stores).
func ragSettings(c RAGConfig) (rag.Settings, error) {
	s := rag.Settings{TopK: c.TopK, RerankTopK: c.RerankTopK, MaxContextTokens: c.MaxContextTokens,
		RerankModel: c.RerankModel, FailOpen: c.OnError == "fail_open"}
	if c.ScoreThreshold != nil {
		s.ScoreThreshold = *c.ScoreThreshold
	}
	if c.Template != "" {
		t, err := rag.ParseTemplate(c.Template)
		if err != nil {
			return s, err
		}
		s.Template = t
	}
	return s, nil
}

// ragMetrics is rag.Observer: llmproxy_rag_requests_total{outcome} and
// llmproxy_rag_retrieval_seconds.
type ragMetrics struct {
	requests *prometheus.CounterVec
	duration prometheus.Histogram
}

func (m *ragMetrics) Retrieval(outcome string, took time.Duration) {
	m.requests.WithLabelValues(outcome).Inc()
	m.duration.Observe(took.Seconds())
}
