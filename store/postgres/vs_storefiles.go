package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"llmproxy/vectorstore"
)

// AttachFiles implements vectorstore.StoreFiles.
func (d *DB) AttachFiles(ctx context.Context, team, storeID string, files []vectorstore.StoreFile, batch *vectorstore.Batch, at time.Time) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE vector_stores SET last_active_at = $3 WHERE id = $1 AND team = $2`, storeID, team, at.UTC())
		if err != nil {
			return fmt.Errorf("postgres: touch vector store: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return vectorstore.ErrNotFound
		}
		if batch != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO vector_store_file_batches (id, vector_store_id, team, created_at) VALUES ($1, $2, $3, $4)`,
				batch.ID, storeID, team, batch.CreatedAt.UTC()); err != nil {
				return fmt.Errorf("postgres: insert batch: %w", err)
			}
		}
		ids := make([]string, len(files))
		for i, f := range files {
			ids[i] = f.FileID
		}
		var owned int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM files WHERE team = $1 AND id = ANY($2)`, team, ids).Scan(&owned); err != nil {
			return fmt.Errorf("postgres: find files: %w", err)
		}
		if owned != len(distinct(ids)) {
			return vectorstore.ErrNotFound
		}
		b := &pgx.Batch{}
		for i := range files {
			f := &files[i]
			attrs, err := json.Marshal(orEmptyAny(f.Attributes))
			if err != nil {
				return err
			}
			b.Queue(`INSERT INTO vector_store_files (vector_store_id, file_id, team, key_id, status, attributes, chunk_max,
				chunk_overlap, batch_id, heartbeat_at, created_at, updated_at)
				VALUES ($1, $2, $3, $4, 'in_progress', $5, $6, $7, $8, $9, $9, $9)
				ON CONFLICT (vector_store_id, file_id) DO UPDATE SET key_id = excluded.key_id, status = 'in_progress',
					last_error = NULL, attributes = excluded.attributes, chunk_max = excluded.chunk_max,
					chunk_overlap = excluded.chunk_overlap, batch_id = excluded.batch_id,
					generation = vector_store_files.generation + 1, requeues = 0, job_id = NULL,
					heartbeat_at = excluded.heartbeat_at, updated_at = excluded.updated_at
				RETURNING generation, created_at`,
				storeID, f.FileID, team, f.KeyID, string(attrs), f.Chunking.MaxTokens, f.Chunking.OverlapTokens,
				nullString(f.BatchID), at.UTC()).QueryRow(func(row pgx.Row) error {
				if err := row.Scan(&f.Generation, &f.CreatedAt); err != nil {
					return fmt.Errorf("postgres: attach file: %w", err)
				}
				f.CreatedAt = f.CreatedAt.UTC()
				return nil
			})
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

func distinct(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func orEmptyAny(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

const storeFileColumns = `vector_store_id, file_id, team, key_id, status, last_error, attributes, chunk_max, chunk_overlap,
	batch_id, usage_bytes, generation, created_at`

func scanStoreFile(row pgx.Row) (*vectorstore.StoreFile, error) {
	var f vectorstore.StoreFile
	var lastErr, attrs []byte
	var batch *string
	if err := row.Scan(&f.StoreID, &f.FileID, &f.Team, &f.KeyID, &f.Status, &lastErr, &attrs, &f.Chunking.MaxTokens,
		&f.Chunking.OverlapTokens, &batch, &f.UsageBytes, &f.Generation, &f.CreatedAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, vectorstore.ErrNotFound
		}
		return nil, fmt.Errorf("postgres: scan vector store file: %w", err)
	}
	if lastErr != nil {
		f.LastError = &vectorstore.FileError{}
		if err := json.Unmarshal(lastErr, f.LastError); err != nil {
			return nil, fmt.Errorf("postgres: last_error: %w", err)
		}
	}
	if err := json.Unmarshal(attrs, &f.Attributes); err != nil {
		return nil, fmt.Errorf("postgres: attributes: %w", err)
	}
	if batch != nil {
		f.BatchID = *batch
	}
	f.CreatedAt = f.CreatedAt.UTC()
	return &f, nil
}

// GetStoreFile implements vectorstore.StoreFiles.
func (d *DB) GetStoreFile(ctx context.Context, team, storeID, fileID string) (*vectorstore.StoreFile, error) {
	return scanStoreFile(d.pool.QueryRow(ctx, `SELECT `+storeFileColumns+` FROM vector_store_files
		WHERE vector_store_id = $1 AND file_id = $2 AND team = $3`, storeID, fileID, team))
}

// ListStoreFiles implements vectorstore.StoreFiles.
func (d *DB) ListStoreFiles(ctx context.Context, team, storeID string, q vectorstore.StoreFileQuery) ([]vectorstore.StoreFile, error) {
	var one int
	var err error
	if q.BatchID != "" {
		err = d.pool.QueryRow(ctx, `SELECT 1 FROM vector_store_file_batches WHERE id = $1 AND vector_store_id = $2 AND team = $3`,
			q.BatchID, storeID, team).Scan(&one)
	} else {
		err = d.pool.QueryRow(ctx, `SELECT 1 FROM vector_stores WHERE id = $1 AND team = $2`, storeID, team).Scan(&one)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vectorstore.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: find vector store: %w", err)
	}
	sqlq := `SELECT ` + storeFileColumns + ` FROM vector_store_files WHERE vector_store_id = $1`
	args := []any{storeID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Status != "" {
		sqlq += ` AND status = ` + arg(q.Status)
	}
	if q.BatchID != "" {
		sqlq += ` AND batch_id = ` + arg(q.BatchID)
	}
	cmp, order := ">", "ASC"
	if q.Desc {
		cmp, order = "<", "DESC"
	}
	if q.After != "" {
		sqlq += ` AND (created_at, file_id) ` + cmp + ` (SELECT created_at, file_id FROM vector_store_files
			WHERE vector_store_id = $1 AND file_id = ` + arg(q.After) + `)`
	}
	sqlq += ` ORDER BY created_at ` + order + `, file_id ` + order + ` LIMIT ` + arg(q.Limit)
	rows, err := d.pool.Query(ctx, sqlq, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list vector store files: %w", err)
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
	var f *vectorstore.StoreFile
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var err error
		f, err = scanStoreFile(tx.QueryRow(ctx, `UPDATE vector_store_files SET attributes = $4
			WHERE vector_store_id = $1 AND file_id = $2 AND team = $3 RETURNING `+storeFileColumns, storeID, fileID, team, string(b)))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE documents SET metadata = jsonb_set(metadata, '{attributes}', $3::jsonb)
			WHERE collection_id = $1 AND file_id = $2`, storeID, fileID, string(b)); err != nil {
			return fmt.Errorf("postgres: update chunk attributes: %w", err)
		}
		return nil
	})
	return f, err
}

