// Package vectorstoretest is the suite every vectorstore.Storage passes
// (store/sqlite, store/postgres).
package vectorstoretest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"llmproxy/vectorstore"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func id(prefix string) string {
	return fmt.Sprintf("%s%016x", prefix, rand.Uint64())
}

func mustFile(t *testing.T, st vectorstore.Storage, team, name string, at time.Time) *vectorstore.File {
	t.Helper()
	f := &vectorstore.File{ID: id("file-"), Team: team, Filename: name, Purpose: "assistants", Bytes: 5, CreatedAt: at}
	if err := st.CreateFile(context.Background(), f, []byte("hello")); err != nil {
		t.Fatalf("CreateFile: %v", err)
	}
	return f
}

func mustStore(t *testing.T, st vectorstore.Storage, team, name string) *vectorstore.Store {
	t.Helper()
	s := &vectorstore.Store{ID: id("vs_"), Team: team, Name: name, EmbeddingModel: "emb", CreatedAt: t0, LastActiveAt: t0,
		Metadata: map[string]string{"k": "v"}}
	if err := st.CreateStore(context.Background(), s); err != nil {
		t.Fatalf("CreateStore: %v", err)
	}
	return s
}

// attach attaches files to store and returns their refs.
func attach(t *testing.T, st vectorstore.Storage, team, store string, batch *vectorstore.Batch, attrs []map[string]any, files ...*vectorstore.File) []vectorstore.FileRef {
	t.Helper()
	sfs := make([]vectorstore.StoreFile, len(files))
	for i, f := range files {
		sfs[i] = vectorstore.StoreFile{StoreID: store, FileID: f.ID, Team: team, KeyID: "key1", Status: vectorstore.StatusInProgress,
			Chunking: vectorstore.Chunking{MaxTokens: 500, OverlapTokens: 50}, Attributes: map[string]any{}}
		if attrs != nil {
			sfs[i].Attributes = attrs[i]
		}
		if batch != nil {
			sfs[i].BatchID = batch.ID
		}
	}
	if err := st.AttachFiles(context.Background(), team, store, sfs, batch, t0); err != nil {
		t.Fatalf("AttachFiles: %v", err)
	}
	refs := make([]vectorstore.FileRef, len(sfs))
	for i, f := range sfs {
		refs[i] = vectorstore.FileRef{StoreID: store, FileID: f.FileID, Generation: f.Generation}
	}
	return refs
}

func chunks(vecs [][]float32, texts ...string) []vectorstore.Chunk {
	out := make([]vectorstore.Chunk, len(texts))
	for i, s := range texts {
		out[i] = vectorstore.Chunk{Index: i, Content: s, Tokens: 2, Embedding: vecs[i%len(vecs)]}
	}
	return out
}

func complete(t *testing.T, st vectorstore.Storage, ref vectorstore.FileRef, cs []vectorstore.Chunk) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.StartIngest(ctx, ref, t0); err != nil {
		t.Fatalf("StartIngest: %v", err)
	}
	if err := st.CompleteIngest(ctx, ref, cs, 100, t0); err != nil {
		t.Fatalf("CompleteIngest: %v", err)
	}
}

// Run checks st. Each subtest uses its own rows, so a store may be shared.
func Run(t *testing.T, st vectorstore.Storage) {
	t.Run("files", func(t *testing.T) { testFiles(t, st) })
	t.Run("stores", func(t *testing.T) { testStores(t, st) })
	t.Run("ingestion lifecycle", func(t *testing.T) { testLifecycle(t, st) })
	t.Run("batches", func(t *testing.T) { testBatches(t, st) })
	t.Run("reconcile", func(t *testing.T) { testReconcile(t, st) })
	t.Run("search", func(t *testing.T) { testSearch(t, st) })
	t.Run("isolation", func(t *testing.T) { testIsolation(t, st) })
}

