package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"llmproxy/vectorstore"
)

// current is the condition that ref ($1, $2, $3) is still the wanted
// ingestion.
const current = `vector_store_id = $1 AND file_id = $2 AND generation = $3 AND status = 'in_progress'`

func refArgs(ref vectorstore.FileRef, more ...any) []any {
	return append([]any{ref.StoreID, ref.FileID, ref.Generation}, more...)
}

// gone tells ErrNotFound (the attachment is gone) from ErrSuperseded
// (it is there at another generation or status) after a conditional
// statement matched no row.
func gone(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, ref vectorstore.FileRef) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM vector_store_files WHERE vector_store_id = $1 AND file_id = $2`, ref.StoreID, ref.FileID).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return vectorstore.ErrNotFound
	case err != nil:
		return fmt.Errorf("postgres: find vector store file: %w", err)
	}
	return vectorstore.ErrSuperseded
}

// StartIngest implements vectorstore.Ingestion.
func (d *DB) StartIngest(ctx context.Context, ref vectorstore.FileRef, at time.Time) (*vectorstore.Target, error) {
	f, err := scanStoreFile(d.pool.QueryRow(ctx, `UPDATE vector_store_files SET heartbeat_at = $4 WHERE `+current+`
		RETURNING `+storeFileColumns, refArgs(ref, at.UTC())...))
	if errors.Is(err, vectorstore.ErrNotFound) {
		return nil, gone(ctx, d.pool, ref)
	}
	if err != nil {
		return nil, err
	}
	t := &vectorstore.Target{StoreFile: *f}
	if err := d.pool.QueryRow(ctx, `SELECT f.filename, f.data, s.embedding_model FROM files f, vector_stores s
		WHERE f.id = $1 AND s.id = $2`, ref.FileID, ref.StoreID).Scan(&t.Filename, &t.Data, &t.EmbeddingModel); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, vectorstore.ErrNotFound
		}
		return nil, fmt.Errorf("postgres: ingestion target: %w", err)
	}
	return t, nil
}

// Heartbeat implements vectorstore.Ingestion.
func (d *DB) Heartbeat(ctx context.Context, ref vectorstore.FileRef, at time.Time) error {
	return d.Touch(ctx, ref, at)
}

// Touch implements vectorstore.Ingestion.
func (d *DB) Touch(ctx context.Context, ref vectorstore.FileRef, at time.Time) error {
	tag, err := d.pool.Exec(ctx, `UPDATE vector_store_files SET heartbeat_at = $4 WHERE `+current, refArgs(ref, at.UTC())...)
	if err != nil {
		return fmt.Errorf("postgres: heartbeat: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return gone(ctx, d.pool, ref)
	}
	return nil
}

// insertChunkRows is how many chunks one INSERT carries.
const insertChunkRows = 500

// CompleteIngest implements vectorstore.Ingestion: the status change,
// the old chunks' deletion and the new chunks' insertion are one
// transaction. The row lock the first UPDATE takes serialises two jobs
// of one file, and the second finds it no longer in_progress.
func (v *VectorDB) CompleteIngest(ctx context.Context, ref vectorstore.FileRef, chunks []vectorstore.Chunk, usageBytes int64, at time.Time) error {
	err := pgx.BeginFunc(ctx, v.pool, func(tx pgx.Tx) error {
		var attrs []byte
		err := tx.QueryRow(ctx, `UPDATE vector_store_files SET status = 'completed', last_error = NULL, usage_bytes = $4,
			heartbeat_at = $5, updated_at = $5 WHERE `+current+` RETURNING attributes`,
			refArgs(ref, usageBytes, at.UTC())...).Scan(&attrs)
		if errors.Is(err, pgx.ErrNoRows) {
			return gone(ctx, tx, ref)
		}
		if err != nil {
			return fmt.Errorf("postgres: complete vector store file: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM documents WHERE collection_id = $1 AND file_id = $2`, ref.StoreID, ref.FileID); err != nil {
			return fmt.Errorf("postgres: delete old chunks: %w", err)
		}
		for lo := 0; lo < len(chunks); lo += insertChunkRows {
			if err := v.insertChunks(ctx, tx, ref, chunks[lo:min(lo+insertChunkRows, len(chunks))], attrs, at); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE vector_stores SET last_active_at = $2 WHERE id = $1`, ref.StoreID, at.UTC())
		return err
	})
	if err != nil {
		return err
	}
	dims := map[int]bool{}
	for _, c := range chunks {
		dims[len(c.Embedding)] = true
	}
	for n := range dims {
		// The chunks are in: an index that fails to build leaves search
		// exact (and slower), not wrong, and the next completion tries
		// again.
		_ = v.ensureIndex(ctx, n)
	}
	v.maybeAnalyze(ctx, len(chunks))
	return nil
}

// maybeAnalyze refreshes documents' planner statistics once this replica
// inserted a fifth of the rows they last counted (at least 1000).
// Autovacuum does it too, but only after its nap: a store filled in the
// last minute would be planned as if nearly empty, by a scan of the
// store's rows instead of the ANN and GIN indexes (and the other way
// round).
func (v *VectorDB) maybeAnalyze(ctx context.Context, inserted int) {
	if v.sinceAnalyze.Add(int64(inserted)) < max(1000, v.analyzedRows.Load()/5) || !v.analyzing.TryLock() {
		return
	}
	defer v.analyzing.Unlock()
	v.sinceAnalyze.Store(0)
	if _, err := v.pool.Exec(ctx, `ANALYZE documents`); err != nil {
		return // autovacuum will
	}
	var rows float64
	if v.pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'documents'::regclass`).Scan(&rows) == nil {
		v.analyzedRows.Store(int64(rows))
	}
}

