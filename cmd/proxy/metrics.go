package main

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"llmproxy/router"
)

// metrics holds the collectors of STYLE.md §8. Labels come from closed
// sets: route names, configured aliases and providers, error kinds.
type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	upstream   *prometheus.CounterVec
	firstToken *prometheus.HistogramVec
	tokens     *prometheus.CounterVec
	spend      *prometheus.CounterVec
	// breaker, retries and fallbacks are the router's (router.RouteObserver).
	breaker   *breakerGauge
	retries   prometheus.Counter
	fallbacks *prometheus.CounterVec
	// shed counts requests refused past server.max_inflight.
	shed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmproxy_requests_total",
			Help: "Client requests by route, model alias and outcome (ok or an error kind)."}, []string{"route", "model", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "llmproxy_request_duration_seconds",
			Help: "Client request duration, to the last byte of a stream.", Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}},
			[]string{"route", "stream"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmproxy_upstream_requests_total",
			Help: "Upstream attempts by provider, upstream model and outcome."}, []string{"provider", "model", "outcome"}),
		firstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "llmproxy_upstream_first_token_seconds",
			Help: "Time from sending an upstream request to its first chunk.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30}},
			[]string{"provider", "model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmproxy_tokens_total",
			Help: "Tokens by provider, upstream model and direction (input, output, cached)."}, []string{"provider", "model", "direction"}),
		spend: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmproxy_spend_usd_total",
			Help: "Settled cost in USD by provider and upstream model: what the usage ledger and the budgets charge."}, []string{"provider", "model"}),
	}
	m.breaker = &breakerGauge{desc: prometheus.NewDesc("llmproxy_breaker_state",
		"Circuit breaker state per deployment: 0 closed, 1 half-open, 2 open (also when another replica's breaker benched it).",
		[]string{"provider", "deployment"}, nil)}
	m.retries = prometheus.NewCounter(prometheus.CounterOpts{Name: "llmproxy_retries_total",
		Help: "Upstream attempts after a request's first (another deployment, the same one after a backoff, or a fallback)."})
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmproxy_fallbacks_total",
		Help: "Moves from one alias to a fallback alias."}, []string{"from", "to"})
	m.shed = prometheus.NewCounter(prometheus.CounterOpts{Name: "llmproxy_shed_requests_total",
		Help: "API requests refused with 503 overloaded because server.max_inflight were in flight."})
	reg.MustRegister(m.breaker, m.retries, m.fallbacks, m.shed)
	reg.MustRegister(m.requests, m.duration, m.upstream, m.firstToken, m.tokens, m.spend,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Attempt implements router.Observer.
func (m *metrics) Attempt(provider, model, outcome string, ttft time.Duration) {
	m.upstream.WithLabelValues(provider, model, outcome).Inc()
	if outcome == "ok" {
		m.firstToken.WithLabelValues(provider, model).Observe(ttft.Seconds())
	}
}

var _ router.RouteObserver = (*metrics)(nil)

// Retry implements router.RouteObserver.
func (m *metrics) Retry(string) { m.retries.Inc() }

// Fallback implements router.RouteObserver.
func (m *metrics) Fallback(from, to string) { m.fallbacks.WithLabelValues(from, to).Inc() }

// BreakerState implements router.RouteObserver. The gauge needs no push:
// breakerGauge reads every deployment's state when scraped, which also
// sees breakers that other replicas opened (no transition happens here).
func (m *metrics) BreakerState(string, string, router.BreakerState) {}

// breakerGauge is llmproxy_breaker_state, read from the router's
// deployments at scrape time; empty until watch is called.
type breakerGauge struct {
	desc *prometheus.Desc
	src  atomic.Pointer[func() []router.DeploymentStatus]
}

// watch makes the gauge report src's deployments (Router.Deployments).
func (b *breakerGauge) watch(src func() []router.DeploymentStatus) { b.src.Store(&src) }

// Describe implements prometheus.Collector.
func (b *breakerGauge) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }

// Collect implements prometheus.Collector.
func (b *breakerGauge) Collect(ch chan<- prometheus.Metric) {
	src := b.src.Load()
	if src == nil {
		return
	}
	for _, d := range (*src)() {
		ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, float64(d.BreakerState), d.Provider, d.ID)
	}
}

func (m *metrics) request(r *reqRecord, outcome string, dur time.Duration) {
	m.requests.WithLabelValues(r.route, r.model, outcome).Inc()
	m.duration.WithLabelValues(r.route, strconv.FormatBool(r.stream)).Observe(dur.Seconds())
	if r.provider != "" && (r.usage.PromptTokens > 0 || r.usage.CompletionTokens > 0) {
		m.tokens.WithLabelValues(r.provider, r.modelUsed, "input").Add(float64(r.usage.PromptTokens))
		m.tokens.WithLabelValues(r.provider, r.modelUsed, "output").Add(float64(r.usage.CompletionTokens))
		if r.usage.CachedTokens > 0 {
			m.tokens.WithLabelValues(r.provider, r.modelUsed, "cached").Add(float64(r.usage.CachedTokens))
		}
	}
	if r.provider != "" && r.result.Settled && r.result.CostUSD > 0 {
		m.spend.WithLabelValues(r.provider, r.modelUsed).Add(r.result.CostUSD)
	}
}

func (s *Server) metricsHandler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{}))
}
