package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// Approximate indexes per embedding dimension (see vs_schema.go).
//
// HNSW is built the first time chunks of a dimension arrive, while there
// are few, and grows with every insert. IVFFlat learns its lists from the
// rows present when it is built, so it waits for ivfflatMinRows rows of
// the dimension (search is exact until then) and is rebuilt with more
// lists once the rows have grown ivfflatRegrow-fold. A build holds a
// SHARE lock on documents: ingestion commits wait for it.

const (
	ivfflatMinRows = 1000
	ivfflatRegrow  = 4
	// ivfflatRecheck is how often a replica counts a dimension's rows to
	// decide on a rebuild.
	ivfflatRecheck = 30 * time.Second
)

type indexState struct {
	lists   int // IVFFlat's lists; 0 for HNSW or no index yet
	built   bool
	checked time.Time
}

// ivfLists is pgvector's advice: rows/1000 up to a million rows, then
// sqrt(rows).
func ivfLists(rows int64) int {
	if rows <= 1_000_000 {
		return max(1, int(rows/1000))
	}
	return int(math.Sqrt(float64(rows)))
}

func (v *VectorDB) indexName(dims int) string {
	return fmt.Sprintf("documents_%s_%d", v.kind, dims)
}

// ensureIndex builds (or, for IVFFlat, rebuilds) the index of dims when it
// is due. Replicas take turns on an advisory lock per index.
func (v *VectorDB) ensureIndex(ctx context.Context, dims int) error {
	typ, ok := v.vecType(dims)
	if !ok {
		return nil
	}
	v.mu.Lock()
	st, known := v.indexed[dims]
	v.mu.Unlock()
	if known && st.built && (v.kind == IndexHNSW || time.Since(st.checked) < ivfflatRecheck) {
		return nil
	}
	if known && !st.built && time.Since(st.checked) < ivfflatRecheck {
		return nil
	}
	name := v.indexName(dims)
	err := pgx.BeginFunc(ctx, v.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.' || $1))`, name); err != nil {
			return err
		}
		var builtRows int64
		var exists bool
		err := tx.QueryRow(ctx, `SELECT i.rows_at_build, to_regclass(quote_ident(current_schema()) || '.' || $1) IS NOT NULL
			FROM vector_indexes i WHERE i.name = $1`, name).Scan(&builtRows, &exists)
		if errors.Is(err, pgx.ErrNoRows) {
			builtRows, exists, err = -1, false, nil
		}
		if err != nil {
			return err
		}
		var rows int64
		if v.kind == IndexIVFFlat || !exists {
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM documents WHERE dims = $1`, dims).Scan(&rows); err != nil {
				return err
			}
		}
		st = indexState{checked: time.Now()}
		switch {
		case v.kind == IndexHNSW && exists:
			st.built = true
			return nil
		case v.kind == IndexHNSW:
			st.built = true
			_, err = tx.Exec(ctx, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON documents USING hnsw ((embedding::%s) %s) WHERE dims = %d`,
				pgx.Identifier{name}.Sanitize(), typ, v.cosineOps(dims), dims))
		case exists && rows < ivfflatRegrow*builtRows:
			st.built, st.lists = true, ivfLists(builtRows)
			return nil
		case !exists && rows < ivfflatMinRows:
			return nil
		default:
			st.built, st.lists = true, ivfLists(rows)
			if _, err := tx.Exec(ctx, `DROP INDEX IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, fmt.Sprintf(`CREATE INDEX %s ON documents USING ivfflat ((embedding::%s) %s) WITH (lists = %d) WHERE dims = %d`,
				pgx.Identifier{name}.Sanitize(), typ, v.cosineOps(dims), st.lists, dims))
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO vector_indexes (name, kind, dims, rows_at_build, built_at) VALUES ($1, $2, $3, $4, now())
			ON CONFLICT (name) DO UPDATE SET rows_at_build = excluded.rows_at_build, built_at = excluded.built_at`,
			name, v.kind, dims, rows)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: %s index for %d dimensions: %w", v.kind, dims, err)
	}
	v.mu.Lock()
	v.indexed[dims] = st
	v.mu.Unlock()
	return nil
}

// BuildIndex builds dims' index now, whatever the row count (a bulk load
// builds it once after loading; bench).
func (v *VectorDB) BuildIndex(ctx context.Context, dims int) error {
	v.mu.Lock()
	delete(v.indexed, dims)
	v.mu.Unlock()
	if v.kind == IndexIVFFlat {
		if _, err := v.pool.Exec(ctx, `DELETE FROM vector_indexes WHERE name = $1`, v.indexName(dims)); err != nil {
			return err
		}
		if _, err := v.pool.Exec(ctx, `DROP INDEX IF EXISTS `+pgx.Identifier{v.indexName(dims)}.Sanitize()); err != nil {
			return err
		}
	}
	return v.ensureIndex(ctx, dims)
}

// probes is IVFFlat's probes for dims' index: sqrt(lists), pgvector's
// starting point for recall near HNSW's.
func (v *VectorDB) probes(dims int) int {
	v.mu.Lock()
	st := v.indexed[dims]
	v.mu.Unlock()
	return max(1, int(math.Ceil(math.Sqrt(float64(st.lists)))))
}
