package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"llmproxy/vectorstore"
)

// VectorSearch implements vectorstore.Searcher: the nearest chunks by
// cosine distance through the dimension's index, with pgvector 0.8's
// iterative scans so that a store or filter that matches few rows still
// gets K results.
func (v *VectorDB) VectorSearch(ctx context.Context, q vectorstore.VectorQuery) ([]vectorstore.Hit, error) {
	dims := len(q.Vector)
	if dims == 0 || len(q.StoreIDs) == 0 {
		return nil, nil
	}
	typ, indexable := v.vecType(dims)
	if indexable {
		v.mu.Lock()
		_, known := v.indexed[dims]
		v.mu.Unlock()
		if !known {
			_ = v.ensureIndex(ctx, dims) // learn IVFFlat's lists; search works without
		}
	}
	// dims is written into the statement, not passed: the partial index's
	// predicate (dims = N) must be provable when the plan is made.
	args := []any{vectorText(q.Vector), q.StoreIDs}
	filter := filterSQL(q.Filter, &args)
	args = append(args, q.K)
	expr := "(d.embedding::" + typ + ")"
	sql := `WITH nn AS MATERIALIZED (
		SELECT d.id, d.collection_id, d.file_id, d.chunk_index, d.content, ` + expr + ` OPERATOR(` + v.ext + `.<=>) $1::` + typ + ` AS dist
		FROM documents d
		WHERE d.dims = ` + strconv.Itoa(dims) + ` AND d.collection_id = ANY($2) AND ` + filter + `
		ORDER BY ` + expr + ` OPERATOR(` + v.ext + `.<=>) $1::` + typ + ` LIMIT $` + strconv.Itoa(len(args)) + `)
	SELECT nn.id, nn.collection_id, nn.file_id, nn.chunk_index, nn.content, f.filename, vf.attributes, 1 - nn.dist
	FROM nn JOIN vector_store_files vf ON vf.vector_store_id = nn.collection_id AND vf.file_id = nn.file_id
	JOIN files f ON f.id = nn.file_id
	ORDER BY nn.dist, nn.id`
	var hits []vectorstore.Hit
	err := pgx.BeginTxFunc(ctx, v.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var set string
		switch v.kind {
		case IndexHNSW:
			set = `SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)`
			args := strconv.Itoa(min(max(2*q.K, 40), 1000))
			if _, err := tx.Exec(ctx, set, args); err != nil {
				return err
			}
		case IndexIVFFlat:
			set = `SELECT set_config('ivfflat.probes', $1, true), set_config('ivfflat.iterative_scan', 'relaxed_order', true)`
			if _, err := tx.Exec(ctx, set, strconv.Itoa(v.probes(dims))); err != nil {
				return err
			}
		}
		var err error
		hits, err = queryHits(ctx, tx, sql, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: vector search: %w", err)
	}
	return hits, nil
}

// TextSearch implements vectorstore.Searcher: chunks whose tsvector
// matches any term, ranked by ts_rank_cd.
func (v *VectorDB) TextSearch(ctx context.Context, q vectorstore.TextQuery) ([]vectorstore.Hit, error) {
	if len(q.Terms) == 0 || len(q.StoreIDs) == 0 {
		return nil, nil
	}
	// Terms are runs of letters and digits (vectorstore.Terms); quoting
	// each keeps to_tsquery from reading anything in them as syntax.
	quoted := make([]string, len(q.Terms))
	for i, t := range q.Terms {
		quoted[i] = "'" + strings.ReplaceAll(t, "'", "''") + "'"
	}
	args := []any{strings.Join(quoted, " | "), q.StoreIDs}
	filter := filterSQL(q.Filter, &args)
	args = append(args, q.K)
	sql := `SELECT d.id, d.collection_id, d.file_id, d.chunk_index, d.content, f.filename, vf.attributes,
		ts_rank_cd(d.tsv, query)::float8
	FROM documents d CROSS JOIN to_tsquery('simple', $1) query
	JOIN vector_store_files vf ON vf.vector_store_id = d.collection_id AND vf.file_id = d.file_id
	JOIN files f ON f.id = d.file_id
	WHERE d.tsv @@ query AND d.collection_id = ANY($2) AND ` + filter + `
	ORDER BY 8 DESC, d.id LIMIT $` + strconv.Itoa(len(args))
	hits, err := queryHits(ctx, v.pool, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: text search: %w", err)
	}
	return hits, nil
}

func queryHits(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string, args ...any) ([]vectorstore.Hit, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (vectorstore.Hit, error) {
		var h vectorstore.Hit
		var attrs []byte
		if err := row.Scan(&h.ChunkID, &h.StoreID, &h.FileID, &h.ChunkIndex, &h.Content, &h.Filename, &attrs, &h.Score); err != nil {
			return h, err
		}
		return h, json.Unmarshal(attrs, &h.Attributes)
	})
}
