package memory

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are memory's Prometheus series (nil Registerer: kept but not
// exported).
type metrics struct {
	ops      *prometheus.CounterVec
	duration *prometheus.HistogramVec
	dropped  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmproxy_memory_operations_total",
			Help: "Conversation loads (history put in front of a request) and saves (a turn stored), by outcome (ok or error)."},
			[]string{"op", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "llmproxy_memory_operation_duration_seconds",
			Help:    "Time to load a conversation's history or save a turn.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}}, []string{"op"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "llmproxy_memory_dropped_turns_total",
			Help: "Oldest stored turns left out of a request to fit its context window."}),
	}
	if reg != nil {
		reg.MustRegister(m.ops, m.duration, m.dropped)
	}
	return m
}

// observe counts one load or save that started at start.
func (m *metrics) observe(op string, start time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.ops.WithLabelValues(op, outcome).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
