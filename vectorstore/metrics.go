package vectorstore

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	files    *prometheus.CounterVec
	chunks   prometheus.Counter
	ingest   prometheus.Histogram
	search   prometheus.Histogram
	requeued prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		files: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmproxy_vector_store_files_total",
			Help: "Vector-store files whose ingestion ended, by outcome (completed, or the last_error code)."}, []string{"outcome"}),
		chunks: prometheus.NewCounter(prometheus.CounterOpts{Name: "llmproxy_vector_store_chunks_total",
			Help: "Chunks embedded and stored by ingestion."}),
		ingest: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "llmproxy_vector_store_ingest_seconds",
			Help: "Time to parse, chunk, embed and store one vector-store file.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 9)}),
		search: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "llmproxy_vector_store_search_seconds",
			Help: "Time of one vector-store search, query embedding included.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}),
		requeued: prometheus.NewCounter(prometheus.CounterOpts{Name: "llmproxy_vector_store_requeued_total",
			Help: "Ingestions the reconciler queued again because their job had died (a killed process) or was lost."}),
	}
	if reg != nil {
		reg.MustRegister(m.files, m.chunks, m.ingest, m.search, m.requeued)
	}
	return m
}
