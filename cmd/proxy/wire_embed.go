package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/embed"
	"llmproxy/router"
	"llmproxy/store/redis"
)

// buildEmbed is the embedding service: its cache is Redis when rdb is set
// (shared by the replicas), else in process.
func buildEmbed(cfg *Config, log *slog.Logger, reg prometheus.Registerer, rdb *redis.Client) (*embed.Service, error) {
	e := cfg.Embeddings
	opts := embed.Options{
		Batch:      batchOptions(e.Batch, embed.BatchOptions{}),
		Aliases:    map[string]embed.BatchOptions{},
		MaxEntries: e.Cache.MaxEntries, TTL: e.Cache.TTL.Std(), Shared: e.Cache.Scope == "shared",
		Registerer: reg, Log: log,
	}
	targets := map[string][]router.Target{}
	for _, m := range cfg.Models {
		for _, d := range m.Deployments {
			targets[m.Name] = append(targets[m.Name], router.Target{Provider: d.Provider, Model: d.Model})
		}
		if m.Embeddings != nil && m.Embeddings.Batch != nil {
			opts.Aliases[m.Name] = batchOptions(*m.Embeddings.Batch, opts.Batch)
		}
	}
	opts.Targets = func(alias string) []router.Target { return targets[alias] }
	if rdb != nil {
		opts.Cache = rdb.EmbedCache()
	}
	return embed.New(opts)
}

// batchOptions is b over base: unset fields keep base's.
func batchOptions(b EmbedBatchConfig, base embed.BatchOptions) embed.BatchOptions {
	if b.MaxInputs > 0 {
		base.MaxInputs = b.MaxInputs
	}
	if b.MaxWait != nil {
		base.MaxWait = time.Duration(*b.MaxWait)
	}
	return base
}

// embedChain is the embeddings chain: the cache above the budget guard
// (which then admits only the misses), the batcher below it.
func embedChain(rt *router.Router, svc *embed.Service, guard router.Middleware) router.EmbedHandler {
	mws := []router.Middleware{svc.Lookup()}
	if guard != nil {
		mws = append(mws, guard)
	}
	mws = append(mws, svc.Batch())
	return router.Chain(rt, mws...).(router.EmbedHandler)
}

// recordEmbedCall writes the usage ledger row of one Go API embeddings
// call (embed.Service.Embed), as the HTTP layer does for /v1/embeddings.
func (s *Server) recordEmbedCall(ctx context.Context, c embed.Call) {
	id, _ := router.IdentityFrom(ctx)
	req := c.Request
	route := routeEmbed
	if lr := router.LedgerRoute(ctx); lr != "" {
		route = lr // "ingest", "rag", "search": who embedded on the team's behalf
	}
	r := &reqRecord{requestID: router.RequestID(ctx), route: route, model: req.Model, team: id.Team, keyID: id.KeyID,
		start: c.Start, status: 200, usage: c.Usage}
	if req.Result != nil {
		r.result = *req.Result
	}
	r.fill()
	outcome := "ok"
	if c.Err != nil {
		e := router.AsError(c.Err)
		outcome, r.status = e.Kind.String(), e.StatusCode()
	}
	s.recordUsage(r, outcome, time.Since(c.Start))
}
