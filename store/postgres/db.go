package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"llmproxy/ledger"
)

var (
	_ ledger.Writer   = (*DB)(nil)
	_ ledger.Reporter = (*DB)(nil)
)

// DB is a connection pool with the schema migrated.
type DB struct {
	pool *pgxpool.Pool
}

// Option tunes Open.
type Option func(*pgxpool.Config)

// WithTracerProvider traces each query, batch, COPY and connection
// acquisition through tp (otelpgx): the SQL text, never its parameters.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *pgxpool.Config) {
		c.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTracerProvider(tp), otelpgx.WithTrimSQLInSpanName(),
			otelpgx.WithDisableConnectionDetailsInAttributes())
	}
}

// Open connects to url, checks that the server answers and migrates the
// schema. Errors never quote url: it usually holds a password.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("postgres: database.url does not parse (value not shown)")
	}
	for _, o := range opts {
		o(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &DB{pool: pool}, nil
}

// CheckURL reports whether url parses as a connection string, without
// connecting; the error never quotes url.
func CheckURL(url string) error {
	if _, err := pgxpool.ParseConfig(url); err != nil {
		return errors.New("postgres: database.url does not parse (value not shown)")
	}
	return nil
}

// Ping reports whether the database answers (a /ready check).
func (d *DB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// Close closes the pool.
func (d *DB) Close() error {
	d.pool.Close()
	return nil
}

var usageColumns = []string{"ts", "request_id", "route", "team", "key_id", "alias", "provider", "model",
	"prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "cost_usd", "latency_us", "ttft_us",
	"status", "outcome", "stream", "estimated"}

// WriteBatch copies recs in with COPY: one statement, so all or nothing.
func (d *DB) WriteBatch(ctx context.Context, recs []ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	src := pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) {
		r := &recs[i]
		return []any{r.Time.UTC(), r.RequestID, r.Route, r.Team, r.KeyID, r.Alias, r.Provider, r.Model,
			int32(r.PromptTokens), int32(r.CompletionTokens), int32(r.CachedTokens), int32(r.ReasoningTokens),
			r.CostUSD, r.Latency.Microseconds(), r.TTFT.Microseconds(), int32(r.Status), r.Outcome,
			r.Stream, r.Estimated}, nil
	})
	if _, err := d.pool.CopyFrom(ctx, pgx.Identifier{"usage_ledger"}, usageColumns, src); err != nil {
		return fmt.Errorf("postgres: copy usage: %w", err)
	}
	return nil
}

// Usage sums the records in f by UTC day, team and alias, ordered by
// those three.
func (d *DB) Usage(ctx context.Context, f ledger.Filter) ([]ledger.Row, error) {
	var b strings.Builder
	b.WriteString(`SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, team, alias,
		count(*), count(*) FILTER (WHERE outcome <> 'ok'), count(*) FILTER (WHERE estimated),
		COALESCE(sum(prompt_tokens), 0)::bigint, COALESCE(sum(completion_tokens), 0)::bigint,
		COALESCE(sum(cached_tokens), 0)::bigint, COALESCE(sum(reasoning_tokens), 0)::bigint,
		COALESCE(sum(cost_usd), 0)::double precision
		FROM usage_ledger WHERE ts >= $1 AND ts < $2`)
	args := []any{f.From.UTC(), f.To.UTC()}
	if f.Team != "" {
		b.WriteString(` AND team = $3`)
		args = append(args, f.Team)
	}
	b.WriteString(` GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
	rows, err := d.pool.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: usage query: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ledger.Row, error) {
		var r ledger.Row
		err := row.Scan(&r.Day, &r.Team, &r.Alias, &r.Requests, &r.Failed, &r.Estimated,
			&r.PromptTokens, &r.CompletionTokens, &r.CachedTokens, &r.ReasoningTokens, &r.CostUSD)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: usage rows: %w", err)
	}
	return out, nil
}