// insertChunks inserts chunks with one statement over unnested arrays;
// embeddings travel in pgvector's text form.
func (v *VectorDB) insertChunks(ctx context.Context, tx pgx.Tx, ref vectorstore.FileRef, chunks []vectorstore.Chunk, attrs []byte, at time.Time) error {
	n := len(chunks)
	idx, tokens, dims := make([]int32, n), make([]int32, n), make([]int32, n)
	content, meta, emb := make([]string, n), make([]string, n), make([]string, n)
	for i, c := range chunks {
		m, err := json.Marshal(chunkMeta{FileID: ref.FileID, ChunkIndex: c.Index, Attributes: json.RawMessage(attrs)})
		if err != nil {
			return err
		}
		idx[i], tokens[i], dims[i] = int32(c.Index), int32(c.Tokens), int32(len(c.Embedding))
		content[i], meta[i], emb[i] = c.Content, string(m), vectorText(c.Embedding)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO documents (collection_id, file_id, chunk_index, content, tokens, metadata,
		embedding, dims, created_at, updated_at)
		SELECT $1, $2, i, c, t, m::jsonb, e::`+v.ext+`.vector, d, $3, $3
		FROM unnest($4::int[], $5::text[], $6::int[], $7::text[], $8::text[], $9::int[]) AS u(i, c, t, m, e, d)`,
		ref.StoreID, ref.FileID, at.UTC(), idx, content, tokens, meta, emb, dims); err != nil {
		return fmt.Errorf("postgres: insert chunks: %w", err)
	}
	return nil
}

// chunkMeta is a chunk's metadata column (the seed's): which file and
// chunk it is, and the file's attributes.
type chunkMeta struct {
	FileID     string          `json:"file_id"`
	ChunkIndex int             `json:"chunk_index"`
	Attributes json.RawMessage `json:"attributes"`
}

// FailIngest implements vectorstore.Ingestion.
func (d *DB) FailIngest(ctx context.Context, ref vectorstore.FileRef, e vectorstore.FileError, at time.Time) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tag, err := d.pool.Exec(ctx, `UPDATE vector_store_files SET status = 'failed', last_error = $4, updated_at = $5 WHERE `+current,
		refArgs(ref, string(b), at.UTC())...)
	if err != nil {
		return fmt.Errorf("postgres: fail vector store file: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return gone(ctx, d.pool, ref)
	}
	return nil
}

// SetJobIDs implements vectorstore.Ingestion.
func (d *DB) SetJobIDs(ctx context.Context, refs []vectorstore.FileRef, ids []int64) error {
	if len(refs) != len(ids) {
		return fmt.Errorf("postgres: %d job ids for %d files", len(ids), len(refs))
	}
	stores, files, gens := make([]string, len(refs)), make([]string, len(refs)), make([]int64, len(refs))
	for i, r := range refs {
		stores[i], files[i], gens[i] = r.StoreID, r.FileID, r.Generation
	}
	if _, err := d.pool.Exec(ctx, `UPDATE vector_store_files f SET job_id = u.j
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS u(s, fi, g, j)
		WHERE f.vector_store_id = u.s AND f.file_id = u.fi AND f.generation = u.g`, stores, files, gens, ids); err != nil {
		return fmt.Errorf("postgres: set job ids: %w", err)
	}
	return nil
}

// StaleIngests implements vectorstore.Ingestion.
func (d *DB) StaleIngests(ctx context.Context, horizon time.Time, limit int) ([]vectorstore.Stale, error) {
	rows, err := d.pool.Query(ctx, `SELECT vector_store_id, file_id, generation, COALESCE(job_id, 0), requeues FROM vector_store_files
		WHERE status = 'in_progress' AND heartbeat_at < $1 ORDER BY heartbeat_at LIMIT $2`, horizon.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: stale ingestions: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (vectorstore.Stale, error) {
		var s vectorstore.Stale
		err := row.Scan(&s.StoreID, &s.FileID, &s.Generation, &s.JobID, &s.Requeues)
		return s, err
	})
}

// Requeue implements vectorstore.Ingestion.
func (d *DB) Requeue(ctx context.Context, ref vectorstore.FileRef, at time.Time) (vectorstore.FileRef, bool, error) {
	next := ref
	err := d.pool.QueryRow(ctx, `UPDATE vector_store_files SET generation = generation + 1, requeues = requeues + 1, job_id = NULL, heartbeat_at = $4
		WHERE `+current+` RETURNING generation`, refArgs(ref, at.UTC())...).Scan(&next.Generation)
	if errors.Is(err, pgx.ErrNoRows) {
		return ref, false, nil
	}
	if err != nil {
		return ref, false, fmt.Errorf("postgres: requeue: %w", err)
	}
	return next, true, nil
}
