package sqlite

import (
	"cmp"
	"container/heap"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	"llmproxy/vectorstore"
)

// Vector search on SQLite is exact: every chunk's embedding of the stores
// searched is compared with the query (cosine similarity), over vectors
// kept in memory (DEPS.md: 100k × 384 dimensions in about 20 ms on two
// cores; a scan over the blobs in SQLite would read them all per query).
// A store's vectors are loaded on its first search and then kept current
// file by file as chunks are written (a completed ingestion puts its
// file's vectors in, a detach or delete takes them out), so searching
// while files are ingested does not reload the store. Attributes are kept
// per file: a filter is one test per file. Above a few 100k chunks, use
// PostgreSQL.

// fileVecs is one attached file's chunks, normalised to unit length.
type fileVecs struct {
	attrs map[string]any
	ids   []int64
	vecs  [][]float32
}

// storeVecs is one store's files. It is never changed once published: a
// write builds a new one (copying the map, not the vectors).
type storeVecs struct {
	files map[string]*fileVecs
}

// vecCache holds storeVecs by store id. version counts a store's writes,
// so a load that raced with one is not kept.
type vecCache struct {
	mu      sync.Mutex
	stores  map[string]*storeVecs
	version map[string]uint64
}

func newVecCache() vecCache {
	return vecCache{stores: map[string]*storeVecs{}, version: map[string]uint64{}}
}

// update applies f to a copy of storeID's files, if they are loaded.
func (c *vecCache) update(storeID string, f func(files map[string]*fileVecs)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version[storeID]++
	sv := c.stores[storeID]
	if sv == nil {
		return
	}
	files := make(map[string]*fileVecs, len(sv.files)+1)
	for k, v := range sv.files {
		files[k] = v
	}
	f(files)
	c.stores[storeID] = &storeVecs{files: files}
}

// drop forgets storeID (deleted).
func (c *vecCache) drop(storeID string) {
	c.mu.Lock()
	delete(c.stores, storeID)
	c.version[storeID]++
	c.mu.Unlock()
}

// setFile puts a file's completed chunks in.
func (c *vecCache) setFile(storeID, fileID string, fv *fileVecs) {
	c.update(storeID, func(files map[string]*fileVecs) { files[fileID] = fv })
}

// removeFile takes a detached or deleted file out.
func (c *vecCache) removeFile(storeID, fileID string) {
	c.update(storeID, func(files map[string]*fileVecs) { delete(files, fileID) })
}

// setAttrs replaces a file's attributes.
func (c *vecCache) setAttrs(storeID, fileID string, attrs map[string]any) {
	c.update(storeID, func(files map[string]*fileVecs) {
		if fv := files[fileID]; fv != nil {
			files[fileID] = &fileVecs{attrs: attrs, ids: fv.ids, vecs: fv.vecs}
		}
	})
}