func testFiles(t *testing.T, st vectorstore.Storage) {
	ctx := context.Background()
	team := id("team")
	var ids []string
	for i := range 5 {
		ids = append(ids, mustFile(t, st, team, "f"+strconv.Itoa(i)+".txt", t0.Add(time.Duration(i)*time.Second)).ID)
	}
	got, err := st.GetFile(ctx, team, ids[0])
	if err != nil || got.Filename != "f0.txt" || got.Bytes != 5 || !got.CreatedAt.Equal(t0) {
		t.Fatalf("GetFile = %+v, %v", got, err)
	}
	if b, err := st.FileContent(ctx, team, ids[0]); err != nil || string(b) != "hello" {
		t.Errorf("FileContent = %q, %v", b, err)
	}
	page, err := st.ListFiles(ctx, team, "", vectorstore.Page{Limit: 2, Desc: true})
	if err != nil || len(page) != 2 || page[0].ID != ids[4] || page[1].ID != ids[3] {
		t.Fatalf("ListFiles desc = %v, %v; want the 2 newest", fileIDs(page), err)
	}
	page, err = st.ListFiles(ctx, team, "", vectorstore.Page{Limit: 10, After: ids[1]})
	if err != nil || !slices.Equal(fileIDs(page), ids[2:]) {
		t.Errorf("ListFiles asc after %s = %v, %v; want %v", ids[1], fileIDs(page), err, ids[2:])
	}
	if page, _ := st.ListFiles(ctx, team, "batch", vectorstore.Page{Limit: 10}); len(page) != 0 {
		t.Errorf("ListFiles purpose=batch = %v; want none", fileIDs(page))
	}
	if err := st.DeleteFile(ctx, team, ids[0]); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}
	if _, err := st.GetFile(ctx, team, ids[0]); !errors.Is(err, vectorstore.ErrNotFound) {
		t.Errorf("GetFile after delete: %v; want ErrNotFound", err)
	}
	if _, err := st.FileContent(ctx, team, ids[0]); !errors.Is(err, vectorstore.ErrNotFound) {
		t.Errorf("FileContent after delete: %v; want ErrNotFound", err)
	}
	if err := st.DeleteFile(ctx, team, ids[0]); !errors.Is(err, vectorstore.ErrNotFound) {
		t.Errorf("second DeleteFile: %v; want ErrNotFound", err)
	}
}

func fileIDs(fs []vectorstore.File) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}

func testStores(t *testing.T, st vectorstore.Storage) {
	ctx := context.Background()
	team := id("team")
	a, b := mustStore(t, st, team, "docs"), mustStore(t, st, team, "other")
	got, err := st.GetStore(ctx, team, a.ID)
	if err != nil || got.Name != "docs" || got.EmbeddingModel != "emb" || got.Metadata["k"] != "v" || got.FileCounts != (vectorstore.FileCounts{}) {
		t.Fatalf("GetStore = %+v, %v", got, err)
	}
	found, err := st.FindStores(ctx, team, []string{"docs", b.ID, "nope"})
	if err != nil || len(found) != 2 {
		t.Fatalf("FindStores(name, id) = %d stores, %v; want 2", len(found), err)
	}
	name, md, days := "renamed", map[string]string{"x": "y"}, 7
	up, err := st.UpdateStore(ctx, team, a.ID, vectorstore.StoreUpdate{Name: &name, Metadata: &md, ExpiresAfterDays: &days, At: t0.Add(time.Hour)})
	if err != nil || up.Name != "renamed" || up.Metadata["x"] != "y" || up.ExpiresAfterDays != 7 || !up.LastActiveAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("UpdateStore = %+v, %v", up, err)
	}
	list, err := st.ListStores(ctx, team, vectorstore.Page{Limit: 10, Desc: true})
	if err != nil || len(list) != 2 {
		t.Fatalf("ListStores = %d, %v; want 2", len(list), err)
	}
	f := mustFile(t, st, team, "a.txt", t0)
	refs := attach(t, st, team, b.ID, nil, nil, f)
	complete(t, st, refs[0], chunks([][]float32{{1, 0}}, "x y"))
	if err := st.DeleteStore(ctx, team, b.ID); err != nil {
		t.Fatalf("DeleteStore: %v", err)
	}
	if _, err := st.GetStore(ctx, team, b.ID); !errors.Is(err, vectorstore.ErrNotFound) {
		t.Errorf("GetStore after delete: %v; want ErrNotFound", err)
	}
	if _, err := st.GetFile(ctx, team, f.ID); err != nil {
		t.Errorf("the file went with its store: %v", err)
	}
	if hits, _ := st.TextSearch(ctx, vectorstore.TextQuery{StoreIDs: []string{b.ID}, Terms: []string{"x"}, K: 10}); len(hits) != 0 {
		t.Errorf("chunks of a deleted store still found: %d", len(hits))
	}
}

