package rag

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/template"
	"time"

	"llmproxy/router"
)

// Retriever is the vector-store search RAG needs (issue 11's
// vectorstore.Service, adapted by cmd/proxy).
type Retriever interface {
	// ResolveStores maps names or vs_ ids to the team's store ids; a ref
	// the team does not own is an error wrapping ErrStoreNotFound
	// (StoreNotFound builds one), never silently skipped.
	ResolveStores(ctx context.Context, team string, refs []string) ([]string, error)
	// Search embeds query (charged to the team; ctx carries
	// router.WithLedgerRoute(ctx, "rag")) and returns at most topK hybrid
	// results at or above scoreThreshold, best first, scores in [0, 1].
	Search(ctx context.Context, team string, storeIDs []string, query string, topK int, scoreThreshold float64) ([]Hit, error)
}

// Hit is one chunk a search found.
type Hit struct {
	StoreID, FileID, Filename string
	ChunkIndex                int
	Score                     float64
	Content                   string
}

// ErrStoreNotFound is what a Retriever wraps for a store the team does not
// own; RAG answers 404.
var ErrStoreNotFound = errors.New("vector store not found")

// StoreNotFoundError names the store that was not found.
type StoreNotFoundError struct{ Ref string }

func (e *StoreNotFoundError) Error() string        { return "vector store " + e.Ref + " not found" }
func (e *StoreNotFoundError) Is(target error) bool { return target == ErrStoreNotFound }

// StoreNotFound is the error a Retriever returns for ref.
func StoreNotFound(ref string) error { return &StoreNotFoundError{Ref: ref} }

// Observer receives one event per request that asked for retrieval
// (cmd/proxy turns it into llmproxy_rag_requests_total{outcome} and
// llmproxy_rag_retrieval_seconds). outcome is "used", "no_results",
// "skipped" (failed open), "failed" (failed closed) or "refused" (the
// client's error: unknown store, budget, rate limit).
type Observer interface {
	Retrieval(outcome string, took time.Duration)
}

