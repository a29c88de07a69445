package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"llmproxy/memory"
)

var _ memory.Store = (*DB)(nil)

// CreateConversation implements memory.History.
func (d *DB) CreateConversation(ctx context.Context, c *memory.Conversation, items []memory.Message) error {
	meta, err := json.Marshal(orEmpty(c.Metadata))
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO conversations (id, team, user_id, title, model, metadata, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, c.ID, c.Team, c.UserID, c.Title, c.Model, string(meta),
			c.CreatedAt.UTC(), c.UpdatedAt.UTC()); err != nil {
			return fmt.Errorf("postgres: insert conversation: %w", err)
		}
		return appendTx(ctx, tx, c.ID, items, c.UpdatedAt)
	})
}

// AppendMessages implements memory.History. The UPDATE … RETURNING takes
// the conversation's row lock, so a concurrent turn waits and then gets
// the numbers after these.
func (d *DB) AppendMessages(ctx context.Context, team, id string, msgs []memory.Message, at time.Time) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE conversations SET updated_at = $1 WHERE id = $2 AND team = $3`, at.UTC(), id, team)
		if err != nil {
			return fmt.Errorf("postgres: touch conversation: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return memory.ErrNotFound
		}
		return appendTx(ctx, tx, id, msgs, at)
	})
}

func appendTx(ctx context.Context, tx pgx.Tx, id string, msgs []memory.Message, at time.Time) error {
	if len(msgs) == 0 {
		return nil
	}
	var first int64
	if err := tx.QueryRow(ctx, `UPDATE conversations SET next_seq = next_seq + $1, updated_at = $2 WHERE id = $3
		RETURNING next_seq - $1`, int64(len(msgs)), at.UTC(), id).Scan(&first); err != nil {
		return fmt.Errorf("postgres: allocate sequence: %w", err)
	}
	var b pgx.Batch
	for i := range msgs {
		m := &msgs[i]
		m.Seq = first + int64(i)
		meta, err := json.Marshal(m.Meta)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO messages (id, conversation_id, seq, role, content, tokens, metadata, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, m.ID, id, m.Seq, m.Role, string(m.Content), m.Tokens, string(meta), m.CreatedAt.UTC())
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("postgres: insert messages: %w", err)
	}
	return nil
}

const convColumns = `id, team, user_id, title, model, metadata::text, created_at, updated_at`

func scanConversation(row pgx.Row) (*memory.Conversation, error) {
	var c memory.Conversation
	var meta string
	if err := row.Scan(&c.ID, &c.Team, &c.UserID, &c.Title, &c.Model, &meta, &c.CreatedAt, &c.UpdatedAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, memory.ErrNotFound
		}
		return nil, fmt.Errorf("postgres: scan conversation: %w", err)
	}
	if err := json.Unmarshal([]byte(meta), &c.Metadata); err != nil {
		return nil, fmt.Errorf("postgres: conversation metadata: %w", err)
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return &c, nil
}

// GetConversation implements memory.Conversations.
func (d *DB) GetConversation(ctx context.Context, team, id string) (*memory.Conversation, error) {
	return scanConversation(d.pool.QueryRow(ctx, `SELECT `+convColumns+` FROM conversations WHERE id = $1 AND team = $2`, id, team))
}

// LoadHistory implements memory.History.
func (d *DB) LoadHistory(ctx context.Context, team, id string) (*memory.Conversation, []memory.Message, error) {
	c, err := d.GetConversation(ctx, team, id)
	if err != nil {
		return nil, nil, err
	}
	rows, err := d.pool.Query(ctx, `SELECT `+msgColumns+` FROM messages WHERE conversation_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: load history: %w", err)
	}
	msgs, err := scanMessages(rows)
	return c, msgs, err
}

// content is read as text: jsonb would come back re-spaced, and it is
// replayed to the upstream as it was sent.
const msgColumns = `id, seq, role, content::text, tokens, metadata::text, created_at`

func scanMessages(rows pgx.Rows) ([]memory.Message, error) {
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (memory.Message, error) {
		var m memory.Message
		var content, meta string
		if err := row.Scan(&m.ID, &m.Seq, &m.Role, &content, &m.Tokens, &meta, &m.CreatedAt); err != nil {
			return m, err
		}
		m.Content = json.RawMessage(content)
		m.CreatedAt = m.CreatedAt.UTC()
		return m, json.Unmarshal([]byte(meta), &m.Meta)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: messages: %w", err)
	}
	return out, nil
}