// storeVectors returns storeID's vectors, loading them when they are not
// cached.
func (d *DB) storeVectors(ctx context.Context, storeID string) (*storeVecs, error) {
	c := &d.vecs
	c.mu.Lock()
	sv, v := c.stores[storeID], c.version[storeID]
	c.mu.Unlock()
	if sv != nil {
		return sv, nil
	}
	sv, err := d.loadVectors(ctx, storeID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.version[storeID] == v {
		c.stores[storeID] = sv
	}
	c.mu.Unlock()
	return sv, nil
}

func (d *DB) loadVectors(ctx context.Context, storeID string) (*storeVecs, error) {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	sv := &storeVecs{files: map[string]*fileVecs{}}
	rows, err := tx.QueryContext(ctx, `SELECT file_id, attributes FROM vector_store_files WHERE vector_store_id = ?`, storeID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load attributes: %w", err)
	}
	for rows.Next() {
		var id, attrs string
		fv := &fileVecs{}
		if err := rows.Scan(&id, &attrs); err != nil {
			rows.Close()
			return nil, err
		}
		if err := json.Unmarshal([]byte(attrs), &fv.attrs); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: attributes: %w", err)
		}
		sv.files[id] = fv
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT id, file_id, embedding FROM documents WHERE collection_id = ? ORDER BY file_id, chunk_index`, storeID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load vectors: %w", err)
	}
	defer rows.Close()
	var backing []float32
	for rows.Next() {
		var id int64
		var file string
		var blob []byte
		if err := rows.Scan(&id, &file, &blob); err != nil {
			return nil, err
		}
		fv := sv.files[file]
		if fv == nil || len(blob)%4 != 0 {
			continue
		}
		n := len(blob) / 4
		if cap(backing)-len(backing) < n {
			backing = make([]float32, 0, max(n*1024, 1<<16))
		}
		v := backing[len(backing) : len(backing)+n : len(backing)+n]
		backing = backing[:len(backing)+n]
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(blob[4*i:]))
		}
		normalize(v)
		fv.ids, fv.vecs = append(fv.ids, id), append(fv.vecs, v)
	}
	return sv, rows.Err()
}

// fileVectors is chunks' embeddings, normalised, with their row ids.
func fileVectors(attrs map[string]any, ids []int64, chunks []vectorstore.Chunk) *fileVecs {
	fv := &fileVecs{attrs: attrs, ids: ids, vecs: make([][]float32, len(chunks))}
	for i, c := range chunks {
		v := slices.Clone(c.Embedding)
		normalize(v)
		fv.vecs[i] = v
	}
	return fv
}

func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
}

func dot(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

type scored struct {
	id    int64
	score float32
}

// topK is a min-heap of the best k scores seen.
type topK []scored

func (h topK) Len() int           { return len(h) }
func (h topK) Less(i, j int) bool { return h[i].score < h[j].score }
func (h topK) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *topK) Push(x any)        { *h = append(*h, x.(scored)) }
func (h *topK) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h *topK) offer(k int, s scored) {
	if len(*h) < k {
		heap.Push(h, s)
	} else if s.score > (*h)[0].score {
		(*h)[0] = s
		heap.Fix(h, 0)
	}
}

// parallelAbove is the number of vectors from which a scan is split
// across the CPUs.
const parallelAbove = 16384

// VectorSearch implements vectorstore.Searcher.
func (d *DB) VectorSearch(ctx context.Context, q vectorstore.VectorQuery) ([]vectorstore.Hit, error) {
	qv := slices.Clone(q.Vector)
	normalize(qv)
	var all topK
	for _, id := range q.StoreIDs {
		sv, err := d.storeVectors(ctx, id)
		if err != nil {
			return nil, err
		}
		var parts []*fileVecs
		total := 0
		for _, fv := range sv.files {
			if len(fv.vecs) > 0 && q.Filter.Match(fv.attrs) {
				parts = append(parts, fv)
				total += len(fv.vecs)
			}
		}
		// Split the files across the CPUs when there is enough to do.
		workers := 1
		if total >= parallelAbove {
			workers = min(runtime.GOMAXPROCS(0), len(parts))
		}
		tops := make([]topK, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				h := &tops[w]
				for i := w; i < len(parts); i += workers {
					fv := parts[i]
					for j, v := range fv.vecs {
						if len(v) == len(qv) {
							h.offer(q.K, scored{fv.ids[j], dot(v, qv)})
						}
					}
				}
			})
		}
		wg.Wait()
		for _, t := range tops {
			for _, s := range t {
				all.offer(q.K, s)
			}
		}
	}
	slices.SortFunc(all, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	ids := make([]int64, len(all))
	for i, s := range all {
		ids[i] = s.id
	}
	hits, err := d.hits(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range hits {
		hits[i].Score = float64(all[i].score)
	}
	return hits, nil
}

// hits reads the chunks ids, in that order (ids of chunks deleted
// meanwhile are left out).
func (d *DB) hits(ctx context.Context, ids []int64) ([]vectorstore.Hit, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := d.db.QueryContext(ctx, hitSelect+`, 0.0`+hitFrom+` WHERE d.id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read hits: %w", err)
	}
	defer rows.Close()
	byID := map[int64]vectorstore.Hit{}
	for rows.Next() {
		h, err := scanHit(rows)
		if err != nil {
			return nil, err
		}
		byID[h.ChunkID] = h
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]vectorstore.Hit, 0, len(ids))
	for _, id := range ids {
		if h, ok := byID[id]; ok {
			out = append(out, h)
		}
	}
	return out, nil
}

