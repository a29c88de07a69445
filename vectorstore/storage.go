package vectorstore

import (
	"context"
	"time"
)

// Files stores uploaded files and their bytes.
type Files interface {
	// CreateFile stores f (its ID set) and data.
	CreateFile(ctx context.Context, f *File, data []byte) error
	// GetFile returns team's file id, or ErrNotFound.
	GetFile(ctx context.Context, team, id string) (*File, error)
	// FileContent returns the bytes of team's file id, or ErrNotFound.
	FileContent(ctx context.Context, team, id string) ([]byte, error)
	// ListFiles lists team's files by creation time, only those of
	// purpose when it is set.
	ListFiles(ctx context.Context, team, purpose string, p Page) ([]File, error)
	// DeleteFile deletes team's file id, its attachments to vector stores
	// and their chunks, or returns ErrNotFound.
	DeleteFile(ctx context.Context, team, id string) error
}

// StoreUpdate is a modification of a vector store; nil fields stay.
type StoreUpdate struct {
	Name             *string
	Metadata         *map[string]string
	ExpiresAfterDays *int
	At               time.Time
}

// Stores stores vector stores. Reads fill in FileCounts and UsageBytes.
type Stores interface {
	// CreateStore stores s (its ID set).
	CreateStore(ctx context.Context, s *Store) error
	// GetStore returns team's store id, or ErrNotFound.
	GetStore(ctx context.Context, team, id string) (*Store, error)
	// FindStores returns team's stores whose id or name is in refs, in
	// no particular order; a name several stores share matches them all.
	FindStores(ctx context.Context, team string, refs []string) ([]Store, error)
	// ListStores lists team's stores by creation time.
	ListStores(ctx context.Context, team string, p Page) ([]Store, error)
	// UpdateStore applies u, or returns ErrNotFound.
	UpdateStore(ctx context.Context, team, id string, u StoreUpdate) (*Store, error)
	// DeleteStore deletes the store, its files' attachments, batches and
	// chunks (not the files themselves), or returns ErrNotFound.
	DeleteStore(ctx context.Context, team, id string) error
}

// StoreFileQuery selects a vector store's files: by status and by batch
// when set.
type StoreFileQuery struct {
	Page
	Status  string
	BatchID string
}

// StoreFiles stores the attachments of files to vector stores and the
// batches that made them.
type StoreFiles interface {
	// AttachFiles attaches files (StoreID, FileID, Team, KeyID,
	// Attributes, Chunking, BatchID set) to team's store storeID as
	// in_progress, in one transaction, together with batch when it is
	// not nil. A file already attached is queued again: its chunks are
	// replaced when the new ingestion completes. Each file's Generation
	// and CreatedAt are filled in. ErrNotFound when the store or any file
	// is not team's.
	AttachFiles(ctx context.Context, team, storeID string, files []StoreFile, batch *Batch, at time.Time) error
	// GetStoreFile returns one attachment, or ErrNotFound.
	GetStoreFile(ctx context.Context, team, storeID, fileID string) (*StoreFile, error)
	// ListStoreFiles lists a store's files by attachment time;
	// ErrNotFound when the store (or the batch) is not team's.
	ListStoreFiles(ctx context.Context, team, storeID string, q StoreFileQuery) ([]StoreFile, error)
	// UpdateAttributes replaces an attachment's attributes (and those of
	// its chunks), or returns ErrNotFound.
	UpdateAttributes(ctx context.Context, team, storeID, fileID string, attrs map[string]any) (*StoreFile, error)
	// DetachFile removes an attachment and its chunks, or returns
	// ErrNotFound.
	DetachFile(ctx context.Context, team, storeID, fileID string, at time.Time) error
	// StoreChunks lists an attached file's chunks in order (no
	// embeddings), or returns ErrNotFound.
	StoreChunks(ctx context.Context, team, storeID, fileID string) ([]Chunk, error)
	// GetBatch returns a batch with its counts, or ErrNotFound.
	GetBatch(ctx context.Context, team, storeID, batchID string) (*Batch, error)
	// CancelBatch marks the batch cancelled and its files still in
	// progress cancelled, in one transaction, or returns ErrNotFound.
	CancelBatch(ctx context.Context, team, storeID, batchID string, at time.Time) (*Batch, error)
}

