package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"llmproxy/budget"
	"llmproxy/router"
	"llmproxy/store/redis"
)

// routeFor is the router's view of one alias: its deployments with the
// provider's timeouts, and the alias's strategy, fallbacks and overrides.
func routeFor(m ModelConfig, byName map[string]router.Provider, provTimeouts map[string]TimeoutsConfig) router.Route {
	rt := router.Route{Alias: m.Name, Strategy: router.Strategy(m.Strategy), Fallbacks: m.Fallbacks,
		ContextWindowFallbacks: m.ContextWindowFallbacks, ContextWindow: m.ContextWindow}
	if m.Timeouts != nil {
		rt.Timeouts = toTimeouts(*m.Timeouts)
	}
	for _, d := range m.Deployments {
		rt.Deployments = append(rt.Deployments, router.Deployment{Provider: d.Provider, Model: d.Model, Client: byName[d.Provider],
			Weight: d.Weight, Priority: d.Priority, RPM: d.RPM, TPM: d.TPM, Timeouts: toTimeouts(provTimeouts[d.Provider])})
	}
	return rt
}

func toTimeouts(t TimeoutsConfig) router.Timeouts {
	return router.Timeouts{FirstToken: t.FirstToken.Std(), Idle: t.Idle.Std(), Total: t.Total.Std()}
}

// routerOptions turns the router block, the price table and the teams'
// allow-lists into router.Options. cd is nil for in-process cooldowns.
func routerOptions(cfg *Config, routes []router.Route, met *metrics, cd *redis.Cooldowns, prices *budget.Prices) router.Options {
	allowed := map[string]map[string]bool{}
	for _, t := range cfg.Teams {
		if len(t.Models) == 0 {
			continue
		}
		allowed[t.Name] = map[string]bool{}
		for _, a := range t.Models {
			allowed[t.Name][a] = true
		}
	}
	b := cfg.Router.Breaker
	opts := router.Options{Routes: routes, Observer: met, Timeouts: toTimeouts(cfg.Router.Timeouts),
		Strategy: router.Strategy(cfg.Router.Strategy), MaxAttempts: cfg.Router.MaxAttempts,
		MaxCooldown: cfg.Router.MaxCooldown.Std(),
		Breaker: router.BreakerSettings{FailureRatio: b.FailureRatio, MinRequests: b.MinRequests, Window: b.Window.Std(),
			OpenFor: b.OpenFor.Std(), HalfOpenProbes: b.HalfOpenProbes},
		Tokens: budget.NewCounter().Prompt,
		Price: func(alias, provider, model string) (float64, float64, bool) {
			p, ok := prices.For(alias, provider, model)
			return p.InputPerMTok, p.OutputPerMTok, ok
		},
		Allowed: func(team, alias string) bool {
			set, limited := allowed[team]
			return !limited || set[alias]
		},
	}
	if cd != nil {
		opts.Cooldowns = cd
	}
	return opts
}

// sharedCooldowns subscribes to the replicas' shared cooldowns.
func sharedCooldowns(rdb *redis.Client) (*redis.Cooldowns, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cd, err := rdb.Cooldowns(ctx)
	if err != nil {
		return nil, fmt.Errorf("redis cooldowns: %w", err)
	}
	return cd, nil
}

// startRouterBackground runs the shared-cooldown subscriber and the
// optional active probes until the server's base context ends (Shutdown).
// clients holds each provider's upstream client; probes use it too, so a
// probe dials within the provider's connect timeout.
func startRouterBackground(srv *Server, cfg *Config, cd *redis.Cooldowns, clients map[string]*http.Client) {
	initBreakerGauges(srv.metrics, srv.router)
	srv.closers = append(srv.closers, func(context.Context) error {
		for _, hc := range clients {
			hc.CloseIdleConnections()
		}
		return nil
	})
	if cd != nil {
		go func() {
			defer srv.recoverBackground("cooldown subscriber")
			cd.Run(srv.base)
		}()
		srv.closers = append(srv.closers, func(context.Context) error { return cd.Close() })
	}
	every := cfg.Router.ProbeInterval.Std()
	if every <= 0 {
		return
	}
	for _, p := range cfg.Providers {
		// GET {base_url}/models with a Bearer key is OpenAI's shape; other
		// vendors list models elsewhere and authenticate differently, so
		// they stay on passive health (live traffic) only.
		if p.Type != "openai" || p.BaseURL == "" {
			continue
		}
		pr := &prober{rt: srv.router, hc: clients[p.Name], log: srv.log, provider: p.Name, url: strings.TrimRight(p.BaseURL, "/") + "/models",
			key: p.APIKey.Value(), every: every}
		go func() {
			defer srv.recoverBackground("probe")
			pr.run(srv.base)
		}()
	}
}

func (s *Server) recoverBackground(what string) {
	if p := recover(); p != nil {
		s.log.Error("panic in "+what, slog.Any("err", p), slog.String("stack", stack()))
	}
}

// prober checks one provider with GET {base_url}/models, which costs
// nothing, and benches its deployments while it fails.
type prober struct {
	rt       *router.Router
	hc       *http.Client
	log      *slog.Logger
	provider string
	url, key string
	every    time.Duration
}

func (p *prober) run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.probe(ctx); err != nil {
			p.log.WarnContext(ctx, "health probe failed", slog.String("provider", p.provider), slog.Any("err", err))
			// Benched until the next probe can have answered (its tick, its
			// timeout, and slack for a busy scheduler: a tick's, at least
			// a second): a bench of one interval expired before the next
			// verdict and let live traffic reach a provider known to
			// fail, and so did 2×50 ms under -race on a loaded machine. A
			// passing probe clears it at once, so the margin costs a
			// recovery nothing.
			p.rt.SetCooldown(ctx, p.provider, time.Now().Add(p.every+max(p.every, time.Second)+p.timeout()))
		} else {
			p.rt.SetCooldown(ctx, p.provider, time.Time{})
		}
	}
}

// timeout bounds one probe: its interval, at most 10s.
func (p *prober) timeout() time.Duration { return min(p.every, 10*time.Second) }

func (p *prober) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	if p.key != "" {
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// initBreakerGauges reports every deployment's breaker as closed, so the
// gauge exists before the first transition.
func initBreakerGauges(m *metrics, rt *router.Router) {
	for _, d := range rt.Deployments() {
		m.BreakerState(d.Provider, d.ID, router.BreakerClosed)
	}
}
