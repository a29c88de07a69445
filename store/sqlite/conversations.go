package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"llmproxy/memory"
)

var _ memory.Store = (*DB)(nil)

// CreateConversation implements memory.History.
func (d *DB) CreateConversation(ctx context.Context, c *memory.Conversation, items []memory.Message) error {
	meta, err := json.Marshal(orEmpty(c.Metadata))
	if err != nil {
		return err
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, team, user_id, title, model, metadata, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Team, c.UserID, c.Title, c.Model, string(meta),
		c.CreatedAt.UnixMicro(), c.UpdatedAt.UnixMicro()); err != nil {
		return fmt.Errorf("sqlite: insert conversation: %w", err)
	}
	if err := appendTx(ctx, tx, c.ID, items, c.UpdatedAt); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// AppendMessages implements memory.History. The transaction is immediate
// (_txlock), so the write lock is taken at BEGIN and the next_seq read and
// bump cannot interleave with another writer's.
func (d *DB) AppendMessages(ctx context.Context, team, id string, msgs []memory.Message, at time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE conversations SET updated_at = ? WHERE id = ? AND team = ?`, at.UnixMicro(), id, team)
	if err != nil {
		return fmt.Errorf("sqlite: touch conversation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return memory.ErrNotFound
	}
	if err := appendTx(ctx, tx, id, msgs, at); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

func appendTx(ctx context.Context, tx *sql.Tx, id string, msgs []memory.Message, at time.Time) error {
	if len(msgs) == 0 {
		return nil
	}
	var first int64
	if err := tx.QueryRowContext(ctx, `UPDATE conversations SET next_seq = next_seq + ?, updated_at = ? WHERE id = ?
		RETURNING next_seq - ?`, len(msgs), at.UnixMicro(), id, len(msgs)).Scan(&first); err != nil {
		return fmt.Errorf("sqlite: allocate sequence: %w", err)
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO messages (id, conversation_id, seq, role, content, tokens, metadata, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("sqlite: prepare insert: %w", err)
	}
	defer st.Close()
	for i := range msgs {
		m := &msgs[i]
		m.Seq = first + int64(i)
		meta, err := json.Marshal(m.Meta)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, m.ID, id, m.Seq, m.Role, string(m.Content), m.Tokens, string(meta),
			m.CreatedAt.UnixMicro()); err != nil {
			return fmt.Errorf("sqlite: insert message: %w", err)
		}
	}
	return nil
}

const convColumns = `id, team, user_id, title, model, metadata, created_at, updated_at`

func scanConversation(row interface{ Scan(...any) error }) (*memory.Conversation, error) {
	var c memory.Conversation
	var meta string
	var created, updated int64
	if err := row.Scan(&c.ID, &c.Team, &c.UserID, &c.Title, &c.Model, &meta, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, memory.ErrNotFound
		}
		return nil, fmt.Errorf("sqlite: scan conversation: %w", err)
	}
	if err := json.Unmarshal([]byte(meta), &c.Metadata); err != nil {
		return nil, fmt.Errorf("sqlite: conversation metadata: %w", err)
	}
	c.CreatedAt, c.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return &c, nil
}

// GetConversation implements memory.Conversations.
func (d *DB) GetConversation(ctx context.Context, team, id string) (*memory.Conversation, error) {
	return scanConversation(d.db.QueryRowContext(ctx, `SELECT `+convColumns+` FROM conversations WHERE id = ? AND team = ?`, id, team))
}

// LoadHistory implements memory.History.
func (d *DB) LoadHistory(ctx context.Context, team, id string) (*memory.Conversation, []memory.Message, error) {
	c, err := d.GetConversation(ctx, team, id)
	if err != nil {
		return nil, nil, err
	}
	rows, err := d.db.QueryContext(ctx, `SELECT `+msgColumns+` FROM messages WHERE conversation_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: load history: %w", err)
	}
	msgs, err := scanMessages(rows)
	return c, msgs, err
}

const msgColumns = `id, seq, role, content, tokens, metadata, created_at`

