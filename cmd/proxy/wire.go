package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/providers"
	"llmproxy/router"
)

// buildServer wires a loaded config into a Server: providers, the router,
// the middleware chain, keys and metrics. hc is the upstream HTTP client
// (nil means the tuned default).
func buildServer(cfg *Config, log *slog.Logger, reg *prometheus.Registry, hc *http.Client) (*Server, error) {
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	keys, err := newKeyring(cfg.Teams)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = providers.NewHTTPClient()
	}
	byName := make(map[string]router.Provider, len(cfg.Providers))
	types := make(map[string]string, len(cfg.Providers))
	for i, p := range cfg.Providers {
		pv, err := providers.New(providers.Config{Name: p.Name, Type: p.Type, BaseURL: p.BaseURL, APIKey: p.APIKey.Value(),
			APIVersion: p.APIVersion, Headers: p.Headers}, hc)
		if err != nil {
			return nil, fmt.Errorf("providers[%d] %q: %w", i, p.Name, err)
		}
		byName[p.Name], types[p.Name] = pv, p.Type
	}
	routes := make([]router.Route, 0, len(cfg.Models))
	infos := make([]modelInfo, 0, len(cfg.Models))
	created := time.Now().Unix()
	for _, m := range cfg.Models {
		rt := router.Route{Alias: m.Name}
		for _, d := range m.Deployments {
			rt.Deployments = append(rt.Deployments, router.Deployment{Provider: d.Provider, Model: d.Model, Client: byName[d.Provider]})
		}
		routes = append(routes, rt)
		info := modelInfo{ID: m.Name, Object: "model", Created: created, OwnedBy: m.Deployments[0].Provider, Type: m.Type}
		if types[m.Deployments[0].Provider] == "demo" {
			info.OwnedBy = "llmproxy-demo"
			info.Description = "llmproxy's built-in offline demo: canned text and hash embeddings, not a real model"
		}
		infos = append(infos, info)
	}
	met := newMetrics(reg)
	rt, err := router.New(router.Options{Routes: routes, Observer: met, Timeouts: router.Timeouts{
		FirstToken: time.Duration(cfg.Router.Timeouts.FirstToken),
		Idle:       time.Duration(cfg.Router.Timeouts.Idle),
	}})
	if err != nil {
		return nil, err
	}
	return NewServer(ServerOptions{
		Log: log, Keys: keys, Chat: router.Chain(rt), Router: rt, Models: infos,
		Registry: reg, Metrics: met, Server: cfg.Server,
	}), nil
}
