package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"llmproxy/vectorstore"
)

// Vector stores on PostgreSQL: chunks in the seed's documents table with
// a pgvector embedding. Embedding models differ in dimension, so the
// column is an untyped vector with the dimension beside it (dims), and
// each dimension gets its own partial expression index,
//
//	CREATE INDEX documents_hnsw_384 ON documents
//	    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dims = 384
//
// built when the first chunks of that dimension arrive (vs_index.go).
// Queries cast the same way and filter on dims, so the planner can use
// it. Dimensions above 2000 (HNSW's limit for vector) are indexed as
// halfvec up to 4000; larger ones are scanned exactly. Full text is a
// generated tsvector column with a GIN index.
//
// pgvector's objects live in the schema its extension was created in
// (usually public), which need not be on the connection's search_path (a
// database.url with ?search_path=<schema>): every type, operator and
// operator class is written qualified with it.

// IndexHNSW and IndexIVFFlat are the approximate index kinds
// (vector_stores.index).
const (
	IndexHNSW    = "hnsw"
	IndexIVFFlat = "ivfflat"
)

// VectorDB is the database as a vectorstore.Storage.
type VectorDB struct {
	*DB
	ext  string // pgvector's schema, quoted
	kind string
	// indexed caches the dimensions whose index is known to be current.
	mu      sync.Mutex
	indexed map[int]indexState
	// sinceAnalyze counts the chunks inserted since the last ANALYZE,
	// analyzedRows the rows it counted (vs_ingest.go).
	sinceAnalyze, analyzedRows atomic.Int64
	analyzing                  sync.Mutex
}

var _ vectorstore.Storage = (*VectorDB)(nil)

// VectorStores creates the chunks table (documents) if needed, which
// needs the pgvector extension in the database, and returns the database
// as a vectorstore.Storage building indexes of kind (hnsw or ivfflat).
func (d *DB) VectorStores(ctx context.Context, kind string) (*VectorDB, error) {
	if kind != IndexHNSW && kind != IndexIVFFlat {
		return nil, fmt.Errorf("postgres: index kind %q is not hnsw or ivfflat", kind)
	}
	var schema string
	err := d.pool.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		WHERE e.extname = 'vector'`).Scan(&schema)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errors.New("postgres: the pgvector extension is not installed in this database: run CREATE EXTENSION vector as a superuser (vector stores need it)")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: find pgvector: %w", err)
	}
	v := &VectorDB{DB: d, ext: pgx.Identifier{schema}.Sanitize(), kind: kind, indexed: map[int]indexState{}}
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.documents'))`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, v.documentsDDL(), pgx.QueryExecModeSimpleProtocol)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: create documents: %w", err)
	}
	return v, nil
}

// documentsDDL is the seed's documents table: collection_id is the vector
// store; metadata holds the file id, chunk index and the file's
// attributes (filters read them here, without a join). A file's chunks
// are replaced in one transaction and (collection_id, file_id,
// chunk_index) is unique, so a retried ingestion never duplicates one.
func (v *VectorDB) documentsDDL() string {
	return `CREATE TABLE IF NOT EXISTS documents (
    id            bigserial   PRIMARY KEY,
    collection_id text        NOT NULL,
    file_id       text        NOT NULL,
    chunk_index   integer     NOT NULL,
    content       text        NOT NULL,
    tokens        integer     NOT NULL DEFAULT 0,
    metadata      jsonb       NOT NULL DEFAULT '{}',
    embedding     ` + v.ext + `.vector NOT NULL,
    dims          integer     NOT NULL,
    tsv           tsvector    GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (collection_id, file_id, chunk_index),
    FOREIGN KEY (collection_id, file_id) REFERENCES vector_store_files (vector_store_id, file_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS documents_tsv ON documents USING gin (tsv);`
}

// vecType is the type an embedding of dims dimensions is indexed and
// compared as: vector up to 2000, halfvec up to 4000 (HNSW's and
// IVFFlat's limits), else vector without an index.
func (v *VectorDB) vecType(dims int) (typ string, indexable bool) {
	switch {
	case dims <= 2000:
		return v.ext + ".vector(" + strconv.Itoa(dims) + ")", true
	case dims <= 4000:
		return v.ext + ".halfvec(" + strconv.Itoa(dims) + ")", true
	}
	return v.ext + ".vector(" + strconv.Itoa(dims) + ")", false
}

// cosineOps is the operator class for typ.
func (v *VectorDB) cosineOps(dims int) string {
	if dims > 2000 {
		return v.ext + ".halfvec_cosine_ops"
	}
	return v.ext + ".vector_cosine_ops"
}

// vectorText is e in pgvector's text form, [x,y,...].
func vectorText(e []float32) string {
	b := make([]byte, 0, 2+len(e)*10)
	b = append(b, '[')
	for i, x := range e {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
	}
	return string(append(b, ']'))
}