func testLifecycle(t *testing.T, st vectorstore.Storage) {
	ctx := context.Background()
	team := id("team")
	s := mustStore(t, st, team, "docs")
	f1, f2 := mustFile(t, st, team, "one.txt", t0), mustFile(t, st, team, "two.txt", t0)
	refs := attach(t, st, team, s.ID, nil, nil, f1, f2)
	counts := func(want vectorstore.FileCounts) {
		t.Helper()
		got, err := st.GetStore(ctx, team, s.ID)
		if err != nil || got.FileCounts != want {
			t.Errorf("FileCounts = %+v, %v; want %+v", got.FileCounts, err, want)
		}
	}
	counts(vectorstore.FileCounts{InProgress: 2, Total: 2})
	tg, err := st.StartIngest(ctx, refs[0], t0)
	if err != nil || string(tg.Data) != "hello" || tg.Filename != "one.txt" || tg.EmbeddingModel != "emb" ||
		tg.Team != team || tg.KeyID != "key1" || tg.Chunking.MaxTokens != 500 {
		t.Fatalf("StartIngest = %+v, %v", tg, err)
	}
	v := [][]float32{{1, 0, 0}}
	if err := st.CompleteIngest(ctx, refs[0], chunks(v, "alpha", "beta", "gamma"), 42, t0); err != nil {
		t.Fatalf("CompleteIngest: %v", err)
	}
	// A second completion of the same job (a retry after a lost reply)
	// changes nothing.
	if err := st.CompleteIngest(ctx, refs[0], chunks(v, "alpha", "beta", "gamma", "delta"), 42, t0); !errors.Is(err, vectorstore.ErrSuperseded) {
		t.Errorf("second CompleteIngest: %v; want ErrSuperseded", err)
	}
	if cs, err := st.StoreChunks(ctx, team, s.ID, f1.ID); err != nil || len(cs) != 3 || cs[2].Content != "gamma" {
		t.Errorf("StoreChunks = %v, %v; want the 3 chunks once", cs, err)
	}
	if err := st.FailIngest(ctx, refs[1], vectorstore.FileError{Code: "invalid_file", Message: "bad"}, t0); err != nil {
		t.Fatalf("FailIngest: %v", err)
	}
	counts(vectorstore.FileCounts{Completed: 1, Failed: 1, Total: 2})
	sf, err := st.GetStoreFile(ctx, team, s.ID, f2.ID)
	if err != nil || sf.Status != vectorstore.StatusFailed || sf.LastError == nil || sf.LastError.Code != "invalid_file" {
		t.Errorf("failed file = %+v, %v", sf, err)
	}
	if got, _ := st.GetStore(ctx, team, s.ID); got.UsageBytes != 42 {
		t.Errorf("UsageBytes = %d; want 42", got.UsageBytes)
	}
	// Attaching again queues the next generation; the old job's result is
	// dropped and the new one replaces the chunks.
	again := attach(t, st, team, s.ID, nil, []map[string]any{{"lang": "en"}}, f1)
	if again[0].Generation != refs[0].Generation+1 {
		t.Fatalf("re-attach generation = %d; want %d", again[0].Generation, refs[0].Generation+1)
	}
	if _, err := st.StartIngest(ctx, refs[0], t0); !errors.Is(err, vectorstore.ErrSuperseded) {
		t.Errorf("StartIngest of the old generation: %v; want ErrSuperseded", err)
	}
	complete(t, st, again[0], chunks(v, "only"))
	if cs, _ := st.StoreChunks(ctx, team, s.ID, f1.ID); len(cs) != 1 || cs[0].Content != "only" {
		t.Errorf("chunks after re-ingestion = %v; want [only]", cs)
	}
	if err := st.DetachFile(ctx, team, s.ID, f1.ID, t0); err != nil {
		t.Fatalf("DetachFile: %v", err)
	}
	if _, err := st.StoreChunks(ctx, team, s.ID, f1.ID); !errors.Is(err, vectorstore.ErrNotFound) {
		t.Errorf("StoreChunks after detach: %v; want ErrNotFound", err)
	}
	if err := st.CompleteIngest(ctx, again[0], nil, 0, t0); !errors.Is(err, vectorstore.ErrNotFound) {
		t.Errorf("CompleteIngest after detach: %v; want ErrNotFound", err)
	}
	counts(vectorstore.FileCounts{Failed: 1, Total: 1})
	// Deleting a file removes its attachments.
	if err := st.DeleteFile(ctx, team, f2.ID); err != nil {
		t.Fatal(err)
	}
	counts(vectorstore.FileCounts{})
	err = st.AttachFiles(ctx, team, s.ID, []vectorstore.StoreFile{{StoreID: s.ID, FileID: f2.ID, Team: team, Attributes: map[string]any{}}}, nil, t0)
	if !errors.Is(err, vectorstore.ErrNotFound) {
		t.Errorf("AttachFiles of a deleted file: %v; want ErrNotFound", err)
	}
}

