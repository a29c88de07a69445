package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"llmproxy/ledger"
)

// FileName is the database file Open creates in its directory.
const FileName = "llmproxy.db"

var (
	_ ledger.Writer   = (*DB)(nil)
	_ ledger.Reporter = (*DB)(nil)
)

// DB is an open SQLite database with the schema migrated.
type DB struct {
	db   *sql.DB
	path string
	// vecs caches the vector stores' embeddings for exact search
	// (vs_search.go).
	vecs vecCache
	// inserts[k] writes 1<<k usage rows (WriteBatch).
	inserts [usageGroupSizes]*sql.Stmt
}

// Open creates dir if needed, opens dir/llmproxy.db and migrates it.
func Open(ctx context.Context, dir string) (*DB, error) {
	if dir == "" {
		return nil, fmt.Errorf("sqlite: no data directory")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create data dir: %w", err)
	}
	return OpenFile(ctx, filepath.Join(dir, FileName))
}

// OpenFile opens (creating) the database at path and migrates it.
func OpenFile(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	// busy_timeout first: the pragmas run in order on each new connection,
	// and switching to WAL takes a lock another opener may hold.
	for _, p := range []string{"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// WAL gives readers their own snapshot; writes serialise on the file
	// lock anyway, and the ledger writes from one goroutine.
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	d := &DB{db: db, path: path, vecs: newVecCache()}
	if err := d.prepareInserts(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return d, nil
}

// Path is the database file.
func (d *DB) Path() string { return d.path }

// Ping reports whether the database answers (a /ready check).
func (d *DB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// usageGroupMax is the most rows one INSERT carries. WriteBatch sends a
// batch as INSERTs of usageGroupMax rows and the rest as one INSERT per
// set bit of its length (32 rows, 16, ... 1), so any batch takes at most
// len/usageGroupMax + log2(usageGroupMax) statements, from
// log2(usageGroupMax)+1 prepared ones. Each statement costs the driver a
// context watcher, a VM start and database/sql's bookkeeping, which done
// per row were most of a batch's time. 64 rows bind 1216 parameters, far
// under the 32766 SQLite allows.
const (
	usageGroupMax   = 64
	usageGroupSizes = 7 // 1, 2, 4, ... 64 rows
	usageColumns    = 19
)

// insertUsageSQL is the INSERT of n rows. OR FAIL, not the default
// ABORT: a statement that writes several rows and may abort makes SQLite
// keep a statement journal of every page it changes (a temp file), so it
// can undo just that statement. WriteBatch never goes on after a failed
// statement, it rolls the whole transaction back, so FAIL (which keeps
// the statement's earlier rows until then) ends the same, without the
// journal.
func insertUsageSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR FAIL INTO usage_ledger (ts, request_id, route, team, key_id, alias, provider, model,
	prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd, latency_us, ttft_us,
	status, outcome, stream, estimated)
	VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	}
	return b.String()
}

// prepareInserts prepares the INSERTs of 1, 2, 4 ... usageGroupMax rows
// once; database/sql prepares each again, once, on every connection a
// transaction runs it on.
func (d *DB) prepareInserts(ctx context.Context) error {
	for k := range d.inserts {
		st, err := d.db.PrepareContext(ctx, insertUsageSQL(1<<k))
		if err != nil {
			return fmt.Errorf("prepare usage insert of %d rows: %w", 1<<k, err)
		}
		d.inserts[k] = st
	}
	return nil
}

// WriteBatch inserts recs in one transaction, usageGroupMax rows to a
// statement, in order (so ids ascend as recs do).
func (d *DB) WriteBatch(ctx context.Context, recs []ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	var sts [usageGroupSizes]*sql.Stmt // d.inserts on tx's connection, as first needed
	args := make([]any, 0, usageColumns*min(len(recs), usageGroupMax))
	for len(recs) > 0 {
		k := min(bits.Len(uint(len(recs)))-1, usageGroupSizes-1)
		if sts[k] == nil {
			sts[k] = tx.StmtContext(ctx, d.inserts[k])
		}
		group := recs[:1<<k]
		recs = recs[len(group):]
		args = args[:0]
		for i := range group {
			args = appendUsageArgs(args, &group[i])
		}
		if _, err := sts[k].ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("sqlite: insert usage: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// appendUsageArgs appends r's column values. The ints go in as int64,
// which is what database/sql would convert them to (by reflection, and
// boxing again) before the driver binds them.
func appendUsageArgs(args []any, r *ledger.Record) []any {
	return append(args, r.Time.UnixMicro(), r.RequestID, r.Route, r.Team, r.KeyID, r.Alias,
		r.Provider, r.Model, int64(r.PromptTokens), int64(r.CompletionTokens), int64(r.CachedTokens),
		int64(r.ReasoningTokens), r.CostUSD, r.Latency.Microseconds(), r.TTFT.Microseconds(), int64(r.Status),
		r.Outcome, r.Stream, r.Estimated)
}

// Usage sums the records in f by UTC day, team and alias, ordered by
// those three.
func (d *DB) Usage(ctx context.Context, f ledger.Filter) ([]ledger.Row, error) {
	var b strings.Builder
	b.WriteString(`SELECT strftime('%Y-%m-%d', ts / 1000000, 'unixepoch') AS day, team, alias,
		COUNT(*), SUM(outcome <> 'ok'), SUM(estimated),
		SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), SUM(reasoning_tokens),
		SUM(cost_usd)
		FROM usage_ledger WHERE ts >= ? AND ts < ?`)
	args := []any{f.From.UnixMicro(), f.To.UnixMicro()}
	if f.Team != "" {
		b.WriteString(` AND team = ?`)
		args = append(args, f.Team)
	}
	b.WriteString(` GROUP BY day, team, alias ORDER BY day, team, alias`)
	rows, err := d.db.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: usage query: %w", err)
	}
	defer rows.Close()
	var out []ledger.Row
	for rows.Next() {
		var r ledger.Row
		if err := rows.Scan(&r.Day, &r.Team, &r.Alias, &r.Requests, &r.Failed, &r.Estimated,
			&r.PromptTokens, &r.CompletionTokens, &r.CachedTokens, &r.ReasoningTokens, &r.CostUSD); err != nil {
			return nil, fmt.Errorf("sqlite: usage scan: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: usage rows: %w", err)
	}
	return out, nil
}
