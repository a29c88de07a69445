package providers

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	"llmproxy/providers/anthropic"
	"llmproxy/providers/azure"
	"llmproxy/providers/demo"
	"llmproxy/providers/gemini"
	"llmproxy/providers/openai"
	"llmproxy/router"
)

// Config is what every adapter is built from; cmd/proxy fills it from YAML.
type Config struct {
	// Name is the provider's configured name (a metrics label).
	Name string
	// Type selects the adapter: a key of the registry below.
	Type string
	// BaseURL is the upstream's API root, e.g. https://api.openai.com/v1.
	BaseURL string
	// APIKey is the upstream credential. It never leaves the adapter except
	// in the upstream request's auth header.
	APIKey string
	// APIVersion is for vendors that version by query or header (azure,
	// anthropic).
	APIVersion string
	// Headers are extra static headers sent upstream.
	Headers map[string]string
	// ResponseHeaderTimeout bounds the wait for the upstream's status line.
	ResponseHeaderTimeout time.Duration
}

type factory func(cfg Config, hc *http.Client) (router.Provider, error)

var registry = map[string]factory{
	"openai": func(cfg Config, hc *http.Client) (router.Provider, error) {
		return openai.New(openai.Config{Name: cfg.Name, BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, Headers: cfg.Headers}, hc)
	},
	"anthropic": func(cfg Config, hc *http.Client) (router.Provider, error) {
		return anthropic.New(anthropic.Config{Name: cfg.Name, BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, APIVersion: cfg.APIVersion, Headers: cfg.Headers}, hc)
	},
	"azure": func(cfg Config, hc *http.Client) (router.Provider, error) {
		return azure.New(azure.Config{Name: cfg.Name, BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, APIVersion: cfg.APIVersion, Headers: cfg.Headers}, hc)
	},
	"gemini": func(cfg Config, hc *http.Client) (router.Provider, error) {
		return gemini.New(gemini.Config{Name: cfg.Name, BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, APIVersion: cfg.APIVersion, Headers: cfg.Headers}, hc)
	},
	"demo": func(cfg Config, _ *http.Client) (router.Provider, error) {
		return demo.New(demo.Config{Name: cfg.Name}), nil
	},
}

// Types lists the provider types this build knows, sorted.
func Types() []string {
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Known reports whether typ is a registered provider type.
func Known(typ string) bool { _, ok := registry[typ]; return ok }

// New builds the adapter for cfg.Type. hc is the shared upstream client.
func New(cfg Config, hc *http.Client) (router.Provider, error) {
	f, ok := registry[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("unknown provider type %q", cfg.Type)
	}
	return f(cfg, hc)
}