func testBatches(t *testing.T, st vectorstore.Storage) {
	ctx := context.Background()
	team := id("team")
	s := mustStore(t, st, team, "docs")
	f1, f2, f3 := mustFile(t, st, team, "1.txt", t0), mustFile(t, st, team, "2.txt", t0), mustFile(t, st, team, "3.txt", t0)
	b := &vectorstore.Batch{ID: id("vsfb_"), StoreID: s.ID, Team: team, CreatedAt: t0}
	refs := attach(t, st, team, s.ID, b, nil, f1, f2)
	attach(t, st, team, s.ID, nil, nil, f3)
	complete(t, st, refs[0], chunks([][]float32{{1}}, "x"))
	got, err := st.GetBatch(ctx, team, s.ID, b.ID)
	if err != nil || got.FileCounts != (vectorstore.FileCounts{InProgress: 1, Completed: 1, Total: 2}) || got.Status() != vectorstore.StatusInProgress {
		t.Fatalf("GetBatch = %+v, %v", got, err)
	}
	files, err := st.ListStoreFiles(ctx, team, s.ID, vectorstore.StoreFileQuery{Page: vectorstore.Page{Limit: 10}, BatchID: b.ID})
	if err != nil || len(files) != 2 {
		t.Errorf("ListStoreFiles(batch) = %d, %v; want 2", len(files), err)
	}
	files, err = st.ListStoreFiles(ctx, team, s.ID, vectorstore.StoreFileQuery{Page: vectorstore.Page{Limit: 10}, Status: vectorstore.StatusInProgress})
	if err != nil || len(files) != 2 {
		t.Errorf("ListStoreFiles(in_progress) = %d, %v; want 2", len(files), err)
	}
	got, err = st.CancelBatch(ctx, team, s.ID, b.ID, t0)
	if err != nil || !got.Cancelled || got.FileCounts != (vectorstore.FileCounts{Cancelled: 1, Completed: 1, Total: 2}) || got.Status() != vectorstore.StatusCancelled {
		t.Fatalf("CancelBatch = %+v, %v", got, err)
	}
	if err := st.CompleteIngest(ctx, refs[1], chunks([][]float32{{1}}, "late"), 1, t0); !errors.Is(err, vectorstore.ErrSuperseded) {
		t.Errorf("CompleteIngest of a cancelled file: %v; want ErrSuperseded", err)
	}
	if err := st.Heartbeat(ctx, refs[1], t0); !errors.Is(err, vectorstore.ErrSuperseded) {
		t.Errorf("Heartbeat of a cancelled file: %v; want ErrSuperseded", err)
	}
	if _, err := st.GetBatch(ctx, team, s.ID, "vsfb_nope"); !errors.Is(err, vectorstore.ErrNotFound) {
		t.Errorf("GetBatch(unknown): %v", err)
	}
	page, err := st.ListStoreFiles(ctx, team, s.ID, vectorstore.StoreFileQuery{Page: vectorstore.Page{Limit: 1}})
	if err != nil || len(page) != 1 {
		t.Fatalf("ListStoreFiles limit 1 = %d, %v", len(page), err)
	}
	rest, err := st.ListStoreFiles(ctx, team, s.ID, vectorstore.StoreFileQuery{Page: vectorstore.Page{Limit: 10, After: page[0].FileID}})
	if err != nil || len(rest) != 2 || slices.ContainsFunc(rest, func(f vectorstore.StoreFile) bool { return f.FileID == page[0].FileID }) {
		t.Errorf("ListStoreFiles after %s = %d, %v; want the other 2", page[0].FileID, len(rest), err)
	}
}

