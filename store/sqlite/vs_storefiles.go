package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"llmproxy/vectorstore"
)

// AttachFiles implements vectorstore.StoreFiles.
func (d *DB) AttachFiles(ctx context.Context, team, storeID string, files []vectorstore.StoreFile, batch *vectorstore.Batch, at time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE vector_stores SET last_active_at = ? WHERE id = ? AND team = ?`, at.UnixMicro(), storeID, team)
	if err != nil {
		return fmt.Errorf("sqlite: touch vector store: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vectorstore.ErrNotFound
	}
	if batch != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO vector_store_file_batches (id, vector_store_id, team, created_at) VALUES (?, ?, ?, ?)`,
			batch.ID, storeID, team, batch.CreatedAt.UnixMicro()); err != nil {
			return fmt.Errorf("sqlite: insert batch: %w", err)
		}
	}
	owned, err := tx.PrepareContext(ctx, `SELECT 1 FROM files WHERE id = ? AND team = ?`)
	if err != nil {
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	defer owned.Close()
	up, err := tx.PrepareContext(ctx, `INSERT INTO vector_store_files (vector_store_id, file_id, team, key_id, status,
		attributes, chunk_max, chunk_overlap, batch_id, heartbeat_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'in_progress', ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (vector_store_id, file_id) DO UPDATE SET key_id = excluded.key_id, status = 'in_progress',
			last_error = NULL, attributes = excluded.attributes, chunk_max = excluded.chunk_max,
			chunk_overlap = excluded.chunk_overlap, batch_id = excluded.batch_id, generation = generation + 1,
			requeues = 0, job_id = NULL, heartbeat_at = excluded.heartbeat_at, updated_at = excluded.updated_at
		RETURNING generation, created_at`)
	if err != nil {
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	defer up.Close()
	now := at.UnixMicro()
	for i := range files {
		f := &files[i]
		var one int
		if err := owned.QueryRowContext(ctx, f.FileID, team).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return vectorstore.ErrNotFound
			}
			return fmt.Errorf("sqlite: find file: %w", err)
		}
		attrs, err := json.Marshal(orEmptyAny(f.Attributes))
		if err != nil {
			return err
		}
		var created int64
		if err := up.QueryRowContext(ctx, storeID, f.FileID, team, f.KeyID, string(attrs), f.Chunking.MaxTokens,
			f.Chunking.OverlapTokens, nullString(f.BatchID), now, now, now).Scan(&f.Generation, &created); err != nil {
			return fmt.Errorf("sqlite: attach file: %w", err)
		}
		f.CreatedAt = time.UnixMicro(created).UTC()
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func orEmptyAny(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

const storeFileColumns = `vector_store_id, file_id, team, key_id, status, last_error, attributes, chunk_max, chunk_overlap,
	batch_id, usage_bytes, generation, created_at`

func scanStoreFile(row interface{ Scan(...any) error }) (*vectorstore.StoreFile, error) {
	var f vectorstore.StoreFile
	var lastErr, batch sql.NullString
	var attrs string
	var created int64
	if err := row.Scan(&f.StoreID, &f.FileID, &f.Team, &f.KeyID, &f.Status, &lastErr, &attrs, &f.Chunking.MaxTokens,
		&f.Chunking.OverlapTokens, &batch, &f.UsageBytes, &f.Generation, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, vectorstore.ErrNotFound
		}
		return nil, fmt.Errorf("sqlite: scan vector store file: %w", err)
	}
	if lastErr.Valid {
		f.LastError = &vectorstore.FileError{}
		if err := json.Unmarshal([]byte(lastErr.String), f.LastError); err != nil {
			return nil, fmt.Errorf("sqlite: last_error: %w", err)
		}
	}
	if err := json.Unmarshal([]byte(attrs), &f.Attributes); err != nil {
		return nil, fmt.Errorf("sqlite: attributes: %w", err)
	}
	f.BatchID = batch.String
	f.CreatedAt = time.UnixMicro(created).UTC()
	return &f, nil
}

// GetStoreFile implements vectorstore.StoreFiles.
func (d *DB) GetStoreFile(ctx context.Context, team, storeID, fileID string) (*vectorstore.StoreFile, error) {
	return scanStoreFile(d.db.QueryRowContext(ctx, `SELECT `+storeFileColumns+` FROM vector_store_files
		WHERE vector_store_id = ? AND file_id = ? AND team = ?`, storeID, fileID, team))
}

// ListStoreFiles implements vectorstore.StoreFiles.
func (d *DB) ListStoreFiles(ctx context.Context, team, storeID string, q vectorstore.StoreFileQuery) ([]vectorstore.StoreFile, error) {
	var one int
	var err error
	if q.BatchID != "" {
		err = d.db.QueryRowContext(ctx, `SELECT 1 FROM vector_store_file_batches WHERE id = ? AND vector_store_id = ? AND team = ?`,
			q.BatchID, storeID, team).Scan(&one)
	} else {
		err = d.db.QueryRowContext(ctx, `SELECT 1 FROM vector_stores WHERE id = ? AND team = ?`, storeID, team).Scan(&one)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vectorstore.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: find vector store: %w", err)
	}
	sqlq := `SELECT ` + storeFileColumns + ` FROM vector_store_files WHERE vector_store_id = ?`
	args := []any{storeID}
	if q.Status != "" {
		sqlq, args = sqlq+` AND status = ?`, append(args, q.Status)
	}
	if q.BatchID != "" {
		sqlq, args = sqlq+` AND batch_id = ?`, append(args, q.BatchID)
	}
	cmp, order := ">", "ASC"
	if q.Desc {
		cmp, order = "<", "DESC"
	}
	if q.After != "" {
		sqlq += ` AND (created_at, file_id) ` + cmp + ` (SELECT created_at, file_id FROM vector_store_files WHERE vector_store_id = ? AND file_id = ?)`
		args = append(args, storeID, q.After)
	}
	sqlq += ` ORDER BY created_at ` + order + `, file_id ` + order + ` LIMIT ?`
	rows, err := d.db.QueryContext(ctx, sqlq, append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list vector store files: %w", err)
	}
	defer rows.Close()
	var out []vectorstore.StoreFile
	for rows.Next() {
		f, err := scanStoreFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *f)
	}
	return out, rows.Err()
}

