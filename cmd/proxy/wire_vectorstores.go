package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"llmproxy/embed"
	"llmproxy/rag/chunk"
	"llmproxy/rag/parse"
	"llmproxy/router"
	"llmproxy/store/postgres"
	"llmproxy/store/sqlite"
	"llmproxy/vectorstore"
)

// vectorStores builds the Files and Vector Stores service (issue 11) on
// the usage database once it is connected, and holds it for the HTTP
// routes: until then they answer 503.
type vectorStores struct {
	cfg  *VectorStoresConfig
	opts vectorstore.Options
	q    vectorstore.Queue
	mu   sync.Mutex
	svc  atomic.Pointer[vectorstore.Service]
}

var errFilesUnavailable = &router.Error{Kind: router.KindNoProvider,
	Message: "File and vector store storage is unavailable; retry later."}

// buildVectorStores returns nil without vector_stores. The service's
// embeddings go through emb, charged to the team (CheckModel keeps a team
// to the embedding aliases its allow-list holds).
func buildVectorStores(cfg *Config, log *slog.Logger, reg prometheus.Registerer, emb *embed.Service) *vectorStores {
	vc := cfg.VectorStores
	if vc == nil {
		return nil
	}
	embedding := map[string]bool{}
	for _, m := range cfg.Models {
		embedding[m.Name] = m.Type == modelTypeEmbedding
	}
	allowed := map[string][]string{}
	for _, t := range cfg.Teams {
		allowed[t.Name] = t.Models
	}
	check := func(team, alias string) error {
		if !embedding[alias] {
			return &router.Error{Kind: router.KindInvalidRequest, Param: "embedding_model", Code: "model_not_found",
				Message: fmt.Sprintf("Invalid 'embedding_model': %q is not an embedding model of this proxy.", router.Clip(alias))}
		}
		if a := allowed[team]; len(a) > 0 && !slices.Contains(a, alias) {
			return &router.Error{Kind: router.KindInvalidRequest, Status: 403, Param: "embedding_model", Code: "model_not_allowed",
				Message: fmt.Sprintf("Your team may not use the embedding model %q.", router.Clip(alias))}
		}
		return nil
	}
	return &vectorStores{cfg: vc, opts: vectorstore.Options{
		Embedder:       emb,
		Parse:          parseText,
		Chunk:          chunkText,
		CheckChunking:  checkChunking,
		EmbeddingModel: vc.EmbeddingModel,
		Chunking:       vectorstore.Chunking{MaxTokens: vc.Chunking.MaxTokens, OverlapTokens: *vc.Chunking.OverlapTokens},
		CheckModel:     check,
		MaxFileBytes:   vc.MaxFileBytes,
		Registerer:     reg,
		Log:            log,
	}}
}

// service is the Service once built, or nil.
func (v *vectorStores) service() (*vectorstore.Service, error) {
	if s := v.svc.Load(); s != nil {
		return s, nil
	}
	return nil, errFilesUnavailable
}

// build returns the Service on db, building it on first use: on
// PostgreSQL that creates the chunks table, which needs pgvector.
func (v *vectorStores) build(ctx context.Context, db dbStore) (*vectorstore.Service, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s := v.svc.Load(); s != nil {
		return s, nil
	}
	o := v.opts
	switch d := db.(type) {
	case *sqlite.DB:
		o.Storage = d
	case *postgres.DB:
		vdb, err := d.VectorStores(ctx, v.cfg.Index)
		if err != nil {
			return nil, err
		}
		o.Storage = vdb
	default:
		return nil, errFilesUnavailable
	}
	s, err := vectorstore.New(o)
	if err != nil {
		return nil, err
	}
	s.SetQueue(v.q)
	v.svc.Store(s)
	return s, nil
}

// jobs is the river part: ingestion workers on their own queue and the
// reconciler, added once the Service is built on the connected database.
func (v *vectorStores) jobs(q vectorstore.Queue) jobPart {
	v.q = q
	return jobPart{
		queues: map[string]river.QueueConfig{vectorstore.QueueIngest: {MaxWorkers: vectorstore.IngestWorkers}},
		every:  vectorstore.DefaultReconcileEvery,
		add: func(ctx context.Context, db dbStore, w *river.Workers) ([]*river.PeriodicJob, error) {
			s, err := v.build(ctx, db)
			if err != nil {
				return nil, fmt.Errorf("vector stores: %w", err)
			}
			return []*river.PeriodicJob{s.AddJobs(w)}, nil
		},
	}
}

// parseText is rag/parse.Text, whose *parse.Error (unsupported_file,
// invalid_file) becomes the file's last_error.
func parseText(ctx context.Context, name string, data []byte) (string, error) {
	text, err := parse.Text(ctx, name, data)
	if pe := (*parse.Error)(nil); errors.As(err, &pe) {
		return "", &vectorstore.FileError{Code: pe.Code, Message: pe.Message}
	}
	return text, err
}

// chunkText is rag/chunk.Split.
func chunkText(text string, c vectorstore.Chunking) []vectorstore.TextChunk {
	cs := chunk.Split(text, chunk.Options{MaxTokens: c.MaxTokens, OverlapTokens: c.OverlapTokens})
	out := make([]vectorstore.TextChunk, len(cs))
	for i, x := range cs {
		out[i] = vectorstore.TextChunk{Index: x.Index, Text: x.Text, Tokens: x.Tokens}
	}
	return out
}

// checkChunking is OpenAI's bounds of a static strategy (rag/chunk).
func checkChunking(c vectorstore.Chunking) error {
	return chunk.Options{MaxTokens: c.MaxTokens, OverlapTokens: c.OverlapTokens}.Validate()
}