func testReconcile(t *testing.T, st vectorstore.Storage) {
	ctx := context.Background()
	team := id("team")
	s := mustStore(t, st, team, "docs")
	f1, f2 := mustFile(t, st, team, "1.txt", t0), mustFile(t, st, team, "2.txt", t0)
	refs := attach(t, st, team, s.ID, nil, nil, f1, f2) // heartbeat t0
	if err := st.SetJobIDs(ctx, refs, []int64{11, 12}); err != nil {
		t.Fatal(err)
	}
	if err := st.Heartbeat(ctx, refs[1], t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	stale, err := st.StaleIngests(ctx, t0.Add(time.Minute), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var mine []vectorstore.Stale
	for _, x := range stale {
		if x.StoreID == s.ID {
			mine = append(mine, x)
		}
	}
	if len(mine) != 1 || mine[0].FileRef != refs[0] || mine[0].JobID != 11 || mine[0].Requeues != 0 {
		t.Fatalf("StaleIngests = %+v; want %v with job 11, never requeued", mine, refs[0])
	}
	next, ok, err := st.Requeue(ctx, refs[0], t0.Add(time.Hour))
	if err != nil || !ok || next.Generation != refs[0].Generation+1 {
		t.Fatalf("Requeue = %+v, %v, %v", next, ok, err)
	}
	// A replica that saw the same stale row loses the race.
	if _, ok, err := st.Requeue(ctx, refs[0], t0.Add(time.Hour)); ok || err != nil {
		t.Errorf("second Requeue = %v, %v; want not ok", ok, err)
	}
	if stale, _ := st.StaleIngests(ctx, t0.Add(61*time.Minute), 1000); !slices.ContainsFunc(stale, func(x vectorstore.Stale) bool {
		return x.FileRef == next && x.Requeues == 1 && x.JobID == 0
	}) {
		t.Errorf("StaleIngests after Requeue = %+v; want %v requeued once, without a job", stale, next)
	}
	if err := st.Touch(ctx, next, t0.Add(2*time.Hour)); err != nil {
		t.Errorf("Touch: %v", err)
	}
	if stale, _ := st.StaleIngests(ctx, t0.Add(30*time.Minute), 1000); slices.ContainsFunc(stale, func(x vectorstore.Stale) bool { return x.StoreID == s.ID }) {
		t.Errorf("StaleIngests after Requeue and Touch still lists the store's files: %+v", stale)
	}
}

// unit returns a unit vector of dims dimensions along axis a, tilted by e
// towards axis b.
func unit(dims, a, b int, e float32) []float32 {
	v := make([]float32, dims)
	v[a], v[b] = 1, e
	return v
}

func testSearch(t *testing.T, st vectorstore.Storage) {
	ctx := context.Background()
	team := id("team")
	s, other := mustStore(t, st, team, "docs"), mustStore(t, st, team, "other")
	f1, f2, f3 := mustFile(t, st, team, "en.txt", t0), mustFile(t, st, team, "de.txt", t0), mustFile(t, st, team, "x.txt", t0)
	refs := attach(t, st, team, s.ID, nil, []map[string]any{{"lang": "en", "year": 2024.0}, {"lang": "de", "year": 2020.0}}, f1, f2)
	oref := attach(t, st, team, other.ID, nil, nil, f3)
	const dims = 8
	complete(t, st, refs[0], []vectorstore.Chunk{
		{Index: 0, Content: "the quick brown fox", Embedding: unit(dims, 0, 1, 0.1)},
		{Index: 1, Content: "quarterly revenue report", Embedding: unit(dims, 2, 1, 0)},
	})
	complete(t, st, refs[1], []vectorstore.Chunk{
		{Index: 0, Content: "der schnelle braune fuchs", Embedding: unit(dims, 0, 1, 0.5)},
	})
	complete(t, st, oref[0], []vectorstore.Chunk{{Index: 0, Content: "fox in another store", Embedding: unit(dims, 0, 1, 0)}})

	hits, err := st.VectorSearch(ctx, vectorstore.VectorQuery{StoreIDs: []string{s.ID}, Vector: unit(dims, 0, 1, 0), K: 10})
	if err != nil || len(hits) != 3 {
		t.Fatalf("VectorSearch = %d hits, %v; want 3", len(hits), err)
	}
	if hits[0].Content != "the quick brown fox" || hits[1].Content != "der schnelle braune fuchs" || hits[0].Score < 0.99 || hits[0].Score > 1.0001 {
		t.Errorf("VectorSearch order = %q %q (score %v); want the fox nearest", hits[0].Content, hits[1].Content, hits[0].Score)
	}
	if h := hits[0]; h.Filename != "en.txt" || h.FileID != f1.ID || h.StoreID != s.ID || h.ChunkIndex != 0 || h.Attributes["lang"] != "en" {
		t.Errorf("hit = %+v", h)
	}
	if hits[2].Score > 0.01 {
		t.Errorf("orthogonal chunk scores %v; want about 0", hits[2].Score)
	}
	de, _ := vectorstore.ParseFilter([]byte(`{"type":"eq","key":"lang","value":"de"}`))
	hits, err = st.VectorSearch(ctx, vectorstore.VectorQuery{StoreIDs: []string{s.ID}, Vector: unit(dims, 0, 1, 0), Filter: de, K: 10})
	if err != nil || len(hits) != 1 || hits[0].FileID != f2.ID {
		t.Errorf("VectorSearch lang=de = %d hits, %v; want the German file only", len(hits), err)
	}
	hits, err = st.VectorSearch(ctx, vectorstore.VectorQuery{StoreIDs: []string{s.ID}, Vector: unit(dims, 0, 1, 0), K: 1})
	if err != nil || len(hits) != 1 || hits[0].Content != "the quick brown fox" {
		t.Errorf("VectorSearch K=1 = %v, %v", hits, err)
	}

	text, err := st.TextSearch(ctx, vectorstore.TextQuery{StoreIDs: []string{s.ID}, Terms: []string{"fox", "revenue"}, K: 10})
	if err != nil || len(text) != 2 {
		t.Fatalf("TextSearch fox|revenue = %d hits, %v; want 2 (not the other store's fox)", len(text), err)
	}
	both, err := st.TextSearch(ctx, vectorstore.TextQuery{StoreIDs: []string{s.ID, other.ID}, Terms: []string{"fox"}, K: 10})
	if err != nil || len(both) != 2 {
		t.Errorf("TextSearch over two stores = %d hits, %v; want 2", len(both), err)
	}
	recent, _ := vectorstore.ParseFilter([]byte(`{"type":"and","filters":[{"type":"gte","key":"year","value":2021},{"type":"in","key":"lang","value":["en","fr"]}]}`))
	text, err = st.TextSearch(ctx, vectorstore.TextQuery{StoreIDs: []string{s.ID}, Terms: []string{"fox", "fuchs", "revenue"}, Filter: recent, K: 10})
	if err != nil || len(text) != 2 || text[0].FileID != f1.ID || text[1].FileID != f1.ID {
		t.Errorf("TextSearch with filter = %+v, %v; want the 2 English chunks", text, err)
	}
	// New attributes apply to the chunks at once.
	if _, err := st.UpdateAttributes(ctx, team, s.ID, f2.ID, map[string]any{"lang": "en", "year": 2025.0}); err != nil {
		t.Fatal(err)
	}
	hits, err = st.VectorSearch(ctx, vectorstore.VectorQuery{StoreIDs: []string{s.ID}, Vector: unit(dims, 0, 1, 0), Filter: recent, K: 10})
	if err != nil || len(hits) != 3 {
		t.Errorf("VectorSearch after attribute update = %d hits, %v; want 3", len(hits), err)
	}
	if err := st.DetachFile(ctx, team, s.ID, f1.ID, t0); err != nil {
		t.Fatal(err)
	}
	hits, _ = st.VectorSearch(ctx, vectorstore.VectorQuery{StoreIDs: []string{s.ID}, Vector: unit(dims, 0, 1, 0), K: 10})
	text, _ = st.TextSearch(ctx, vectorstore.TextQuery{StoreIDs: []string{s.ID}, Terms: []string{"fox"}, K: 10})
	if len(hits) != 1 || len(text) != 0 {
		t.Errorf("after detach: %d vector hits, %d text hits; want 1 and 0", len(hits), len(text))
	}
	// Chunks completed after a search are found by the next one.
	back := attach(t, st, team, s.ID, nil, []map[string]any{{"lang": "en"}}, f1)
	complete(t, st, back[0], []vectorstore.Chunk{{Index: 0, Content: "a fox came back", Embedding: unit(dims, 0, 1, 0)}})
	hits, _ = st.VectorSearch(ctx, vectorstore.VectorQuery{StoreIDs: []string{s.ID}, Vector: unit(dims, 0, 1, 0), K: 1})
	if len(hits) != 1 || hits[0].Content != "a fox came back" {
		t.Errorf("VectorSearch after a new completion = %+v; want the new chunk first", hits)
	}
	// A query of another dimension matches nothing rather than failing.
	if hits, err := st.VectorSearch(ctx, vectorstore.VectorQuery{StoreIDs: []string{s.ID}, Vector: unit(4, 0, 1, 0), K: 10}); err != nil || len(hits) != 0 {
		t.Errorf("VectorSearch with 4 dims = %d, %v; want none", len(hits), err)
	}
}

func testIsolation(t *testing.T, st vectorstore.Storage) {
	ctx := context.Background()
	team, intruder := id("team"), id("intruder")
	s := mustStore(t, st, team, "secret")
	f := mustFile(t, st, team, "s.txt", t0)
	b := &vectorstore.Batch{ID: id("vsfb_"), StoreID: s.ID, Team: team, CreatedAt: t0}
	attach(t, st, team, s.ID, b, nil, f)
	nf := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, vectorstore.ErrNotFound) {
			t.Errorf("%s by another team: %v; want ErrNotFound", what, err)
		}
	}
	_, err := st.GetFile(ctx, intruder, f.ID)
	nf("GetFile", err)
	_, err = st.FileContent(ctx, intruder, f.ID)
	nf("FileContent", err)
	nf("DeleteFile", st.DeleteFile(ctx, intruder, f.ID))
	_, err = st.GetStore(ctx, intruder, s.ID)
	nf("GetStore", err)
	_, err = st.UpdateStore(ctx, intruder, s.ID, vectorstore.StoreUpdate{At: t0})
	nf("UpdateStore", err)
	nf("DeleteStore", st.DeleteStore(ctx, intruder, s.ID))
	_, err = st.GetStoreFile(ctx, intruder, s.ID, f.ID)
	nf("GetStoreFile", err)
	_, err = st.ListStoreFiles(ctx, intruder, s.ID, vectorstore.StoreFileQuery{Page: vectorstore.Page{Limit: 10}})
	nf("ListStoreFiles", err)
	_, err = st.UpdateAttributes(ctx, intruder, s.ID, f.ID, nil)
	nf("UpdateAttributes", err)
	nf("DetachFile", st.DetachFile(ctx, intruder, s.ID, f.ID, t0))
	_, err = st.StoreChunks(ctx, intruder, s.ID, f.ID)
	nf("StoreChunks", err)
	_, err = st.GetBatch(ctx, intruder, s.ID, b.ID)
	nf("GetBatch", err)
	_, err = st.CancelBatch(ctx, intruder, s.ID, b.ID, t0)
	nf("CancelBatch", err)
	nf("AttachFiles to another team's store", st.AttachFiles(ctx, intruder, s.ID, nil, nil, t0))
	mine := mustStore(t, st, intruder, "mine")
	nf("AttachFiles of another team's file", st.AttachFiles(ctx, intruder, mine.ID,
		[]vectorstore.StoreFile{{StoreID: mine.ID, FileID: f.ID, Team: intruder, Attributes: map[string]any{}}}, nil, t0))
	if found, err := st.FindStores(ctx, intruder, []string{s.ID, "secret"}); err != nil || len(found) != 0 {
		t.Errorf("FindStores by another team = %d, %v; want none", len(found), err)
	}
	if fs, _ := st.ListFiles(ctx, intruder, "", vectorstore.Page{Limit: 10}); len(fs) != 0 {
		t.Errorf("ListFiles by another team = %d; want 0", len(fs))
	}
	if _, err := st.GetStore(ctx, team, s.ID); err != nil {
		t.Errorf("the owner lost its store: %v", err)
	}
}

