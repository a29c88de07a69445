package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"llmproxy/vectorstore"
)

// CreateStore implements vectorstore.Stores.
func (d *DB) CreateStore(ctx context.Context, s *vectorstore.Store) error {
	meta, err := json.Marshal(orEmpty(s.Metadata))
	if err != nil {
		return err
	}
	if _, err := d.db.ExecContext(ctx, `INSERT INTO vector_stores (id, team, name, description, embedding_model, metadata,
		expires_after_days, created_at, last_active_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.Team, s.Name, s.Description, s.EmbeddingModel, string(meta), s.ExpiresAfterDays,
		s.CreatedAt.UnixMicro(), s.LastActiveAt.UnixMicro()); err != nil {
		return fmt.Errorf("sqlite: insert vector store: %w", err)
	}
	return nil
}

// storeSelect reads stores with their file counts and usage, computed from
// their files.
const storeSelect = `SELECT s.id, s.team, s.name, s.description, s.embedding_model, s.metadata, s.expires_after_days,
	s.created_at, s.last_active_at,
	COALESCE(SUM(f.status = 'in_progress'), 0), COALESCE(SUM(f.status = 'completed'), 0),
	COALESCE(SUM(f.status = 'failed'), 0), COALESCE(SUM(f.status = 'cancelled'), 0), COUNT(f.file_id),
	COALESCE(SUM(f.usage_bytes), 0)
	FROM vector_stores s LEFT JOIN vector_store_files f ON f.vector_store_id = s.id`

func scanStore(row interface{ Scan(...any) error }) (*vectorstore.Store, error) {
	var s vectorstore.Store
	var meta string
	var created, active int64
	c := &s.FileCounts
	if err := row.Scan(&s.ID, &s.Team, &s.Name, &s.Description, &s.EmbeddingModel, &meta, &s.ExpiresAfterDays,
		&created, &active, &c.InProgress, &c.Completed, &c.Failed, &c.Cancelled, &c.Total, &s.UsageBytes); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, vectorstore.ErrNotFound
		}
		return nil, fmt.Errorf("sqlite: scan vector store: %w", err)
	}
	if err := json.Unmarshal([]byte(meta), &s.Metadata); err != nil {
		return nil, fmt.Errorf("sqlite: vector store metadata: %w", err)
	}
	s.CreatedAt, s.LastActiveAt = time.UnixMicro(created).UTC(), time.UnixMicro(active).UTC()
	return &s, nil
}

func scanStores(rows *sql.Rows) ([]vectorstore.Store, error) {
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
	return scanStore(d.db.QueryRowContext(ctx, storeSelect+` WHERE s.id = ? AND s.team = ? GROUP BY s.id`, id, team))
}

// FindStores implements vectorstore.Stores.
func (d *DB) FindStores(ctx context.Context, team string, refs []string) ([]vectorstore.Store, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	in := placeholders(len(refs))
	args := []any{team}
	for range 2 {
		for _, r := range refs {
			args = append(args, r)
		}
	}
	rows, err := d.db.QueryContext(ctx, storeSelect+` WHERE s.team = ? AND (s.id IN (`+in+`) OR s.name IN (`+in+`)) GROUP BY s.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find vector stores: %w", err)
	}
	return scanStores(rows)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// ListStores implements vectorstore.Stores.
func (d *DB) ListStores(ctx context.Context, team string, p vectorstore.Page) ([]vectorstore.Store, error) {
	cmp, order := ">", "ASC"
	if p.Desc {
		cmp, order = "<", "DESC"
	}
	q := storeSelect + ` WHERE s.team = ?`
	args := []any{team}
	if p.After != "" {
		q += ` AND (s.created_at, s.id) ` + cmp + ` (SELECT created_at, id FROM vector_stores WHERE id = ? AND team = ?)`
		args = append(args, p.After, team)
	}
	q += ` GROUP BY s.id ORDER BY s.created_at ` + order + `, s.id ` + order + ` LIMIT ?`
	rows, err := d.db.QueryContext(ctx, q, append(args, p.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list vector stores: %w", err)
	}
	return scanStores(rows)
}

// UpdateStore implements vectorstore.Stores.
func (d *DB) UpdateStore(ctx context.Context, team, id string, u vectorstore.StoreUpdate) (*vectorstore.Store, error) {
	set := []string{"last_active_at = ?"}
	args := []any{u.At.UnixMicro()}
	if u.Name != nil {
		set, args = append(set, "name = ?"), append(args, *u.Name)
	}
	if u.Metadata != nil {
		meta, err := json.Marshal(orEmpty(*u.Metadata))
		if err != nil {
			return nil, err
		}
		set, args = append(set, "metadata = ?"), append(args, string(meta))
	}
	if u.ExpiresAfterDays != nil {
		set, args = append(set, "expires_after_days = ?"), append(args, *u.ExpiresAfterDays)
	}
	res, err := d.db.ExecContext(ctx, `UPDATE vector_stores SET `+strings.Join(set, ", ")+` WHERE id = ? AND team = ?`, append(args, id, team)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: update vector store: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, vectorstore.ErrNotFound
	}
	return d.GetStore(ctx, team, id)
}

// DeleteStore implements vectorstore.Stores: attachments, batches and
// chunks go with it (ON DELETE CASCADE).
func (d *DB) DeleteStore(ctx context.Context, team, id string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM vector_stores WHERE id = ? AND team = ?`, id, team)
	if err != nil {
		return fmt.Errorf("sqlite: delete vector store: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vectorstore.ErrNotFound
	}
	d.vecs.drop(id)
	return nil
}
