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
	// nn holds ids and distances only; the K nearest are joined to their
	// content after (an exact scan's top-N sort would detoast every
	// chunk's content).
	sql := `WITH nn AS MATERIALIZED (
		SELECT d.id, ` + expr + ` OPERATOR(` + v.ext + `.<=>) $1::` + typ + ` AS dist
		FROM documents d
		WHERE d.dims = ` + strconv.Itoa(dims) + ` AND d.collection_id = ANY($2) AND ` + filter + `
		ORDER BY ` + expr + ` OPERATOR(` + v.ext + `.<=>) $1::` + typ + ` LIMIT $` + strconv.Itoa(len(args)) + `)
	SELECT d.id, d.collection_id, d.file_id, d.chunk_index, d.content, f.filename, vf.attributes, 1 - nn.dist
	FROM nn JOIN documents d ON d.id = nn.id
	JOIN vector_store_files vf ON vf.vector_store_id = d.collection_id AND vf.file_id = d.file_id
	JOIN files f ON f.id = d.file_id
	ORDER BY nn.dist, d.id`
	// One round trip: the index's search settings, local to a read-only
	// transaction, and the query, pipelined.
	var set string
	var setArg string
	switch v.kind {
	case IndexHNSW:
		set = `SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)`
		setArg = strconv.Itoa(min(max(2*q.K, 40), 1000))
	default:
		set = `SELECT set_config('ivfflat.probes', $1, true), set_config('ivfflat.iterative_scan', 'relaxed_order', true)`
		setArg = strconv.Itoa(v.probes(dims))
	}
	hits, err := v.searchTx(ctx, set, setArg, sql, args)
	if err != nil {
		return nil, fmt.Errorf("postgres: vector search: %w", err)
	}
	return hits, nil
}

// TextSearch implements vectorstore.Searcher: chunks whose tsvector
// matches any term, ranked by ts_rank normalised by length (ts_rank_cd's
// cover density took twice as long over 1,800 matches of 100k chunks:
// 30-46 ms against 17-23).
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
	// The tsquery is written in the WHERE clause, not joined in, so that
	// it is an index condition on the GIN index; and collection_id || ''
	// keeps the planner off the btree on collection_id, which it prefers
	// because it does not cost detoasting every tsvector of the store
	// (5000 chunks: 40-80 ms that way, 4 ms through GIN). The ranking
	// reads ids only and the K best are joined to their content after: a
	// top-N sort carries every column it returns, and detoasting each
	// match's content doubled the time.
	sql := `WITH top AS MATERIALIZED (
		SELECT d.id, ts_rank(d.tsv, to_tsquery('simple', $1), 1)::float8 AS r
		FROM documents d
		WHERE d.tsv @@ to_tsquery('simple', $1) AND (d.collection_id || '') = ANY($2) AND ` + filter + `
		ORDER BY r DESC, d.id LIMIT $` + strconv.Itoa(len(args)) + `)
	SELECT d.id, d.collection_id, d.file_id, d.chunk_index, d.content, f.filename, vf.attributes, top.r
	FROM top JOIN documents d ON d.id = top.id
	JOIN vector_store_files vf ON vf.vector_store_id = d.collection_id AND vf.file_id = d.file_id
	JOIN files f ON f.id = d.file_id
	ORDER BY top.r DESC, d.id`
	// Seq scans off as well: the planner does not cost detoasting each
	// chunk's tsvector (about 3 KB, stored out of line), so below some
	// 10,000 chunks it prefers reading them all to the GIN index.
	hits, err := v.searchTx(ctx, `SELECT set_config('enable_seqscan', $1, true)`, "off", sql, args)
	if err != nil {
		return nil, fmt.Errorf("postgres: text search: %w", err)
	}
	return hits, nil
}

// searchTx runs query in a read-only transaction after set (a
// set_config of setArg, local to it), pipelined: one round trip.
func (v *VectorDB) searchTx(ctx context.Context, set, setArg, query string, args []any) ([]vectorstore.Hit, error) {
	var hits []vectorstore.Hit
	b := &pgx.Batch{}
	b.Queue(`BEGIN READ ONLY`)
	b.Queue(set, setArg)
	b.Queue(query, args...).Query(func(rows pgx.Rows) error {
		var err error
		hits, err = collectHits(rows)
		return err
	})
	b.Queue(`COMMIT`)
	if err := v.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return hits, nil
}

func collectHits(rows pgx.Rows) ([]vectorstore.Hit, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (vectorstore.Hit, error) {
		var h vectorstore.Hit
		var attrs []byte
		if err := row.Scan(&h.ChunkID, &h.StoreID, &h.FileID, &h.ChunkIndex, &h.Content, &h.Filename, &attrs, &h.Score); err != nil {
			return h, err
		}
		return h, json.Unmarshal(attrs, &h.Attributes)
	})
}