// Options configure a RAG.
type Options struct {
	// Retriever searches the vector stores; nil fails every retrieval
	// (each alias's on_error decides what the client gets).
	Retriever Retriever
	// Rerank is the rerank chain (budget guard and router, written to
	// the usage ledger); required when any Settings.RerankModel is set.
	Rerank router.RerankHandler
	// Count returns the token count of text for the alias model;
	// cmd/proxy passes the budget's tokenizer. Required.
	Count func(model, text string) int
	// Aliases are the settings of the aliases with a rag block.
	Aliases map[string]Settings
	// Default applies to requests that name their stores on an alias
	// without a rag block (its VectorStores are unused).
	Default Settings
	// Observer receives metrics; nil drops them.
	Observer Observer
	// Log receives a Warn line per request answered without context.
	// Required.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// RAG is the retrieval middleware.
type RAG struct {
	o       Options
	aliases map[string]Settings
	def     Settings
}

// New checks o and returns a RAG.
func New(o Options) (*RAG, error) {
	if o.Count == nil || o.Log == nil {
		return nil, errors.New("rag: Count and Log are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	tmpl, err := ParseTemplate(DefaultTemplate)
	if err != nil {
		return nil, fmt.Errorf("rag: default template: %w", err)
	}
	r := &RAG{o: o, aliases: make(map[string]Settings, len(o.Aliases)), def: o.Default.withDefaults(tmpl)}
	var errs []error
	for alias, s := range o.Aliases {
		if len(s.VectorStores) == 0 {
			errs = append(errs, fmt.Errorf("rag: alias %q: no vector stores", alias))
		}
		r.aliases[alias] = s.withDefaults(tmpl)
	}
	for alias, s := range r.all() {
		if err := s.check(); err != nil {
			errs = append(errs, fmt.Errorf("rag: alias %q: %w", alias, err))
		}
		if s.RerankModel != "" && o.Rerank == nil {
			errs = append(errs, fmt.Errorf("rag: alias %q: rerank_model %q without a rerank handler", alias, s.RerankModel))
		}
	}
	return r, errors.Join(errs...)
}

// all is every alias's settings, the default under "".
func (r *RAG) all() map[string]Settings {
	m := map[string]Settings{"": r.def}
	for a, s := range r.aliases {
		m[a] = s
	}
	return m
}

type nopObserver struct{}

func (nopObserver) Retrieval(string, time.Duration) {}

// Middleware returns the chain stage. It serves chat only; router.Chain
// passes embeddings to the stage inside it.
func (r *RAG) Middleware() router.Middleware {
	return func(next router.Handler) router.Handler {
		return router.HandlerFunc(func(ctx context.Context, req *router.ChatRequest) (router.Stream, error) {
			return r.serve(ctx, req, next)
		})
	}
}

// The values of router.Result.RAG.
const (
	used      = "used"
	noResults = "no_results"
	skipped   = "skipped"
)

func (r *RAG) serve(ctx context.Context, req *router.ChatRequest, next router.Handler) (router.Stream, error) {
	set, on := r.aliases[req.Model]
	if !on && req.VectorStoreIDs == "" && !hasStoreField(req.Body) {
		return next.Serve(ctx, req) // no retrieval asked: the common case
	}
	refs, asked, err := storeRefs(req)
	if err != nil {
		return nil, err
	}
	if !on {
		set = r.def
	}
	if asked {
		set.VectorStores = refs // an empty list turns the alias's RAG off
	}
	if len(set.VectorStores) == 0 {
		return next.Serve(ctx, req)
	}
	req, res := req.WithResult()
	start := r.o.Now()
	err = r.augment(ctx, req, res, set)
	took := r.o.Now().Sub(start)
	if err == nil {
		if !req.DryRun {
			r.o.Observer.Retrieval(res.RAG, took)
		}
		return next.Serve(ctx, req)
	}
	if e := clientError(err); e != nil {
		r.o.Observer.Retrieval("refused", took)
		return nil, e
	}
	if !set.FailOpen {
		r.o.Observer.Retrieval("failed", took)
		return nil, &router.Error{Kind: router.KindNoProvider, Err: err,
			Message: "Retrieval from the vector stores failed; try again shortly."}
	}
	// augment changes the body only once everything it needs succeeded:
	// the request goes on as the client sent it.
	res.RAG, res.Sources = skipped, nil
	if req.DryRun {
		res.Note("rag", "retrieval failed ("+router.AsError(err).Kind.String()+"): would answer without context (fail_open)")
		return next.Serve(ctx, req)
	}
	r.o.Observer.Retrieval(skipped, took)
	r.o.Log.WarnContext(ctx, "rag: retrieval failed; answering without context",
		slog.String("request_id", router.RequestID(ctx)), slog.String("model", req.Model),
		slog.Int("vector_stores", len(set.VectorStores)), slog.Any("err", err))
	return next.Serve(ctx, req)
}

// hasStoreField reports whether body has a top-level vector_store_ids.
// A body without those bytes and without a \u escape (which could spell
// the key) has none: the fast substring search spares most requests the
// scan of the top-level keys.
func hasStoreField(body []byte) bool {
	if !bytes.Contains(body, storeField) && !bytes.Contains(body, unicodeEscape) {
		return false
	}
	return router.TopField(body, "vector_store_ids") != nil
}

var (
	storeField    = []byte("vector_store_ids")
	unicodeEscape = []byte(`\u`)
)

// clientError is err as the client's error, nil when it is a failure of
// ours or an upstream's: an unknown store (404), or a refusal of the
// query's embedding or rerank that the client caused (budget, rate
// limit, invalid input) or a client that left.
func clientError(err error) *router.Error {
	var nf *StoreNotFoundError
	switch {
	case errors.As(err, &nf):
		return storeNotFound(nf.Ref)
	case errors.Is(err, ErrStoreNotFound):
		return storeNotFound("")
	}
	var e *router.Error
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Kind {
	case router.KindInvalidRequest, router.KindNotFound, router.KindBudgetExceeded, router.KindRateLimited,
		router.KindUnauthorized, router.KindCanceled:
		return e
	}
	return nil
}

func storeNotFound(ref string) *router.Error {
	msg := "No vector store found with one of the ids in vector_store_ids."
	if ref != "" {
		msg = fmt.Sprintf("No vector store found with id '%s'.", router.Clip(ref))
	}
	return &router.Error{Kind: router.KindNotFound, Param: "vector_store_ids", Message: msg}
}

// render runs the template.
func render(t *template.Template, d PromptData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("rag: template: %w", err)
	}
	return b.String(), nil
}
