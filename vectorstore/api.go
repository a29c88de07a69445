package vectorstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"llmproxy/router"
)

// OpenAI's object shapes for the Files and Vector Stores API. cmd/proxy
// decodes the HTTP request, calls the Service's methods with the caller's
// identity and encodes what they return.

// FileObject is OpenAI's file object.
type FileObject struct {
	ID        string `json:"id"`
	Object    string `json:"object"` // "file"
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	ExpiresAt *int64 `json:"expires_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	// Status is OpenAI's deprecated status: always "processed".
	Status        string  `json:"status"`
	StatusDetails *string `json:"status_details"`
}

// ExpiresAfter is a vector store's expiry policy.
type ExpiresAfter struct {
	Anchor string `json:"anchor"` // "last_active_at"
	Days   int    `json:"days"`
}

// StoreObject is OpenAI's vector store object.
type StoreObject struct {
	ID           string            `json:"id"`
	Object       string            `json:"object"` // "vector_store"
	CreatedAt    int64             `json:"created_at"`
	Name         string            `json:"name"`
	Description  *string           `json:"description"`
	UsageBytes   int64             `json:"usage_bytes"`
	FileCounts   FileCounts        `json:"file_counts"`
	Status       string            `json:"status"`
	ExpiresAfter *ExpiresAfter     `json:"expires_after"`
	ExpiresAt    *int64            `json:"expires_at"`
	LastActiveAt int64             `json:"last_active_at"`
	Metadata     map[string]string `json:"metadata"`
	// EmbeddingModel is an extension: the alias the store's chunks and
	// queries are embedded with.
	EmbeddingModel string `json:"embedding_model"`
}

// StaticChunking is the static strategy's parameters.
type StaticChunking struct {
	MaxChunkSizeTokens int `json:"max_chunk_size_tokens"`
	ChunkOverlapTokens int `json:"chunk_overlap_tokens"`
}

// ChunkingStrategy is OpenAI's chunking_strategy: "auto" (the configured
// default) or "static".
type ChunkingStrategy struct {
	Type   string          `json:"type"`
	Static *StaticChunking `json:"static,omitempty"`
}

// StoreFileObject is OpenAI's vector store file object.
type StoreFileObject struct {
	ID               string           `json:"id"`
	Object           string           `json:"object"` // "vector_store.file"
	UsageBytes       int64            `json:"usage_bytes"`
	CreatedAt        int64            `json:"created_at"`
	VectorStoreID    string           `json:"vector_store_id"`
	Status           string           `json:"status"`
	LastError        *FileError       `json:"last_error"`
	ChunkingStrategy ChunkingStrategy `json:"chunking_strategy"`
	Attributes       map[string]any   `json:"attributes"`
}

// BatchObject is OpenAI's vector store file batch object.
type BatchObject struct {
	ID            string     `json:"id"`
	Object        string     `json:"object"` // "vector_store.files_batch"
	CreatedAt     int64      `json:"created_at"`
	VectorStoreID string     `json:"vector_store_id"`
	Status        string     `json:"status"`
	FileCounts    FileCounts `json:"file_counts"`
}

// Deleted answers a delete.
type Deleted struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

// List is OpenAI's paginated list.
type List[T any] struct {
	Object  string  `json:"object"` // "list"
	Data    []T     `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

// ListQuery holds a list's query parameters as received.
type ListQuery struct {
	Limit, After, Order string
}

const (
	defaultLimit = 20
	maxLimit     = 100
	// maxFileLimit is GET /v1/files' limit range (OpenAI: 1 to 10000).
	maxFileLimit = 10000
)

func (q ListQuery) page(def, max int) (Page, error) {
	p := Page{After: q.After, Limit: def, Desc: true}
	if q.Limit != "" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 1 || n > max {
			return p, invalid("limit", "Invalid 'limit': expected an integer from 1 to "+strconv.Itoa(max)+".")
		}
		p.Limit = n
	}
	switch q.Order {
	case "", "desc":
	case "asc":
		p.Desc = false
	default:
		return p, invalid("order", "Invalid 'order': expected 'asc' or 'desc'.")
	}
	return p, nil
}

// listOf builds a list from rows fetched with one row more than wanted.
func listOf[R, T any](rows []R, want int, conv func(*R) T, id func(*T) string) *List[T] {
	out := &List[T]{Object: "list", Data: make([]T, 0, min(len(rows), want))}
	if len(rows) > want {
		rows, out.HasMore = rows[:want], true
	}
	for i := range rows {
		out.Data = append(out.Data, conv(&rows[i]))
	}
	if n := len(out.Data); n > 0 {
		f, l := id(&out.Data[0]), id(&out.Data[n-1])
		out.FirstID, out.LastID = &f, &l
	}
	return out
}

func invalid(param, msg string) *router.Error {
	return &router.Error{Kind: router.KindInvalidRequest, Param: param, Message: msg}
}

func notFound(what, id string) *router.Error {
	return &router.Error{Kind: router.KindNotFound, Param: what,
		Message: fmt.Sprintf("No %s found with id '%s'.", what, router.Clip(id))}
}

// storeErr turns ErrNotFound into the client's 404.
func storeErr(err error, what, id string) error {
	if errors.Is(err, ErrNotFound) {
		return notFound(what, id)
	}
	return err
}

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return invalid("", "Invalid request body: "+router.Clip(err.Error()))
	}
	return nil
}

// checkMetadata applies OpenAI's limits: 16 pairs, keys up to 64
// characters, values up to 512.
func checkMetadata(md map[string]string) error {
	if len(md) > 16 {
		return invalid("metadata", "Invalid 'metadata': at most 16 key-value pairs.")
	}
	for k, v := range md {
		if utf8.RuneCountInString(k) > 64 || utf8.RuneCountInString(v) > 512 {
			return invalid("metadata", "Invalid 'metadata': keys are at most 64 characters and values at most 512.")
		}
	}
	return nil
}

// checkAttributes applies OpenAI's limits on a file's attributes: 16
// pairs, keys up to 64 characters, values strings up to 512 characters,
// finite numbers or booleans.
func checkAttributes(attrs map[string]any) error {
	if len(attrs) > 16 {
		return invalid("attributes", "Invalid 'attributes': at most 16 key-value pairs.")
	}
	for k, v := range attrs {
		if k == "" || utf8.RuneCountInString(k) > 64 {
			return invalid("attributes", "Invalid 'attributes': keys are 1 to 64 characters.")
		}
		switch x := v.(type) {
		case string:
			if utf8.RuneCountInString(x) > 512 {
				return invalid("attributes", "Invalid 'attributes': string values are at most 512 characters.")
			}
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return invalid("attributes", "Invalid 'attributes': numbers must be finite.")
			}
		case bool:
		default:
			return invalid("attributes", "Invalid 'attributes': values are strings, numbers or booleans.")
		}
	}
	return nil
}

func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}