// UpdateConversation implements memory.Conversations.
func (d *DB) UpdateConversation(ctx context.Context, team, id string, metadata map[string]string, at time.Time) (*memory.Conversation, error) {
	meta, err := json.Marshal(orEmpty(metadata))
	if err != nil {
		return nil, err
	}
	return scanConversation(d.pool.QueryRow(ctx, `UPDATE conversations SET metadata = $1, updated_at = $2
		WHERE id = $3 AND team = $4 RETURNING `+convColumns, string(meta), at.UTC(), id, team))
}

// DeleteConversation implements memory.Conversations; its messages go
// with it (ON DELETE CASCADE).
func (d *DB) DeleteConversation(ctx context.Context, team, id string) error {
	tag, err := d.pool.Exec(ctx, `DELETE FROM conversations WHERE id = $1 AND team = $2`, id, team)
	if err != nil {
		return fmt.Errorf("postgres: delete conversation: %w", err)
	}
	if tag.RowsAffected() == 0 {
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
	q := `SELECT ` + convColumns + ` FROM conversations WHERE team = $1`
	args := []any{team, p.Limit}
	if p.After != "" {
		q += ` AND (created_at, id) ` + cmp + ` (SELECT created_at, id FROM conversations WHERE id = $3 AND team = $1)`
		args = append(args, p.After)
	}
	q += ` ORDER BY created_at ` + order + `, id ` + order + ` LIMIT $2`
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list conversations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (memory.Conversation, error) {
		c, err := scanConversation(row)
		if err != nil {
			return memory.Conversation{}, err
		}
		return *c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list conversations: %w", err)
	}
	return out, nil
}

// ListMessages implements memory.Lists.
func (d *DB) ListMessages(ctx context.Context, team, id string, p memory.Page) ([]memory.Message, error) {
	var one int
	if err := d.pool.QueryRow(ctx, `SELECT 1 FROM conversations WHERE id = $1 AND team = $2`, id, team).Scan(&one); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, memory.ErrNotFound
		}
		return nil, fmt.Errorf("postgres: find conversation: %w", err)
	}
	cmp, order := ">", "ASC"
	if p.Desc {
		cmp, order = "<", "DESC"
	}
	q := `SELECT ` + msgColumns + ` FROM messages WHERE conversation_id = $1`
	args := []any{id, p.Limit}
	if p.After != "" {
		q += ` AND seq ` + cmp + ` (SELECT seq FROM messages WHERE id = $3 AND conversation_id = $1)`
		args = append(args, p.After)
	}
	q += ` ORDER BY seq ` + order + ` LIMIT $2`
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list messages: %w", err)
	}
	return scanMessages(rows)
}

// DeleteMessage implements memory.Lists.
func (d *DB) DeleteMessage(ctx context.Context, team, id, msgID string) error {
	tag, err := d.pool.Exec(ctx, `DELETE FROM messages WHERE id = $1 AND conversation_id =
		(SELECT id FROM conversations WHERE id = $2 AND team = $3)`, msgID, id, team)
	if err != nil {
		return fmt.Errorf("postgres: delete message: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return memory.ErrNotFound
	}
	return nil
}

// DeleteIdle implements memory.Sweeper. A transaction-scoped advisory
// lock, keyed by the schema, lets one replica sweep at a time; one that
// finds it taken returns 0 at once (the holder is doing the work).
func (d *DB) DeleteIdle(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.memory_retention'))`).Scan(&got); err != nil {
			return fmt.Errorf("postgres: retention lock: %w", err)
		}
		if !got {
			return nil
		}
		tag, err := tx.Exec(ctx, `DELETE FROM conversations WHERE updated_at < $1`, before.UTC())
		if err != nil {
			return fmt.Errorf("postgres: delete idle conversations: %w", err)
		}
		n = tag.RowsAffected()
		return nil
	})
	return n, err
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// GetMessage implements memory.Items.
func (d *DB) GetMessage(ctx context.Context, team, id, msgID string) (*memory.Message, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+msgColumns+` FROM messages WHERE id = $1 AND conversation_id =
		(SELECT id FROM conversations WHERE id = $2 AND team = $3)`, msgID, id, team)
	if err != nil {
		return nil, fmt.Errorf("postgres: get message: %w", err)
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
