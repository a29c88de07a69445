package embed

import "github.com/prometheus/client_golang/prometheus"

// metrics are the service's Prometheus series.
type metrics struct {
	hits, misses prometheus.Counter
	batchInputs  prometheus.Histogram
	wait         prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		hits: prometheus.NewCounter(prometheus.CounterOpts{Name: "llmproxy_embed_cache_hits_total",
			Help: "Embeddings inputs answered from the cache."}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Name: "llmproxy_embed_cache_misses_total",
			Help: "Embeddings inputs the cache could not answer, sent upstream."}),
		batchInputs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "llmproxy_embed_batch_inputs",
			Help:    "Inputs per upstream embeddings call made by the batcher.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048}}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "llmproxy_embed_batch_wait_seconds",
			Help:    "Time a request waited in the batcher before its upstream call was sent.",
			Buckets: []float64{0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1}}),
	}
	if reg != nil {
		reg.MustRegister(m.hits, m.misses, m.batchInputs, m.wait)
	}
	return m
}
