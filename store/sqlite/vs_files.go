package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"llmproxy/vectorstore"
)

var _ vectorstore.Storage = (*DB)(nil)

// FilesDirName is the directory next to the database that holds uploaded
// files' bytes, one file per id.
const FilesDirName = "files"

// filePath is where file id's bytes live. Ids are ours (file-<hex>), but
// one read from a URL is checked before it names a path.
func (d *DB) filePath(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return "", vectorstore.ErrNotFound
	}
	return filepath.Join(filepath.Dir(d.path), FilesDirName, id), nil
}

// CreateFile implements vectorstore.Files: the bytes go to a file written
// whole (temporary name, fsync, rename) before the row that names it.
func (d *DB) CreateFile(ctx context.Context, f *vectorstore.File, data []byte) error {
	path, err := d.filePath(f.ID)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, data); err != nil {
		return fmt.Errorf("sqlite: write file: %w", err)
	}
	if _, err := d.db.ExecContext(ctx, `INSERT INTO files (id, team, filename, purpose, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		f.ID, f.Team, f.Filename, f.Purpose, f.Bytes, f.CreatedAt.UnixMicro()); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("sqlite: insert file: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".upload-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

const fileColumns = `id, team, filename, purpose, bytes, created_at`

func scanFile(row interface{ Scan(...any) error }) (*vectorstore.File, error) {
	var f vectorstore.File
	var created int64
	if err := row.Scan(&f.ID, &f.Team, &f.Filename, &f.Purpose, &f.Bytes, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, vectorstore.ErrNotFound
		}
		return nil, fmt.Errorf("sqlite: scan file: %w", err)
	}
	f.CreatedAt = time.UnixMicro(created).UTC()
	return &f, nil
}

// GetFile implements vectorstore.Files.
func (d *DB) GetFile(ctx context.Context, team, id string) (*vectorstore.File, error) {
	return scanFile(d.db.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files WHERE id = ? AND team = ?`, id, team))
}

// FileContent implements vectorstore.Files.
func (d *DB) FileContent(ctx context.Context, team, id string) ([]byte, error) {
	if _, err := d.GetFile(ctx, team, id); err != nil {
		return nil, err
	}
	return d.readFile(id)
}

func (d *DB) readFile(id string) ([]byte, error) {
	path, err := d.filePath(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read file %s: %w", id, err)
	}
	return b, nil
}

// ListFiles implements vectorstore.Files.
func (d *DB) ListFiles(ctx context.Context, team, purpose string, p vectorstore.Page) ([]vectorstore.File, error) {
	q := `SELECT ` + fileColumns + ` FROM files WHERE team = ?`
	args := []any{team}
	if purpose != "" {
		q += ` AND purpose = ?`
		args = append(args, purpose)
	}
	q, args = pageClause(q, args, p, "files", "team = ?", team)
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list files: %w", err)
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

// pageClause adds p's keyset condition (after a row of table found by id
// and scope) and order and limit to q, ordered by (created_at, id).
func pageClause(q string, args []any, p vectorstore.Page, table, scope string, scopeArg any) (string, []any) {
	cmp, order := ">", "ASC"
	if p.Desc {
		cmp, order = "<", "DESC"
	}
	if p.After != "" {
		q += ` AND (created_at, id) ` + cmp + ` (SELECT created_at, id FROM ` + table + ` WHERE id = ? AND ` + scope + `)`
		args = append(args, p.After, scopeArg)
	}
	q += ` ORDER BY created_at ` + order + `, id ` + order + ` LIMIT ?`
	return q, append(args, p.Limit)
}

// DeleteFile implements vectorstore.Files: its attachments and their
// chunks go with the row (ON DELETE CASCADE), then the bytes.
func (d *DB) DeleteFile(ctx context.Context, team, id string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	stores, err := storesOfFile(ctx, tx, id)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM files WHERE id = ? AND team = ?`, id, team)
	if err != nil {
		return fmt.Errorf("sqlite: delete file: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vectorstore.ErrNotFound
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	for _, s := range stores {
		d.vecs.removeFile(s, id)
	}
	if path, err := d.filePath(id); err == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sqlite: remove file bytes: %w", err)
		}
	}
	return nil
}

func storesOfFile(ctx context.Context, tx *sql.Tx, fileID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT vector_store_id FROM vector_store_files WHERE file_id = ?`, fileID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stores of file: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
