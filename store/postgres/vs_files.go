package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"llmproxy/vectorstore"
)

// CreateFile implements vectorstore.Files: the bytes go in the row.
func (d *DB) CreateFile(ctx context.Context, f *vectorstore.File, data []byte) error {
	if _, err := d.pool.Exec(ctx, `INSERT INTO files (id, team, filename, purpose, bytes, data, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, f.ID, f.Team, f.Filename, f.Purpose, f.Bytes, data, f.CreatedAt.UTC()); err != nil {
		return fmt.Errorf("postgres: insert file: %w", err)
	}
	return nil
}

const fileColumns = `id, team, filename, purpose, bytes, created_at`

func scanFile(row pgx.Row) (*vectorstore.File, error) {
	var f vectorstore.File
	if err := row.Scan(&f.ID, &f.Team, &f.Filename, &f.Purpose, &f.Bytes, &f.CreatedAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, vectorstore.ErrNotFound
		}
		return nil, fmt.Errorf("postgres: scan file: %w", err)
	}
	f.CreatedAt = f.CreatedAt.UTC()
	return &f, nil
}

// GetFile implements vectorstore.Files.
func (d *DB) GetFile(ctx context.Context, team, id string) (*vectorstore.File, error) {
	return scanFile(d.pool.QueryRow(ctx, `SELECT `+fileColumns+` FROM files WHERE id = $1 AND team = $2`, id, team))
}

// FileContent implements vectorstore.Files.
func (d *DB) FileContent(ctx context.Context, team, id string) ([]byte, error) {
	var b []byte
	if err := d.pool.QueryRow(ctx, `SELECT data FROM files WHERE id = $1 AND team = $2`, id, team).Scan(&b); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, vectorstore.ErrNotFound
		}
		return nil, fmt.Errorf("postgres: file content: %w", err)
	}
	return b, nil
}

// ListFiles implements vectorstore.Files.
func (d *DB) ListFiles(ctx context.Context, team, purpose string, p vectorstore.Page) ([]vectorstore.File, error) {
	q := `SELECT ` + fileColumns + ` FROM files WHERE team = $1`
	args := []any{team}
	if purpose != "" {
		args = append(args, purpose)
		q += ` AND purpose = $2`
	}
	q, args = pageClause(q, args, p, "files", "team")
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list files: %w", err)
	}
	defer rows.Close()
	var out []vectorstore.File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *f)
	}
	return out, rows.Err()
}

// pageClause adds p's keyset condition (after the row of table with id
// p.After and the same value of the column scope as args[0]), order and
// limit to q, ordered by (created_at, id).
func pageClause(q string, args []any, p vectorstore.Page, table, scope string) (string, []any) {
	cmp, order := ">", "ASC"
	if p.Desc {
		cmp, order = "<", "DESC"
	}
	if p.After != "" {
		args = append(args, p.After)
		q += ` AND (created_at, id) ` + cmp + ` (SELECT created_at, id FROM ` + table + ` WHERE id = $` + strconv.Itoa(len(args)) +
			` AND ` + scope + ` = $1)`
	}
	args = append(args, p.Limit)
	return q + ` ORDER BY created_at ` + order + `, id ` + order + ` LIMIT $` + strconv.Itoa(len(args)), args
}

// DeleteFile implements vectorstore.Files; its attachments and their
// chunks go with it (ON DELETE CASCADE).
func (d *DB) DeleteFile(ctx context.Context, team, id string) error {
	tag, err := d.pool.Exec(ctx, `DELETE FROM files WHERE id = $1 AND team = $2`, id, team)
	if err != nil {
		return fmt.Errorf("postgres: delete file: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return vectorstore.ErrNotFound
	}
	return nil
}

// CreateStore implements vectorstore.Stores.
func (d *DB) CreateStore(ctx context.Context, s *vectorstore.Store) error {
	meta, err := json.Marshal(orEmpty(s.Metadata))
	if err != nil {
		return err
	}
	if _, err := d.pool.Exec(ctx, `INSERT INTO vector_stores (id, team, name, description, embedding_model, metadata,
		expires_after_days, created_at, last_active_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		s.ID, s.Team, s.Name, s.Description, s.EmbeddingModel, string(meta), s.ExpiresAfterDays,
		s.CreatedAt.UTC(), s.LastActiveAt.UTC()); err != nil {
		return fmt.Errorf("postgres: insert vector store: %w", err)
	}
	return nil
}

// storeSelect reads stores with their file counts and usage, computed from
// their files.
const storeSelect = `SELECT s.id, s.team, s.name, s.description, s.embedding_model, s.metadata, s.expires_after_days,
	s.created_at, s.last_active_at,
	count(*) FILTER (WHERE f.status = 'in_progress'), count(*) FILTER (WHERE f.status = 'completed'),
	count(*) FILTER (WHERE f.status = 'failed'), count(*) FILTER (WHERE f.status = 'cancelled'), count(f.file_id),
	COALESCE(sum(f.usage_bytes), 0)::bigint
	FROM vector_stores s LEFT JOIN vector_store_files f ON f.vector_store_id = s.id`

func scanStore(row pgx.Row) (*vectorstore.Store, error) {
	var s vectorstore.Store
	var meta []byte
	c := &s.FileCounts
	if err := row.Scan(&s.ID, &s.Team, &s.Name, &s.Description, &s.EmbeddingModel, &meta, &s.ExpiresAfterDays,
		&s.CreatedAt, &s.LastActiveAt, &c.InProgress, &c.Completed, &c.Failed, &c.Cancelled, &c.Total, &s.UsageBytes); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, vectorstore.ErrNotFound
		}
		return nil, fmt.Errorf("postgres: scan vector store: %w", err)
	}
	if err := json.Unmarshal(meta, &s.Metadata); err != nil {
		return nil, fmt.Errorf("postgres: vector store metadata: %w", err)
	}
	s.CreatedAt, s.LastActiveAt = s.CreatedAt.UTC(), s.LastActiveAt.UTC()
	return &s, nil
}