func scanMessages(rows *sql.Rows) ([]memory.Message, error) {
	defer rows.Close()
	var out []memory.Message
	for rows.Next() {
		var m memory.Message
		var content, meta string
		var created int64
		if err := rows.Scan(&m.ID, &m.Seq, &m.Role, &content, &m.Tokens, &meta, &created); err != nil {
			return nil, fmt.Errorf("sqlite: scan message: %w", err)
		}
		m.Content = json.RawMessage(content)
		if err := json.Unmarshal([]byte(meta), &m.Meta); err != nil {
			return nil, fmt.Errorf("sqlite: message metadata: %w", err)
		}
		m.CreatedAt = time.UnixMicro(created).UTC()
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: messages: %w", err)
	}
	return out, nil
}

// UpdateConversation implements memory.Conversations.
func (d *DB) UpdateConversation(ctx context.Context, team, id string, metadata map[string]string, at time.Time) (*memory.Conversation, error) {
	meta, err := json.Marshal(orEmpty(metadata))
	if err != nil {
		return nil, err
	}
	return scanConversation(d.db.QueryRowContext(ctx, `UPDATE conversations SET metadata = ?, updated_at = ?
		WHERE id = ? AND team = ? RETURNING `+convColumns, string(meta), at.UnixMicro(), id, team))
}

// DeleteConversation implements memory.Conversations; its messages go
// with it (ON DELETE CASCADE).
func (d *DB) DeleteConversation(ctx context.Context, team, id string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM conversations WHERE id = ? AND team = ?`, id, team)
	if err != nil {
		return fmt.Errorf("sqlite: delete conversation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return memory.ErrNotFound
	}
	return nil
}

// ListConversations implements memory.Lists.
func (d *DB) ListConversations(ctx context.Context, team string, p memory.Page) ([]memory.Conversation, error) {
	cmp, order := ">", "ASC"
	if p.Desc {
		cmp, order = "<", "DESC"
	}
	q := `SELECT ` + convColumns + ` FROM conversations WHERE team = ?`
	args := []any{team}
	if p.After != "" {
		q += ` AND (created_at, id) ` + cmp + ` (SELECT created_at, id FROM conversations WHERE id = ? AND team = ?)`
		args = append(args, p.After, team)
	}
	q += ` ORDER BY created_at ` + order + `, id ` + order + ` LIMIT ?`
	rows, err := d.db.QueryContext(ctx, q, append(args, p.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list conversations: %w", err)
	}
	defer rows.Close()
	var out []memory.Conversation
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// ListMessages implements memory.Lists.
func (d *DB) ListMessages(ctx context.Context, team, id string, p memory.Page) ([]memory.Message, error) {
	var one int
	if err := d.db.QueryRowContext(ctx, `SELECT 1 FROM conversations WHERE id = ? AND team = ?`, id, team).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, memory.ErrNotFound
		}
		return nil, fmt.Errorf("sqlite: find conversation: %w", err)
	}
	cmp, order := ">", "ASC"
	if p.Desc {
		cmp, order = "<", "DESC"
	}
	q := `SELECT ` + msgColumns + ` FROM messages WHERE conversation_id = ?`
	args := []any{id}
	if p.After != "" {
		q += ` AND seq ` + cmp + ` (SELECT seq FROM messages WHERE id = ? AND conversation_id = ?)`
		args = append(args, p.After, id)
	}
	q += ` ORDER BY seq ` + order + ` LIMIT ?`
	rows, err := d.db.QueryContext(ctx, q, append(args, p.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list messages: %w", err)
	}
	return scanMessages(rows)
}

// DeleteMessage implements memory.Lists.
func (d *DB) DeleteMessage(ctx context.Context, team, id, msgID string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM messages WHERE id = ? AND conversation_id =
		(SELECT id FROM conversations WHERE id = ? AND team = ?)`, msgID, id, team)
	if err != nil {
		return fmt.Errorf("sqlite: delete message: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return memory.ErrNotFound
	}
	return nil
}

// DeleteIdle implements memory.Sweeper. One process owns an SQLite file,
// so there is no other replica to take turns with.
func (d *DB) DeleteIdle(ctx context.Context, before time.Time) (int64, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM conversations WHERE updated_at < ?`, before.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete idle conversations: %w", err)
	}
	return res.RowsAffected()
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// GetMessage implements memory.Items.
func (d *DB) GetMessage(ctx context.Context, team, id, msgID string) (*memory.Message, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+msgColumns+` FROM messages WHERE id = ? AND conversation_id =
		(SELECT id FROM conversations WHERE id = ? AND team = ?)`, msgID, id, team)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get message: %w", err)
	}
	ms, err := scanMessages(rows)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, memory.ErrNotFound
	}
	return &ms[0], nil
}
