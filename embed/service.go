package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/router"
)

// Cache defaults (embeddings.cache).
const (
	DefaultTTL        = 168 * time.Hour
	DefaultMaxEntries = 100_000
)

// Options configure a Service.
type Options struct {
	// Batch is the default batching; Aliases override it per alias.
	Batch   BatchOptions
	Aliases map[string]BatchOptions
	// Cache holds the vectors; nil is a MemoryCache of MaxEntries.
	Cache      Cache
	MaxEntries int
	// TTL is how long an entry lives (default 168h).
	TTL time.Duration
	// Shared drops the team from cache keys (scope: shared): teams then
	// answer each other's inputs from the cache.
	Shared bool
	// Targets lists the deployments (provider, upstream model) of an
	// alias, in the order the cache probes them. Required.
	Targets func(alias string) []router.Target
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	Log        *slog.Logger
	// Now and AfterFunc are the clock and timer (tests); nil: time's.
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

// Service is the embedding service: a cache stage (Lookup) above the
// budget guard, a coalescing stage (Batch) below it, and Embed, the Go API
// that runs a request through the whole chain.
type Service struct {
	cache   Cache
	ttl     time.Duration
	shared  bool
	targets func(string) []router.Target
	log     *slog.Logger
	m       *metrics
	batch   BatchOptions
	aliases map[string]BatchOptions
	now     func() time.Time
	after   func(time.Duration, func()) func() bool
	head    router.EmbedHandler
	record  func(context.Context, Call)
	batcher *batcher
	// The default cache is built on first use, so that a proxy serving
	// no embeddings runs no cleanup goroutine for it; Close stops it.
	maxEntries int
	ownedOnce  sync.Once
	owned      *MemoryCache
}

// New checks opts and builds a Service.
func New(opts Options) (*Service, error) {
	if opts.Targets == nil {
		return nil, errors.New("embed: Options.Targets is required")
	}
	s := &Service{cache: opts.Cache, ttl: opts.TTL, shared: opts.Shared, targets: opts.Targets, log: opts.Log,
		batch: opts.Batch.withDefaults(), aliases: make(map[string]BatchOptions, len(opts.Aliases)),
		now: opts.Now, after: opts.AfterFunc}
	for a, o := range opts.Aliases {
		s.aliases[a] = o.withDefaults()
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	s.maxEntries = opts.MaxEntries
	if s.maxEntries <= 0 {
		s.maxEntries = DefaultMaxEntries
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.after == nil {
		s.after = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	s.m = newMetrics(opts.Registerer)
	return s, nil
}

// batchOptions is alias's batching.
func (s *Service) batchOptions(alias string) BatchOptions {
	if o, ok := s.aliases[alias]; ok {
		return o
	}
	return s.batch
}

// stage is an embeddings stage in a chain; chat passes straight through.
type stage struct {
	router.Handler
	serve func(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error)
}

func (st stage) ServeEmbed(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
	return st.serve(ctx, req)
}

// Lookup is the cache stage. Put it above the budget guard, so that the
// guard admits and charges only the inputs the cache could not answer.
func (s *Service) Lookup() router.Middleware {
	return func(next router.Handler) router.Handler {
		e, ok := next.(router.EmbedHandler)
		if !ok {
			return next
		}
		return stage{Handler: next, serve: func(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
			return s.lookup(ctx, req, e)
		}}
	}
}

// Batch is the coalescing stage. Put it below the budget guard, right
// above the router: every request it merges was admitted on its own. It
// answers with Vectors, which Lookup renders, so it needs Lookup above.
// One Service has one Batch stage.
func (s *Service) Batch() router.Middleware {
	return func(next router.Handler) router.Handler {
		e, ok := next.(router.EmbedHandler)
		if !ok {
			return next
		}
		s.batcher = &batcher{next: e, opts: s.batchOptions, afterFunc: s.after, now: s.now, m: s.m, log: s.log,
			queues: map[queueKey]*pending{}}
		return stage{Handler: next, serve: s.batcher.serve}
	}
}

// Call is one finished Go API request, for the usage ledger: req holds
// what the stages reported in its Result.
type Call struct {
	Request *router.EmbedRequest
	Usage   router.Usage
	Start   time.Time
	Err     error
}

// Bind sets the chain Embed runs requests through (the head of the chain
// that holds Lookup and Batch) and record, which receives every finished
// Embed call for the usage ledger (nil: none). Call it once, while wiring.
func (s *Service) Bind(head router.EmbedHandler, record func(ctx context.Context, c Call)) {
	s.head, s.record = head, record
}

// Close waits for the upstream calls in flight and stops the in-process
// cache's cleanup goroutine.
func (s *Service) Close() {
	if s.batcher != nil {
		s.batcher.close()
	}
	s.ownedOnce.Do(func() {}) // no cache after Close
	if s.owned != nil {
		s.owned.Close()
	}
}

// store is the cache: Options.Cache, or the in-process one.
func (s *Service) store() Cache {
	if s.cache != nil {
		return s.cache
	}
	s.ownedOnce.Do(func() { s.owned = NewMemoryCache(s.maxEntries, s.ttl) })
	if s.owned == nil {
		return noCache{}
	}
	return s.owned
}

// noCache is the cache after Close: it remembers nothing.
type noCache struct{}

func (noCache) GetMulti(_ context.Context, keys []string) ([][]byte, error) {
	return make([][]byte, len(keys)), nil
}
func (noCache) SetMulti(context.Context, []Item, time.Duration) error { return nil }

// Embed is the Go API (RAG queries, ingestion): it embeds texts with
// alias for id's team through the bound chain, with the same cache,
// batching, budget, rate limits and usage ledger as /v1/embeddings, and
// returns one vector per text and what the stages reported (cache status,
// settled usage and cost).
func (s *Service) Embed(ctx context.Context, id router.Identity, alias string, texts []string) ([][]float32, *router.Result, error) {
	if s.head == nil {
		return nil, nil, errors.New("embed: Service.Embed before Bind")
	}
	body, err := json.Marshal(map[string]any{"model": alias, "input": texts, "encoding_format": "base64"})
	if err != nil {
		return nil, nil, fmt.Errorf("embed: encode request: %w", err)
	}
	req := &router.EmbedRequest{Model: alias, Body: body, Input: texts, EncodingFormat: "base64", Result: &router.Result{}}
	ctx = router.WithIdentity(ctx, id)
	start := s.now()
	resp, err := s.head.ServeEmbed(ctx, req)
	var usage router.Usage
	if err == nil {
		usage = resp.Usage
	}
	if s.record != nil {
		s.record(ctx, Call{Request: req, Usage: usage, Start: start, Err: err})
	}
	if err != nil {
		return nil, req.Result, err
	}
	if !req.Result.Settled {
		req.Result.Usage = usage
	}
	return resp.Vectors, req.Result, nil
}
