package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"

	"llmproxy/providers"
	"llmproxy/rag"
)

// LoadConfig reads the YAML file at path and parses it with the process
// environment (see ParseConfig).
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	return c, nil
}

// ParseConfig turns YAML into a checked Config: parse, expand ${NAME} with
// lookup (expand.go), decode strictly (unknown keys, duplicate keys and
// wrong types are errors with [line:col]), applyDefaults, then Validate
// against the provider types this build knows. Every expansion problem, or
// every validation problem, is reported at once.
//
// Errors never quote a Secret, and carry no source excerpt, because the
// excerpt could show a neighbouring line that holds a literal key.
func ParseConfig(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, errors.New(yamlErrorText(err))
	}
	var docs int
	c := &Config{}
	for _, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		if docs++; docs > 1 {
			return nil, fmt.Errorf("[%d:%d] want one YAML document, found a second one", d.Body.GetToken().Position.Line, d.Body.GetToken().Position.Column)
		}
		body, err := expandTree(d.Body, lookup)
		if err != nil {
			return nil, err
		}
		if err := yaml.NodeToValue(body, c, yaml.Strict()); err != nil {
			return nil, errors.New(decodeErrorText(err, body))
		}
		c.doc = body
	}
	c.applyDefaults()
	if err := c.Validate(providers.Types()); err != nil {
		return nil, err
	}
	return c, nil
}

// yamlErrorText is "[line:col] message" for goccy's errors, without the
// source excerpt they print by default.
func yamlErrorText(err error) string {
	return yaml.FormatError(err, false, false)
}

// Defaults. Changing one changes every deployment that relies on it: say so
// in the changelog.
const (
	defaultListen       = "127.0.0.1:8080"
	defaultMaxBodyBytes = 10 << 20
	defaultDataDir      = "./data"
	defaultLogLevel     = "info"
	// defaultShutdownDelay is server.shutdown_delay when unset.
	defaultShutdownDelay = 5 * time.Second
	// vector_stores defaults: the seed's chunking, 50 MiB uploads.
	defaultChunkTokens  = 500
	defaultChunkOverlap = 50
	defaultMaxFileBytes = 50 << 20
)

// defaultBaseURL is the public API root of the vendors whose adapters need
// one, or "" for types that have none (demo) or that we do not know.
func defaultBaseURL(providerType string) string {
	switch providerType {
	case "openai":
		return "https://api.openai.com/v1"
	case "anthropic":
		return "https://api.anthropic.com"
	case "gemini":
		return "https://generativelanguage.googleapis.com"
	}
	return ""
}

// applyDefaults fills every unset (zero) field that has a default. Values
// that are set, even invalid ones, are left for Validate to report.
// Provider timeouts inherit router.timeouts field by field, so adapters get
// complete timeouts; a model's timeouts block stays partial, because it
// overrides whichever provider serves the request.
func (c *Config) applyDefaults() {
	s := &c.Server
	setDefault(&s.Listen, defaultListen)
	setDefault(&s.MaxBodyBytes, defaultMaxBodyBytes)
	if s.ShutdownDelay == nil {
		d := Duration(defaultShutdownDelay)
		s.ShutdownDelay = &d
	}
	setDefault(&s.DrainTimeout, Duration(30*time.Second))
	setDefault(&s.ReadTimeout, Duration(60*time.Second))
	setDefault(&s.BodyReadTimeout, Duration(10*time.Second))
	setDefault(&s.IdleTimeout, Duration(120*time.Second))
	setDefault(&s.DataDir, defaultDataDir)
	setDefault(&s.LogLevel, defaultLogLevel)

	r := &c.Router
	setDefault(&r.Strategy, "weighted")
	setDefault(&r.MaxAttempts, 3)
	setDefault(&r.MaxCooldown, Duration(5*time.Minute))
	setDefault(&r.Breaker.FailureRatio, 0.5)
	setDefault(&r.Breaker.MinRequests, 10)
	setDefault(&r.Breaker.Window, Duration(60*time.Second))
	setDefault(&r.Breaker.OpenFor, Duration(30*time.Second))
	setDefault(&r.Breaker.HalfOpenProbes, 2)
	r.Timeouts.inherit(TimeoutsConfig{
		Connect:    Duration(5 * time.Second),
		FirstToken: Duration(30 * time.Second),
		Idle:       Duration(30 * time.Second),
		Total:      Duration(600 * time.Second),
	})

	for i := range c.Providers {
		p := &c.Providers[i]
		setDefault(&p.BaseURL, defaultBaseURL(p.Type))
		p.Timeouts.inherit(r.Timeouts)
	}
	for i := range c.Models {
		m := &c.Models[i]
		setDefault(&m.Type, "chat")
		for j := range m.Deployments {
			setDefault(&m.Deployments[j].Weight, 1)
		}
	}
	for i := range c.Teams {
		setDefault(&c.Teams[i].DowngradePolicy, "keep")
	}
	if c.Redis != nil {
		setDefault(&c.Redis.OnError, "fail_closed")
		setDefault(&c.Redis.Prefix, "llmproxy")
		setDefault(&c.Redis.Timeout, Duration(3*time.Second))
		setDefault(&c.Redis.PoolSize, max(64, 10*runtime.GOMAXPROCS(0)))
	}
	setDefault(&c.Budget.Unpriced, "allow")
	setDefault(&c.Memory.Retention, Duration(720*time.Hour))
	setDefault(&c.Memory.CleanupEvery, Duration(time.Hour))
	e := &c.Embeddings
	setDefault(&e.Batch.MaxInputs, 128)
	if e.Batch.MaxWait == nil {
		d := Duration(5 * time.Millisecond)
		e.Batch.MaxWait = &d
	}
	setDefault(&e.Cache.TTL, Duration(168*time.Hour))
	setDefault(&e.Cache.MaxEntries, 100000)
	setDefault(&e.Cache.Scope, "team")
	if vs := c.VectorStores; vs != nil {
		setDefault(&vs.Chunking.MaxTokens, defaultChunkTokens)
		if vs.Chunking.OverlapTokens == nil {
			o := defaultChunkOverlap
			vs.Chunking.OverlapTokens = &o
		}
		setDefault(&vs.MaxFileBytes, defaultMaxFileBytes)
		setDefault(&vs.Index, "hnsw")
	}
	g := &c.RAG
	setDefault(&g.TopK, rag.DefaultTopK)
	setDefault(&g.RerankTopK, min(rag.DefaultRerankTopK, max(g.TopK, 1)))
	setDefault(&g.MaxContextTokens, rag.DefaultMaxContextTokens)
	setDefault(&g.OnError, "fail_closed")
	if g.ScoreThreshold == nil {
		g.ScoreThreshold = new(float64)
	}
}

// inherit sets every zero field of t from d.
func (t *TimeoutsConfig) inherit(d TimeoutsConfig) {
	setDefault(&t.Connect, d.Connect)
	setDefault(&t.FirstToken, d.FirstToken)
	setDefault(&t.Idle, d.Idle)
	setDefault(&t.Total, d.Total)
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}