// UpdateAttributes implements vectorstore.StoreFiles: the attachment's and
// its chunks' attributes, in one transaction.
func (d *DB) UpdateAttributes(ctx context.Context, team, storeID, fileID string, attrs map[string]any) (*vectorstore.StoreFile, error) {
	b, err := json.Marshal(orEmptyAny(attrs))
	if err != nil {
		return nil, err
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	f, err := scanStoreFile(tx.QueryRowContext(ctx, `UPDATE vector_store_files SET attributes = ?
		WHERE vector_store_id = ? AND file_id = ? AND team = ? RETURNING `+storeFileColumns, string(b), storeID, fileID, team))
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE documents SET metadata = json_set(metadata, '$.attributes', json(?))
		WHERE collection_id = ? AND file_id = ?`, string(b), storeID, fileID); err != nil {
		return nil, fmt.Errorf("sqlite: update chunk attributes: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	d.vecs.setAttrs(storeID, fileID, orEmptyAny(attrs))
	return f, nil
}

// DetachFile implements vectorstore.StoreFiles; the chunks go with the
// attachment (ON DELETE CASCADE).
func (d *DB) DetachFile(ctx context.Context, team, storeID, fileID string, at time.Time) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM vector_store_files WHERE vector_store_id = ? AND file_id = ? AND team = ?`,
		storeID, fileID, team)
	if err != nil {
		return fmt.Errorf("sqlite: detach file: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vectorstore.ErrNotFound
	}
	d.vecs.removeFile(storeID, fileID)
	_, _ = d.db.ExecContext(ctx, `UPDATE vector_stores SET last_active_at = ? WHERE id = ?`, at.UnixMicro(), storeID)
	return nil
}

// StoreChunks implements vectorstore.StoreFiles.
func (d *DB) StoreChunks(ctx context.Context, team, storeID, fileID string) ([]vectorstore.Chunk, error) {
	if _, err := d.GetStoreFile(ctx, team, storeID, fileID); err != nil {
		return nil, err
	}
	rows, err := d.db.QueryContext(ctx, `SELECT chunk_index, content, tokens FROM documents
		WHERE collection_id = ? AND file_id = ? ORDER BY chunk_index`, storeID, fileID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: chunks: %w", err)
	}
	defer rows.Close()
	var out []vectorstore.Chunk
	for rows.Next() {
		var c vectorstore.Chunk
		if err := rows.Scan(&c.Index, &c.Content, &c.Tokens); err != nil {
			return nil, fmt.Errorf("sqlite: scan chunk: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

const batchSelect = `SELECT b.id, b.vector_store_id, b.team, b.cancelled, b.created_at,
	COALESCE(SUM(f.status = 'in_progress'), 0), COALESCE(SUM(f.status = 'completed'), 0),
	COALESCE(SUM(f.status = 'failed'), 0), COALESCE(SUM(f.status = 'cancelled'), 0), COUNT(f.file_id)
	FROM vector_store_file_batches b
	LEFT JOIN vector_store_files f ON f.batch_id = b.id AND f.vector_store_id = b.vector_store_id
	WHERE b.id = ? AND b.vector_store_id = ? AND b.team = ? GROUP BY b.id`

func scanBatch(row interface{ Scan(...any) error }) (*vectorstore.Batch, error) {
	var b vectorstore.Batch
	var created int64
	c := &b.FileCounts
	if err := row.Scan(&b.ID, &b.StoreID, &b.Team, &b.Cancelled, &created, &c.InProgress, &c.Completed, &c.Failed,
		&c.Cancelled, &c.Total); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, vectorstore.ErrNotFound
		}
		return nil, fmt.Errorf("sqlite: scan batch: %w", err)
	}
	b.CreatedAt = time.UnixMicro(created).UTC()
	return &b, nil
}

// GetBatch implements vectorstore.StoreFiles.
func (d *DB) GetBatch(ctx context.Context, team, storeID, batchID string) (*vectorstore.Batch, error) {
	return scanBatch(d.db.QueryRowContext(ctx, batchSelect, batchID, storeID, team))
}

// CancelBatch implements vectorstore.StoreFiles.
func (d *DB) CancelBatch(ctx context.Context, team, storeID, batchID string, at time.Time) (*vectorstore.Batch, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE vector_store_file_batches SET cancelled = 1 WHERE id = ? AND vector_store_id = ? AND team = ?`,
		batchID, storeID, team)
	if err != nil {
		return nil, fmt.Errorf("sqlite: cancel batch: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, vectorstore.ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, `UPDATE vector_store_files SET status = 'cancelled', updated_at = ?
		WHERE vector_store_id = ? AND batch_id = ? AND status = 'in_progress'`, at.UnixMicro(), storeID, batchID); err != nil {
		return nil, fmt.Errorf("sqlite: cancel batch files: %w", err)
	}
	b, err := scanBatch(tx.QueryRowContext(ctx, batchSelect, batchID, storeID, team))
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	return b, nil
}
