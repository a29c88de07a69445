package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"llmproxy/budget"
	"llmproxy/ledger"
	"llmproxy/router"
	"llmproxy/store/postgres"
	"llmproxy/store/sqlite"
)

// ledgerFlushTimeout bounds writing the queued usage records at shutdown.
const ledgerFlushTimeout = 10 * time.Second

// usageLedger is the usage ledger as the server sees it: the queue that
// finish() feeds, the store that answers /v1/usage and /admin/usage, the
// prices that turn tokens into dollars. /admin/usage uses Server.master.
type usageLedger struct {
	ledger *ledger.Ledger
	report ledger.Reporter
	prices *budget.Prices
	// backend is "sqlite" or "postgres", for the startup line.
	backend string
	// status is the budget guard's view of a team (budget.Guard.Status);
	// nil without a guard, and /v1/usage then reports "budget": null.
	status func(ctx context.Context, team string) (budget.TeamStatus, error)
}

// dbStore is what both stores offer cmd/proxy.
type dbStore interface {
	ledger.Store
	budget.SpendSource
	Ping(ctx context.Context) error
	Close() error
}

// openUsage opens the ledger's store (PostgreSQL when database.url is set,
// else SQLite under server.data_dir), starts the ledger and registers its
// metrics. A PostgreSQL that does not answer does not stop the start: the
// store connects (and migrates) in the background and the ledger queues
// until then (usage_store.go); an SQLite that cannot open is a
// configuration error. It returns the store, which is also the budget
// guard's SpendSource, and the shutdown closer.
func openUsage(cfg *Config, log *slog.Logger, reg prometheus.Registerer, prices *budget.Prices, tp trace.TracerProvider) (*usageLedger, *usageStore, func(context.Context) error, error) {
	var (
		store   *usageStore
		backend = "sqlite"
	)
	if url := cfg.Database.URL.Value(); url != "" {
		backend = "postgres"
		if err := postgres.CheckURL(url); err != nil {
			return nil, nil, nil, fmt.Errorf("usage ledger: %w", err)
		}
		store = connectUsage(func(ctx context.Context) (dbStore, error) {
			if tp != nil {
				return postgres.Open(ctx, url, postgres.WithTracerProvider(tp))
			}
			return postgres.Open(ctx, url)
		}, log)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		db, err := sqlite.Open(ctx, cfg.Server.DataDir)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("usage ledger: %w", err)
		}
		store = connectUsage(func(context.Context) (dbStore, error) { return db, nil }, log)
	}
	l, err := ledger.New(ledger.Options{Writer: store, Log: log})
	if err != nil {
		store.Close()
		return nil, nil, nil, err
	}
	store.queue.Store(l)
	u := &usageLedger{ledger: l, report: store, prices: prices, backend: backend}
	registerLedgerMetrics(reg, l)
	closer := func(ctx context.Context) error {
		err := l.Close(ctx)
		return errors.Join(err, store.Close())
	}
	return u, store, closer, nil
}

// pricesOf builds the price table from the models' pricing blocks, once:
// the router's cost strategy, the budget guard and the usage ledger share
// it.
func pricesOf(cfg *Config) *budget.Prices {
	p := budget.NewPrices()
	for _, m := range cfg.Models {
		if m.Pricing != nil {
			p.SetAlias(m.Name, toPrice(m.Pricing))
		}
		for _, d := range m.Deployments {
			if d.Pricing != nil {
				p.SetDeployment(d.Provider, d.Model, toPrice(d.Pricing))
			}
		}
	}
	return p
}

func registerLedgerMetrics(reg prometheus.Registerer, l *ledger.Ledger) {
	dropped := func(reason string, f func(ledger.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "llmproxy_ledger_dropped_total",
			Help:        "Usage records the ledger dropped, by reason: queue_full, write_failed (every retry failed) or shutdown.",
			ConstLabels: prometheus.Labels{"reason": reason}}, func() float64 { return float64(f(l.Stats())) })
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "llmproxy_ledger_queue_depth",
			Help: "Usage records waiting to be written to the database."}, func() float64 { return float64(l.Stats().Queued) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "llmproxy_ledger_written_total",
			Help: "Usage records written to the database."}, func() float64 { return float64(l.Stats().Written) }),
		dropped("queue_full", func(s ledger.Stats) uint64 { return s.DroppedFull }),
		dropped("write_failed", func(s ledger.Stats) uint64 { return s.DroppedFailed }),
		dropped("shutdown", func(s ledger.Stats) uint64 { return s.DroppedClosed }),
	)
}

// recordUsage queues the ledger row of a finished chat or embeddings
// request. Requests without a team (refused before auth) have no row.
func (s *Server) recordUsage(r *reqRecord, outcome string, dur time.Duration) {
	if s.usage == nil || r.team == "" || r.route == routeModels || r.route == routeOther {
		return
	}
	use, cost := s.usage.settle(r)
	use.CachedTokens += r.result.CachedInputTokens // embeddings served from the cache: not in PromptTokens
	s.usage.ledger.Add(ledger.Record{
		Time: r.start.UTC(), RequestID: r.requestID, Route: r.route, Team: r.team, KeyID: r.keyID,
		Alias: r.model, Provider: r.provider, Model: r.modelUsed,
		PromptTokens: use.PromptTokens, CompletionTokens: use.CompletionTokens,
		CachedTokens: use.CachedTokens, ReasoningTokens: use.ReasoningTokens,
		CostUSD: cost, Latency: dur, TTFT: r.ttft, Status: r.status, Outcome: outcome,
		Stream: r.stream, Estimated: use.Estimated,
	})
}

// settle is the usage and cost a request is charged: its Result's
// settlement. The budget guard settles when there is one (its usage
// includes tokenizer counts for cut streams); otherwise the upstream's
// usage is settled here, through the same pricing step the guard uses
// (budget.Prices.SettleResult: the price of what served, the deployment's,
// else the alias that answered; unpriced aliases are free), so the cost is
// computed once and the ledger and the budget cannot disagree.
func (u *usageLedger) settle(r *reqRecord) (router.Usage, float64) {
	m := &r.result
	if !m.Settled {
		u.prices.SettleResult(m, r.aliasServed(), r.usage)
	}
	use := m.Usage
	use.Estimated = use.Estimated || m.Estimated
	return use, m.CostUSD
}