func (d *DB) queryStores(ctx context.Context, q string, args ...any) ([]vectorstore.Store, error) {
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: vector stores: %w", err)
	}
	defer rows.Close()
	var out []vectorstore.Store
	for rows.Next() {
		s, err := scanStore(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	return out, rows.Err()
}

// GetStore implements vectorstore.Stores.
func (d *DB) GetStore(ctx context.Context, team, id string) (*vectorstore.Store, error) {
	return scanStore(d.pool.QueryRow(ctx, storeSelect+` WHERE s.id = $1 AND s.team = $2 GROUP BY s.id`, id, team))
}

// FindStores implements vectorstore.Stores.
func (d *DB) FindStores(ctx context.Context, team string, refs []string) ([]vectorstore.Store, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	return d.queryStores(ctx, storeSelect+` WHERE s.team = $1 AND (s.id = ANY($2) OR s.name = ANY($2)) GROUP BY s.id`, team, refs)
}

// ListStores implements vectorstore.Stores.
func (d *DB) ListStores(ctx context.Context, team string, p vectorstore.Page) ([]vectorstore.Store, error) {
	cmp, order := ">", "ASC"
	if p.Desc {
		cmp, order = "<", "DESC"
	}
	q := storeSelect + ` WHERE s.team = $1`
	args := []any{team}
	if p.After != "" {
		args = append(args, p.After)
		q += ` AND (s.created_at, s.id) ` + cmp + ` (SELECT created_at, id FROM vector_stores WHERE id = $2 AND team = $1)`
	}
	args = append(args, p.Limit)
	q += ` GROUP BY s.id ORDER BY s.created_at ` + order + `, s.id ` + order + ` LIMIT $` + strconv.Itoa(len(args))
	return d.queryStores(ctx, q, args...)
}

// UpdateStore implements vectorstore.Stores.
func (d *DB) UpdateStore(ctx context.Context, team, id string, u vectorstore.StoreUpdate) (*vectorstore.Store, error) {
	var meta any
	if u.Metadata != nil {
		b, err := json.Marshal(orEmpty(*u.Metadata))
		if err != nil {
			return nil, err
		}
		meta = string(b)
	}
	tag, err := d.pool.Exec(ctx, `UPDATE vector_stores SET last_active_at = $3, name = COALESCE($4, name),
		metadata = COALESCE($5::jsonb, metadata), expires_after_days = COALESCE($6, expires_after_days)
		WHERE id = $1 AND team = $2`, id, team, u.At.UTC(), u.Name, meta, u.ExpiresAfterDays)
	if err != nil {
		return nil, fmt.Errorf("postgres: update vector store: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil, vectorstore.ErrNotFound
	}
	return d.GetStore(ctx, team, id)
}

// DeleteStore implements vectorstore.Stores: attachments, batches and
// chunks go with it (ON DELETE CASCADE).
func (d *DB) DeleteStore(ctx context.Context, team, id string) error {
	tag, err := d.pool.Exec(ctx, `DELETE FROM vector_stores WHERE id = $1 AND team = $2`, id, team)
	if err != nil {
		return fmt.Errorf("postgres: delete vector store: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return vectorstore.ErrNotFound
	}
	return nil
}