// FileRef names one queued ingestion: a vector-store file at a
// generation.
type FileRef struct {
	StoreID    string `json:"store_id"`
	FileID     string `json:"file_id"`
	Generation int64  `json:"generation"`
}

// Target is what an ingestion job reads: the file's bytes and how to
// chunk and embed them.
type Target struct {
	StoreFile
	Filename       string
	Data           []byte
	EmbeddingModel string
}

// Stale is an in_progress vector-store file whose ingestion showed no
// sign of life since the reconciler's horizon.
type Stale struct {
	FileRef
	// JobID is the river job last queued for it, 0 when none was
	// recorded.
	JobID int64
	// Requeues is how often the reconciler queued it again since it was
	// attached.
	Requeues int
}

// Ingestion is what ingestion jobs and the reconciler need.
type Ingestion interface {
	// StartIngest returns ref's target and marks its heartbeat; ErrNotFound
	// when it no longer exists, ErrSuperseded when it is not in_progress
	// at ref's generation.
	StartIngest(ctx context.Context, ref FileRef, at time.Time) (*Target, error)
	// Heartbeat marks ref alive at at; ErrSuperseded as for StartIngest.
	Heartbeat(ctx context.Context, ref FileRef, at time.Time) error
	// CompleteIngest replaces ref's chunks with chunks and marks it
	// completed with usageBytes, all in one transaction, only while it is
	// in_progress at ref's generation (else ErrSuperseded, and nothing
	// changes).
	CompleteIngest(ctx context.Context, ref FileRef, chunks []Chunk, usageBytes int64, at time.Time) error
	// FailIngest marks ref failed with e, only while it is in_progress at
	// ref's generation (else ErrSuperseded).
	FailIngest(ctx context.Context, ref FileRef, e FileError, at time.Time) error
	// SetJobIDs records the river job queued for each ref (same order).
	SetJobIDs(ctx context.Context, refs []FileRef, jobIDs []int64) error
	// StaleIngests lists up to limit in_progress files whose heartbeat is
	// before horizon.
	StaleIngests(ctx context.Context, horizon time.Time, limit int) ([]Stale, error)
	// Touch sets ref's heartbeat to at (a queued job is still waiting).
	Touch(ctx context.Context, ref FileRef, at time.Time) error
	// Requeue moves ref to the next generation (returned) with its
	// heartbeat at at and one more requeue, if it is still in_progress at
	// ref's generation;
	// ok is false when it is not (another replica requeued it, or it
	// finished).
	Requeue(ctx context.Context, ref FileRef, at time.Time) (next FileRef, ok bool, err error)
}

// VectorQuery is a nearest-neighbour search over stores that share one
// embedding model.
type VectorQuery struct {
	StoreIDs []string
	Vector   []float32
	Filter   *Filter
	K        int
}

// TextQuery is a full-text search: chunks holding any of Terms (plain
// words, already lowercased), best first.
type TextQuery struct {
	StoreIDs []string
	Terms    []string
	Filter   *Filter
	K        int
}

// Searcher runs the two halves of a hybrid search. Hits carry their
// store, file, filename, chunk and attributes.
type Searcher interface {
	// VectorSearch returns the K chunks nearest to Vector by cosine
	// similarity (Score), best first.
	VectorSearch(ctx context.Context, q VectorQuery) ([]Hit, error)
	// TextSearch returns up to K chunks matching any term, best first.
	TextSearch(ctx context.Context, q TextQuery) ([]Hit, error)
}

// Storage is all of the above: what store/sqlite and store/postgres
// implement.
type Storage interface {
	Files
	Stores
	StoreFiles
	Ingestion
	Searcher
}