// hitSelect and hitFrom read a Hit; a rank column goes between them.
const (
	hitSelect = `SELECT d.id, d.collection_id, d.file_id, d.chunk_index, d.content, f.filename, v.attributes`
	hitFrom   = ` FROM documents d
	JOIN vector_store_files v ON v.vector_store_id = d.collection_id AND v.file_id = d.file_id
	JOIN files f ON f.id = d.file_id`
)

func scanHit(rows *sql.Rows) (vectorstore.Hit, error) {
	var h vectorstore.Hit
	var attrs string
	if err := rows.Scan(&h.ChunkID, &h.StoreID, &h.FileID, &h.ChunkIndex, &h.Content, &h.Filename, &attrs, &h.Score); err != nil {
		return h, fmt.Errorf("sqlite: scan hit: %w", err)
	}
	if err := json.Unmarshal([]byte(attrs), &h.Attributes); err != nil {
		return h, fmt.Errorf("sqlite: hit attributes: %w", err)
	}
	return h, nil
}

// TextSearch implements vectorstore.Searcher with FTS5: chunks holding any
// of the terms, ranked by bm25 (Score is -bm25: higher is better). The
// ranking reads only ids and ranks; the K best are joined to their text
// afterwards (a top-N sort carries every column it returns, and reading
// each match's content made a search over 100k chunks several times
// slower). A filter becomes the list of (store, file) pairs that pass it.
func (d *DB) TextSearch(ctx context.Context, q vectorstore.TextQuery) ([]vectorstore.Hit, error) {
	if len(q.Terms) == 0 || len(q.StoreIDs) == 0 {
		return nil, nil
	}
	quoted := make([]string, len(q.Terms))
	for i, t := range q.Terms {
		quoted[i] = `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
	}
	args := []any{strings.Join(quoted, " OR ")}
	for _, id := range q.StoreIDs {
		args = append(args, id)
	}
	files := ""
	if q.Filter != nil {
		pass, err := d.passing(ctx, q.StoreIDs, q.Filter)
		if err != nil || len(pass) == 0 {
			return nil, err
		}
		files = ` AND d.collection_id || '/' || d.file_id IN (` + placeholders(len(pass)) + `)`
		args = append(args, pass...)
	}
	sqlq := `WITH top AS (
		SELECT d.id, bm25(documents_fts) AS r FROM documents_fts JOIN documents d ON d.id = documents_fts.rowid
		WHERE documents_fts MATCH ? AND d.collection_id IN (` + placeholders(len(q.StoreIDs)) + `)` + files + `
		ORDER BY r LIMIT ?)
	` + hitSelect + `, -top.r` + hitFrom + ` JOIN top ON top.id = d.id ORDER BY top.r, d.id`
	rows, err := d.db.QueryContext(ctx, sqlq, append(args, q.K)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: text search: %w", err)
	}
	defer rows.Close()
	var out []vectorstore.Hit
	for rows.Next() {
		h, err := scanHit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// passing lists "store/file" for the files of stores whose attributes
// pass f.
func (d *DB) passing(ctx context.Context, stores []string, f *vectorstore.Filter) ([]any, error) {
	args := make([]any, len(stores))
	for i, s := range stores {
		args[i] = s
	}
	rows, err := d.db.QueryContext(ctx, `SELECT vector_store_id, file_id, attributes FROM vector_store_files
		WHERE vector_store_id IN (`+placeholders(len(stores))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: filter files: %w", err)
	}
	defer rows.Close()
	var out []any
	for rows.Next() {
		var store, file, attrs string
		var m map[string]any
		if err := rows.Scan(&store, &file, &attrs); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(attrs), &m); err != nil {
			return nil, fmt.Errorf("sqlite: attributes: %w", err)
		}
		if f.Match(m) {
			out = append(out, store+"/"+file)
		}
	}
	return out, rows.Err()
}
