package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"llmproxy/vectorstore"
)

// current is the condition that ref is still the wanted ingestion.
const current = `vector_store_id = ? AND file_id = ? AND generation = ? AND status = 'in_progress'`

func refArgs(ref vectorstore.FileRef) []any { return []any{ref.StoreID, ref.FileID, ref.Generation} }

// gone tells ErrNotFound (the attachment is gone) from ErrSuperseded
// (it is there at another generation or status) after a conditional
// statement matched no row.
func gone(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, ref vectorstore.FileRef) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM vector_store_files WHERE vector_store_id = ? AND file_id = ?`, ref.StoreID, ref.FileID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return vectorstore.ErrNotFound
	case err != nil:
		return fmt.Errorf("sqlite: find vector store file: %w", err)
	}
	return vectorstore.ErrSuperseded
}

// StartIngest implements vectorstore.Ingestion.
func (d *DB) StartIngest(ctx context.Context, ref vectorstore.FileRef, at time.Time) (*vectorstore.Target, error) {
	f, err := scanStoreFile(d.db.QueryRowContext(ctx, `UPDATE vector_store_files SET heartbeat_at = ? WHERE `+current+`
		RETURNING `+storeFileColumns, append([]any{at.UnixMicro()}, refArgs(ref)...)...))
	if errors.Is(err, vectorstore.ErrNotFound) {
		return nil, gone(ctx, d.db, ref)
	}
	if err != nil {
		return nil, err
	}
	t := &vectorstore.Target{StoreFile: *f}
	if err := d.db.QueryRowContext(ctx, `SELECT f.filename, s.embedding_model FROM files f, vector_stores s
		WHERE f.id = ? AND s.id = ?`, ref.FileID, ref.StoreID).Scan(&t.Filename, &t.EmbeddingModel); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, vectorstore.ErrNotFound
		}
		return nil, fmt.Errorf("sqlite: ingestion target: %w", err)
	}
	if t.Data, err = d.readFile(ref.FileID); err != nil {
		return nil, err
	}
	return t, nil
}

// Heartbeat implements vectorstore.Ingestion.
func (d *DB) Heartbeat(ctx context.Context, ref vectorstore.FileRef, at time.Time) error {
	return d.touch(ctx, ref, at)
}

// Touch implements vectorstore.Ingestion.
func (d *DB) Touch(ctx context.Context, ref vectorstore.FileRef, at time.Time) error {
	return d.touch(ctx, ref, at)
}

func (d *DB) touch(ctx context.Context, ref vectorstore.FileRef, at time.Time) error {
	res, err := d.db.ExecContext(ctx, `UPDATE vector_store_files SET heartbeat_at = ? WHERE `+current, append([]any{at.UnixMicro()}, refArgs(ref)...)...)
	if err != nil {
		return fmt.Errorf("sqlite: heartbeat: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gone(ctx, d.db, ref)
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

// CompleteIngest implements vectorstore.Ingestion: the status change,
// the old chunks' deletion and the new chunks' insertion are one
// (immediate) transaction.
func (d *DB) CompleteIngest(ctx context.Context, ref vectorstore.FileRef, chunks []vectorstore.Chunk, usageBytes int64, at time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	now := at.UnixMicro()
	var attrs string
	err = tx.QueryRowContext(ctx, `UPDATE vector_store_files SET status = 'completed', last_error = NULL, usage_bytes = ?,
		heartbeat_at = ?, updated_at = ? WHERE `+current+` RETURNING attributes`,
		append([]any{usageBytes, now, now}, refArgs(ref)...)...).Scan(&attrs)
	if errors.Is(err, sql.ErrNoRows) {
		return gone(ctx, tx, ref)
	}
	if err != nil {
		return fmt.Errorf("sqlite: complete vector store file: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM documents WHERE collection_id = ? AND file_id = ?`, ref.StoreID, ref.FileID); err != nil {
		return fmt.Errorf("sqlite: delete old chunks: %w", err)
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO documents (collection_id, file_id, chunk_index, content, tokens, metadata,
		embedding, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`)
	if err != nil {
		return fmt.Errorf("sqlite: prepare insert: %w", err)
	}
	defer st.Close()
	ids := make([]int64, len(chunks))
	for i, c := range chunks {
		meta, err := json.Marshal(chunkMeta{FileID: ref.FileID, ChunkIndex: c.Index, Attributes: json.RawMessage(attrs)})
		if err != nil {
			return err
		}
		if err := st.QueryRowContext(ctx, ref.StoreID, ref.FileID, c.Index, c.Content, c.Tokens, string(meta),
			encodeVector(c.Embedding), now, now).Scan(&ids[i]); err != nil {
			return fmt.Errorf("sqlite: insert chunk: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE vector_stores SET last_active_at = ? WHERE id = ?`, now, ref.StoreID); err != nil {
		return fmt.Errorf("sqlite: touch vector store: %w", err)
	}
	var am map[string]any
	if err := json.Unmarshal([]byte(attrs), &am); err != nil {
		return fmt.Errorf("sqlite: attributes: %w", err)
	}
	fv := fileVectors(am, ids, chunks)
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	d.vecs.setFile(ref.StoreID, ref.FileID, fv)
	return nil
}