// FilterCases are attribute filters with the attribute sets (JSON) each
// passes and fails: vectorstore tests Filter.Match on them and
// store/postgres its SQL.
var FilterCases = []struct {
	Filter string
	Pass   []string
	Fail   []string
}{
	{`{"type":"eq","key":"lang","value":"en"}`, []string{`{"lang":"en"}`}, []string{`{"lang":"de"}`, `{}`, `{"lang":1}`, `{"lang":true}`}},
	{`{"type":"ne","key":"lang","value":"en"}`, []string{`{"lang":"de"}`, `{}`, `{"lang":1}`}, []string{`{"lang":"en"}`}},
	{`{"type":"eq","key":"n","value":2}`, []string{`{"n":2}`, `{"n":2.0}`}, []string{`{"n":"2"}`, `{"n":3}`, `{}`}},
	{`{"type":"eq","key":"ok","value":true}`, []string{`{"ok":true}`}, []string{`{"ok":false}`, `{"ok":"true"}`, `{}`}},
	{`{"type":"gt","key":"year","value":2020}`, []string{`{"year":2021}`, `{"year":2020.5}`}, []string{`{"year":2020}`, `{"year":"2021"}`, `{}`, `{"year":true}`}},
	{`{"type":"gte","key":"year","value":2020}`, []string{`{"year":2020}`, `{"year":2021}`}, []string{`{"year":2019}`}},
	{`{"type":"lt","key":"year","value":2020}`, []string{`{"year":-1}`}, []string{`{"year":2020}`, `{"year":"1999"}`}},
	{`{"type":"lte","key":"d","value":"2024-06-01"}`, []string{`{"d":"2024-06-01"}`, `{"d":"2024-01-31"}`}, []string{`{"d":"2024-06-02"}`, `{"d":20240101}`, `{}`}},
	{`{"type":"gt","key":"s","value":"B"}`, []string{`{"s":"a"}`, `{"s":"C"}`}, []string{`{"s":"A"}`, `{"s":"B"}`}},
	{`{"type":"in","key":"lang","value":["en","fr",3]}`, []string{`{"lang":"fr"}`, `{"lang":3}`}, []string{`{"lang":"de"}`, `{}`, `{"lang":"3"}`}},
	{`{"type":"nin","key":"lang","value":["en","fr"]}`, []string{`{"lang":"de"}`, `{}`, `{"lang":1}`}, []string{`{"lang":"en"}`}},
	{`{"type":"and","filters":[{"type":"eq","key":"a","value":1},{"type":"or","filters":[{"type":"eq","key":"b","value":"x"},{"type":"gt","key":"c","value":5}]}]}`,
		[]string{`{"a":1,"b":"x"}`, `{"a":1,"c":6}`}, []string{`{"a":1}`, `{"b":"x","c":9}`, `{"a":2,"b":"x"}`}},
	{`{"type":"or","filters":[{"type":"eq","key":"a","value":"it's"},{"type":"eq","key":"we\"ird","value":"\\"}]}`,
		[]string{`{"a":"it's"}`, `{"we\"ird":"\\"}`}, []string{`{"a":"its"}`}},
}