// DetachFile implements vectorstore.StoreFiles; the chunks go with the
// attachment (ON DELETE CASCADE).
func (d *DB) DetachFile(ctx context.Context, team, storeID, fileID string, at time.Time) error {
	tag, err := d.pool.Exec(ctx, `DELETE FROM vector_store_files WHERE vector_store_id = $1 AND file_id = $2 AND team = $3`,
		storeID, fileID, team)
	if err != nil {
		return fmt.Errorf("postgres: detach file: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return vectorstore.ErrNotFound
	}
	_, _ = d.pool.Exec(ctx, `UPDATE vector_stores SET last_active_at = $2 WHERE id = $1`, storeID, at.UTC())
	return nil
}

// StoreChunks implements vectorstore.StoreFiles.
func (d *DB) StoreChunks(ctx context.Context, team, storeID, fileID string) ([]vectorstore.Chunk, error) {
	if _, err := d.GetStoreFile(ctx, team, storeID, fileID); err != nil {
		return nil, err
	}
	rows, err := d.pool.Query(ctx, `SELECT chunk_index, content, tokens FROM documents
		WHERE collection_id = $1 AND file_id = $2 ORDER BY chunk_index`, storeID, fileID)
	if err != nil {
		return nil, fmt.Errorf("postgres: chunks: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (vectorstore.Chunk, error) {
		var c vectorstore.Chunk
		err := row.Scan(&c.Index, &c.Content, &c.Tokens)
		return c, err
	})
}

const batchSelect = `SELECT b.id, b.vector_store_id, b.team, b.cancelled, b.created_at,
	count(*) FILTER (WHERE f.status = 'in_progress'), count(*) FILTER (WHERE f.status = 'completed'),
	count(*) FILTER (WHERE f.status = 'failed'), count(*) FILTER (WHERE f.status = 'cancelled'), count(f.file_id)
	FROM vector_store_file_batches b
	LEFT JOIN vector_store_files f ON f.batch_id = b.id AND f.vector_store_id = b.vector_store_id
	WHERE b.id = $1 AND b.vector_store_id = $2 AND b.team = $3 GROUP BY b.id`

func scanBatch(row pgx.Row) (*vectorstore.Batch, error) {
	var b vectorstore.Batch
	c := &b.FileCounts
	if err := row.Scan(&b.ID, &b.StoreID, &b.Team, &b.Cancelled, &b.CreatedAt, &c.InProgress, &c.Completed, &c.Failed,
		&c.Cancelled, &c.Total); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, vectorstore.ErrNotFound
		}
		return nil, fmt.Errorf("postgres: scan batch: %w", err)
	}
	b.CreatedAt = b.CreatedAt.UTC()
	return &b, nil
}

// GetBatch implements vectorstore.StoreFiles.
func (d *DB) GetBatch(ctx context.Context, team, storeID, batchID string) (*vectorstore.Batch, error) {
	return scanBatch(d.pool.QueryRow(ctx, batchSelect, batchID, storeID, team))
}

// CancelBatch implements vectorstore.StoreFiles.
func (d *DB) CancelBatch(ctx context.Context, team, storeID, batchID string, at time.Time) (*vectorstore.Batch, error) {
	var b *vectorstore.Batch
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE vector_store_file_batches SET cancelled = true WHERE id = $1 AND vector_store_id = $2 AND team = $3`,
			batchID, storeID, team)
		if err != nil {
			return fmt.Errorf("postgres: cancel batch: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return vectorstore.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `UPDATE vector_store_files SET status = 'cancelled', updated_at = $3
			WHERE vector_store_id = $1 AND batch_id = $2 AND status = 'in_progress'`, storeID, batchID, at.UTC()); err != nil {
			return fmt.Errorf("postgres: cancel batch files: %w", err)
		}
		b, err = scanBatch(tx.QueryRow(ctx, batchSelect, batchID, storeID, team))
		return err
	})
	return b, err
}
