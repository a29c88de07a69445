package vectorstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// ErrNotFound is returned for a file, vector store, vector-store file or
// batch that does not exist or belongs to another team: callers cannot
// tell the two apart, so another team's ids answer 404.
var ErrNotFound = errors.New("vectorstore: not found")

// ErrSuperseded is returned by the ingestion side of a Storage when the
// vector-store file changed since the job was enqueued (detached,
// cancelled, re-attached, re-queued by the reconciler): the job's work is
// no longer wanted and is dropped.
var ErrSuperseded = errors.New("vectorstore: ingestion superseded")

// The statuses of a vector-store file and of a batch (OpenAI's values).
const (
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
	StatusCancelled  = "cancelled"
	// StatusExpired is a vector store's status past its expires_at.
	StatusExpired = "expired"
)

// The last_error codes of a failed vector-store file.
const (
	CodeServerError       = "server_error"
	CodeUnsupportedFile   = "unsupported_file"
	CodeInvalidFile       = "invalid_file"
	CodeRateLimitExceeded = "rate_limit_exceeded"
)

// File is an uploaded file (POST /v1/files), owned by a team. Its bytes
// live in the Storage (PostgreSQL, or a file under server.data_dir).
type File struct {
	ID        string
	Team      string
	Filename  string
	Purpose   string
	Bytes     int64
	CreatedAt time.Time
}

// Chunking is a static chunking strategy: chunks of at most MaxTokens
// tokens, each overlapping the previous by OverlapTokens.
type Chunking struct {
	MaxTokens     int
	OverlapTokens int
}

// FileCounts counts a vector store's (or a batch's) files by status.
type FileCounts struct {
	InProgress int64 `json:"in_progress"`
	Completed  int64 `json:"completed"`
	Failed     int64 `json:"failed"`
	Cancelled  int64 `json:"cancelled"`
	Total      int64 `json:"total"`
}

// Store is a vector store, owned by a team. FileCounts and UsageBytes are
// computed by the Storage from the store's files when it is read, so they
// are always true.
type Store struct {
	ID   string
	Team string
	Name string
	// Description is OpenAI's optional description.
	Description string
	// EmbeddingModel is the embedding alias its chunks were embedded
	// with; queries are embedded with it too.
	EmbeddingModel string
	Metadata       map[string]string
	// ExpiresAfterDays, when positive, expires the store that many days
	// after its last activity (anchor last_active_at).
	ExpiresAfterDays int
	CreatedAt        time.Time
	LastActiveAt     time.Time
	FileCounts       FileCounts
	UsageBytes       int64
}

// FileError is a failed vector-store file's last_error.
type FileError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *FileError) Error() string { return e.Code + ": " + e.Message }

// StoreFile is a file attached to a vector store: the unit of ingestion.
type StoreFile struct {
	StoreID string
	FileID  string
	Team    string
	// KeyID is the API key that attached it: ingestion's embeddings are
	// charged to it (and its team).
	KeyID      string
	Status     string
	LastError  *FileError
	Attributes map[string]any
	Chunking   Chunking
	// BatchID is the batch that last attached it, if any.
	BatchID    string
	UsageBytes int64
	CreatedAt  time.Time
	// Generation counts the times the file was queued for ingestion; a
	// job carries the generation it was queued for and its result is
	// kept only if it still matches.
	Generation int64
}

// Batch is a vector-store file batch. Its counts are computed from the
// files whose BatchID it is.
type Batch struct {
	ID         string
	StoreID    string
	Team       string
	Cancelled  bool
	CreatedAt  time.Time
	FileCounts FileCounts
}

// Status is the batch's status: cancelled once cancelled, in_progress while
// a file is, else completed (a batch whose every file failed is failed).
func (b *Batch) Status() string {
	switch {
	case b.Cancelled:
		return StatusCancelled
	case b.FileCounts.InProgress > 0:
		return StatusInProgress
	case b.FileCounts.Total > 0 && b.FileCounts.Failed == b.FileCounts.Total:
		return StatusFailed
	}
	return StatusCompleted
}

// Status is the store's status at now: expired past its expiry, else
// in_progress while any file is being ingested, else completed.
func (s *Store) Status(now time.Time) string {
	if exp, ok := s.ExpiresAt(); ok && !now.Before(exp) {
		return StatusExpired
	}
	if s.FileCounts.InProgress > 0 {
		return StatusInProgress
	}
	return StatusCompleted
}

// ExpiresAt is when the store expires, if it has an expiry.
func (s *Store) ExpiresAt() (time.Time, bool) {
	if s.ExpiresAfterDays <= 0 {
		return time.Time{}, false
	}
	return s.LastActiveAt.Add(time.Duration(s.ExpiresAfterDays) * 24 * time.Hour), true
}

// Chunk is one stored chunk of a vector-store file with its embedding.
type Chunk struct {
	Index     int
	Content   string
	Tokens    int
	Embedding []float32
}

// Page selects a slice of a list ordered by creation: after the row with
// id After (exclusive), at most Limit rows, newest first when Desc.
type Page struct {
	After string
	Limit int
	Desc  bool
}

// Hit is one chunk a search found, with its rank score in that search
// (cosine similarity, or the full-text rank).
type Hit struct {
	// ChunkID identifies the chunk across searches (fusion key).
	ChunkID    int64
	StoreID    string
	FileID     string
	Filename   string
	ChunkIndex int
	Content    string
	Attributes map[string]any
	Score      float64
}

// newID returns prefix and 32 random hex digits.
func newID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