// encodeVector is v as little-endian float32.
func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// FailIngest implements vectorstore.Ingestion.
func (d *DB) FailIngest(ctx context.Context, ref vectorstore.FileRef, e vectorstore.FileError, at time.Time) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	res, err := d.db.ExecContext(ctx, `UPDATE vector_store_files SET status = 'failed', last_error = ?, updated_at = ? WHERE `+current,
		append([]any{string(b), at.UnixMicro()}, refArgs(ref)...)...)
	if err != nil {
		return fmt.Errorf("sqlite: fail vector store file: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gone(ctx, d.db, ref)
	}
	return nil
}

// SetJobIDs implements vectorstore.Ingestion.
func (d *DB) SetJobIDs(ctx context.Context, refs []vectorstore.FileRef, ids []int64) error {
	if len(refs) != len(ids) {
		return fmt.Errorf("sqlite: %d job ids for %d files", len(ids), len(refs))
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `UPDATE vector_store_files SET job_id = ? WHERE vector_store_id = ? AND file_id = ? AND generation = ?`)
	if err != nil {
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	defer st.Close()
	for i, r := range refs {
		if _, err := st.ExecContext(ctx, append([]any{ids[i]}, refArgs(r)...)...); err != nil {
			return fmt.Errorf("sqlite: set job id: %w", err)
		}
	}
	return tx.Commit()
}

// StaleIngests implements vectorstore.Ingestion.
func (d *DB) StaleIngests(ctx context.Context, horizon time.Time, limit int) ([]vectorstore.Stale, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT vector_store_id, file_id, generation, COALESCE(job_id, 0), requeues FROM vector_store_files
		WHERE status = 'in_progress' AND heartbeat_at < ? ORDER BY heartbeat_at LIMIT ?`, horizon.UnixMicro(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stale ingestions: %w", err)
	}
	defer rows.Close()
	var out []vectorstore.Stale
	for rows.Next() {
		var s vectorstore.Stale
		if err := rows.Scan(&s.StoreID, &s.FileID, &s.Generation, &s.JobID, &s.Requeues); err != nil {
			return nil, fmt.Errorf("sqlite: scan stale ingestion: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Requeue implements vectorstore.Ingestion.
func (d *DB) Requeue(ctx context.Context, ref vectorstore.FileRef, at time.Time) (vectorstore.FileRef, bool, error) {
	next := ref
	err := d.db.QueryRowContext(ctx, `UPDATE vector_store_files SET generation = generation + 1, requeues = requeues + 1, job_id = NULL, heartbeat_at = ?
		WHERE `+current+` RETURNING generation`, append([]any{at.UnixMicro()}, refArgs(ref)...)...).Scan(&next.Generation)
	if errors.Is(err, sql.ErrNoRows) {
		return ref, false, nil
	}
	if err != nil {
		return ref, false, fmt.Errorf("sqlite: requeue: %w", err)
	}
	return next, true, nil
}
