package vectorstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/router"
)

// Embedder is the embedding service's Go API (embed.Service.Embed): the
// same cache, budget, rate limits and usage ledger as /v1/embeddings.
type Embedder interface {
	Embed(ctx context.Context, id router.Identity, alias string, texts []string) ([][]float32, *router.Result, error)
}

// Queue enqueues ingestion jobs and tells whether one is still waiting.
// cmd/proxy implements it over the river client.
type Queue interface {
	// Enqueue inserts one job per ref and returns their ids in order.
	Enqueue(ctx context.Context, refs []FileRef) ([]int64, error)
	// Waiting reports whether job id is queued or scheduled for a retry:
	// neither running nor finished.
	Waiting(ctx context.Context, id int64) (bool, error)
}

// TextChunk is one chunk of a document's text.
type TextChunk struct {
	Index  int
	Text   string
	Tokens int
}

// Options configure a Service.
type Options struct {
	Storage  Storage
	Embedder Embedder
	// Parse extracts a file's text; a *FileError (unsupported_file,
	// invalid_file) fails the file for good, any other error is retried.
	Parse func(ctx context.Context, name string, data []byte) (string, error)
	// Chunk splits text by tokens.
	Chunk func(text string, c Chunking) []TextChunk
	// CheckChunking validates a static chunking strategy.
	CheckChunking func(c Chunking) error
	// EmbeddingModel is the default embedding alias of new stores
	// (vector_stores.embedding_model).
	EmbeddingModel string
	// Chunking is the default chunking (vector_stores.chunking).
	Chunking Chunking
	// CheckModel returns an error (a *router.Error for the client) when
	// team may not embed with alias or alias is no embedding model.
	CheckModel func(team, alias string) error
	// MaxFileBytes caps an upload (vector_stores.max_file_bytes).
	MaxFileBytes int64
	Registerer   prometheus.Registerer
	Log          *slog.Logger
	Now          func() time.Time
	// HeartbeatEvery is how often a running ingestion marks itself alive
	// (default 3s); StaleAfter is how long without a sign of life makes
	// the reconciler queue it again (default 20s); ReconcileEvery is how
	// often the reconciler looks (default 10s).
	HeartbeatEvery, StaleAfter, ReconcileEvery time.Duration
}

// Reconciler defaults (Options).
const (
	DefaultHeartbeatEvery = 3 * time.Second
	DefaultStaleAfter     = 20 * time.Second
	DefaultReconcileEvery = 10 * time.Second
)

// Service is the Files and Vector Stores API, ingestion and search.
type Service struct {
	o     Options
	queue Queue
	m     *metrics
}

// New checks opts and builds a Service. SetQueue must be called before
// files are attached (the river client is built from the Service's
// workers, so it comes later).
func New(opts Options) (*Service, error) {
	switch {
	case opts.Storage == nil:
		return nil, errors.New("vectorstore: Options.Storage is required")
	case opts.Embedder == nil:
		return nil, errors.New("vectorstore: Options.Embedder is required")
	case opts.Parse == nil || opts.Chunk == nil || opts.CheckChunking == nil:
		return nil, errors.New("vectorstore: Options.Parse, Chunk and CheckChunking are required")
	case opts.EmbeddingModel == "":
		return nil, errors.New("vectorstore: Options.EmbeddingModel is required")
	}
	if err := opts.CheckChunking(opts.Chunking); err != nil {
		return nil, fmt.Errorf("vectorstore: default chunking: %w", err)
	}
	if opts.CheckModel == nil {
		opts.CheckModel = func(string, string) error { return nil }
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.HeartbeatEvery = cmp.Or(opts.HeartbeatEvery, DefaultHeartbeatEvery)
	opts.StaleAfter = cmp.Or(opts.StaleAfter, DefaultStaleAfter)
	opts.ReconcileEvery = cmp.Or(opts.ReconcileEvery, DefaultReconcileEvery)
	if opts.StaleAfter <= 2*opts.HeartbeatEvery {
		return nil, errors.New("vectorstore: StaleAfter must exceed two HeartbeatEvery")
	}
	return &Service{o: opts, m: newMetrics(opts.Registerer)}, nil
}

// SetQueue sets the job queue. Call it once, while wiring.
func (s *Service) SetQueue(q Queue) { s.queue = q }

// MaxFileBytes is the upload cap.
func (s *Service) MaxFileBytes() int64 { return s.o.MaxFileBytes }

// errQueueUnavailable answers while the job queue is not running yet (a
// PostgreSQL that was down at start).
var errQueueUnavailable = &router.Error{Kind: router.KindNoProvider,
	Message: "File processing is unavailable; retry later."}

// enqueue queues refs and records their job ids. A failure after the
// rows were written leaves them in_progress for the reconciler, which
// queues them once it finds no job.
func (s *Service) enqueue(ctx context.Context, refs []FileRef) error {
	if len(refs) == 0 {
		return nil
	}
	if s.queue == nil {
		return errQueueUnavailable
	}
	ids, err := s.queue.Enqueue(ctx, refs)
	if err != nil {
		return fmt.Errorf("vectorstore: enqueue ingestion: %w", err)
	}
	if err := s.o.Storage.SetJobIDs(ctx, refs, ids); err != nil {
		s.o.Log.WarnContext(ctx, "vector store: job ids not recorded; the reconciler will check these files", slog.Int("files", len(refs)), slog.Any("err", err))
	}
	return nil
}
