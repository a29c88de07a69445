package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/budget"
	"llmproxy/providers"
	"llmproxy/rag"
	"llmproxy/router"
	"llmproxy/store/redis"
)

// deps are what buildServer takes beyond the config: the parts a test
// replaces, and the seams of subsystems still to be wired.
type deps struct {
	// hc, when set, is the upstream HTTP client of every provider (tests);
	// nil gives each provider its own, dialing within its
	// timeouts.connect.
	hc *http.Client
	// retriever is RAG's vector-store search. TODO(lead): issue 11's
	// vectorstore.Service, adapted to rag.Retriever, when it is nil #12.
	// Until then nil: requests that ask for retrieval fail it (rag's
	// on_error decides: 503 or no context).
	retriever rag.Retriever
}

// buildServer wires a loaded config into a Server: providers, the router,
// the middleware chain, keys and metrics.
func buildServer(cfg *Config, log *slog.Logger, reg *prometheus.Registry, d deps) (*Server, error) {
	hc := d.hc
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	keys, err := newKeyring(cfg.Teams)
	if err != nil {
		return nil, err
	}
	tr, err := buildTracing(cfg.Telemetry, os.Getenv)
	if err != nil {
		return nil, err
	}
	built := false
	if tr != nil {
		defer func() {
			if !built {
				_ = tr.shutdown(context.Background())
			}
		}()
	}
	clients := make(map[string]*http.Client, len(cfg.Providers))
	byName := make(map[string]router.Provider, len(cfg.Providers))
	types := make(map[string]string, len(cfg.Providers))
	provTimeouts := make(map[string]TimeoutsConfig, len(cfg.Providers))
	for i, p := range cfg.Providers {
		clients[p.Name] = providerClient(p, hc)
		if tr != nil {
			clients[p.Name] = tr.traced(clients[p.Name])
		}
		pv, err := providers.New(providers.Config{Name: p.Name, Type: p.Type, BaseURL: p.BaseURL, APIKey: p.APIKey.Value(),
			APIVersion: p.APIVersion, Headers: p.Headers}, clients[p.Name])
		if err != nil {
			return nil, fmt.Errorf("providers[%d] %q: %w", i, p.Name, err)
		}
		byName[p.Name], types[p.Name] = pv, p.Type
		provTimeouts[p.Name] = p.Timeouts
	}
	routes := make([]router.Route, 0, len(cfg.Models))
	infos := make([]modelInfo, 0, len(cfg.Models))
	created := time.Now().Unix()
	for _, m := range cfg.Models {
		routes = append(routes, routeFor(m, byName, provTimeouts))
		info := modelInfo{ID: m.Name, Object: "model", Created: created, OwnedBy: m.Deployments[0].Provider, Type: m.Type}
		if types[m.Deployments[0].Provider] == "demo" {
			info.OwnedBy = "llmproxy-demo"
			info.Description = "llmproxy's built-in offline demo: canned text and hash embeddings, not a real model"
		}
		infos = append(infos, info)
	}
	met := newMetrics(reg)
	var rdb *redis.Client
	var checks []readyCheck
	if cfg.Redis != nil {
		if rdb, err = redis.New(redis.Options{URL: cfg.Redis.URL, Prefix: cfg.Redis.Prefix, PoolSize: cfg.Redis.PoolSize,
			Timeout: time.Duration(cfg.Redis.Timeout), TracerProvider: tr.childOnly()}); err != nil {
			return nil, err
		}
		if cfg.Redis.OnError != "fail_open" {
			// Under fail_open requests are served without Redis: it must not
			// take the replica out of rotation.
			checks = append(checks, redisCheck(rdb))
		}
	}
	// With Redis, cooldowns and open breakers are shared by every replica.
	var cd *redis.Cooldowns
	defer func() {
		if cd != nil && !built {
			cd.Close()
		}
		if rdb != nil && !built {
			rdb.Close()
		}
	}()
	if rdb != nil {
		if cd, err = sharedCooldowns(rdb); err != nil {
			return nil, err
		}
	}
	prices := pricesOf(cfg) // the one price table: router, guard and ledger share it
	ropts := routerOptions(cfg, routes, met, cd, prices)
	if tr != nil {
		ropts.Tracer = tr.attempts(cfg)
	}
	rt, err := router.New(ropts)
	if err != nil {
		return nil, err
	}
	// The usage database is no /ready check: the ledger queues and retries
	// while it is down (usage_store.go), and requests do not wait for it.
	usage, store, closeUsage, err := openUsage(cfg, log, reg, prices, tr.childOnly())
	if err != nil {
		return nil, err
	}
	defer func() {
		if !built {
			_ = closeUsage(context.Background())
		}
	}()
	met.breaker.watch(rt.Deployments)
	// Memory runs before the guard, so budgets count the history it adds.
	mem, memJobs, err := buildMemory(cfg, log, reg, store)
	if err != nil {
		return nil, err
	}
	guard, err := buildGuard(cfg, log, reg, rdb, store, prices)
	if err != nil {
		return nil, err
	}
	var rerank router.RerankHandler = countedRerank{next: rt, count: budget.NewCounter().Text}
	if guard != nil {
		rerank = guard.Rerank(rerank)
	}
	emb, err := buildEmbed(cfg, log, reg, rdb)
	if err != nil {
		return nil, err
	}
	vs := buildVectorStores(cfg, log, reg, emb)
	if d.retriever == nil && vs != nil {
		d.retriever = storeRetriever{vs}
	}
	// RAG runs after memory (it retrieves for the newest user message)
	// and before the guard, so budgets count the references it adds.
	rerankGo := &rerankAPI{next: rerank}
	rg, err := buildRAG(cfg, log, reg, d.retriever, rerankGo)
	if err != nil {
		return nil, err
	}
	mws := []router.Middleware{mem.Middleware(), rg.Middleware()}
	var guardMW router.Middleware
	if guard != nil {
		guardMW = guard.Middleware()
		mws = append(mws, guardMW)
	}
	if guard != nil {
		usage.status = guard.Status
	}
	bg := newJobs(cfg, log, memJobs)
	bg.middleware = tr.jobs()
	if vs != nil {
		bg.parts = append(bg.parts, vs.jobs(bg))
	}
	srv := NewServer(ServerOptions{
		Log: log, Keys: keys, Chat: router.Chain(rt, mws...), Embed: embedChain(rt, emb, guardMW), Embedder: emb, Rerank: rerank, Router: rt, Models: infos,
		Registry: reg, Metrics: met, Server: cfg.Server, Checks: checks, Usage: usage, Memory: mem, VectorStores: vs, Tracing: tr,
		Closers: []func(context.Context) error{bg.stop, func(context.Context) error { emb.Close(); return nil }, closeUsage},
	})
	// The jobs start once the server bound the embedding service, which a
	// job left from an earlier run may call at once.
	if err := bg.start(store); err != nil {
		return nil, err
	}
	rerankGo.record = srv.recordUsage
	built = true
	startRouterBackground(srv, cfg, cd, clients)
	if rdb != nil {
		// Last: streams settle their budgets in Redis until the drain ends,
		// and the cooldown subscriber's own Close comes first.
		srv.closers = append(srv.closers, func(context.Context) error { return rdb.Close() })
	}
	if tr != nil {
		srv.closers = append(srv.closers, tr.shutdown) // last: the closers above may still trace
	}
	return srv, nil
}

// providerClient is p's upstream client: hc when set, else its own
// transport, so that p's connect timeout (providers[].timeouts.connect,
// which inherits router.timeouts.connect) bounds its dials and TLS
// handshakes without touching other providers.
func providerClient(p ProviderConfig, hc *http.Client) *http.Client {
	if hc != nil {
		return hc
	}
	return providers.NewHTTPClientWith(providers.TransportOptions{
		ResponseHeaderTimeout: providers.DefaultResponseHeaderTimeout,
		Connect:               p.Timeouts.Connect.Std(),
	})
}
