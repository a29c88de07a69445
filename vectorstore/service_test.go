package vectorstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"llmproxy/router"
)

// fakeStorage implements the ingestion side of Storage; the rest panics
// (nil embedded interface) if a test reaches it.
type fakeStorage struct {
	Storage
	mu        sync.Mutex
	target    *Target
	startErr  error
	completed []Chunk
	complErr  error
	failed    *FileError
	beatErr   error
	stale     []Stale
	touched   []FileRef
	requeued  []FileRef
	lostRace  map[string]bool
	jobIDs    map[FileRef]int64
}

func (f *fakeStorage) StartIngest(context.Context, FileRef, time.Time) (*Target, error) {
	return f.target, f.startErr
}

func (f *fakeStorage) Heartbeat(context.Context, FileRef, time.Time) error { return f.beatErr }

func (f *fakeStorage) CompleteIngest(_ context.Context, _ FileRef, cs []Chunk, _ int64, _ time.Time) error {
	if f.complErr != nil {
		return f.complErr
	}
	f.completed = cs
	return nil
}

func (f *fakeStorage) FailIngest(_ context.Context, _ FileRef, e FileError, _ time.Time) error {
	f.failed = &e
	return nil
}

func (f *fakeStorage) StaleIngests(context.Context, time.Time, int) ([]Stale, error) {
	return f.stale, nil
}

func (f *fakeStorage) Touch(_ context.Context, r FileRef, _ time.Time) error {
	f.touched = append(f.touched, r)
	return nil
}

func (f *fakeStorage) Requeue(_ context.Context, r FileRef, _ time.Time) (FileRef, bool, error) {
	if f.lostRace[r.FileID] {
		return r, false, nil
	}
	r.Generation++
	f.requeued = append(f.requeued, r)
	return r, true, nil
}

func (f *fakeStorage) SetJobIDs(_ context.Context, refs []FileRef, ids []int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jobIDs == nil {
		f.jobIDs = map[FileRef]int64{}
	}
	for i, r := range refs {
		f.jobIDs[r] = ids[i]
	}
	return nil
}

// fakeEmbedder returns a 2-dimension vector per text, or err.
type fakeEmbedder struct {
	mu     sync.Mutex
	calls  [][]string
	routes []string
	who    []router.Identity
	err    error
	block  chan struct{} // when set, Embed waits for it or ctx
}

func (e *fakeEmbedder) Embed(ctx context.Context, id router.Identity, alias string, texts []string) ([][]float32, *router.Result, error) {
	e.mu.Lock()
	e.calls = append(e.calls, texts)
	e.routes = append(e.routes, router.LedgerRoute(ctx))
	e.who = append(e.who, id)
	e.mu.Unlock()
	if e.block != nil {
		select {
		case <-e.block:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	if e.err != nil {
		return nil, nil, e.err
	}
	out := make([][]float32, len(texts))
	for i := range texts {
		out[i] = []float32{1, float32(len(texts[i]))}
	}
	return out, &router.Result{}, nil
}

// wordChunks is a stand-in chunker: one chunk per MaxTokens words.
func wordChunks(text string, c Chunking) []TextChunk {
	words := strings.Fields(text)
	var out []TextChunk
	for lo := 0; lo < len(words); lo += c.MaxTokens {
		hi := min(lo+c.MaxTokens, len(words))
		out = append(out, TextChunk{Index: len(out), Text: strings.Join(words[lo:hi], " "), Tokens: hi - lo})
	}
	return out
}

func textOnly(_ context.Context, name string, data []byte) (string, error) {
	if name == "panic.txt" {
		panic("parser bug")
	}
	if !strings.HasSuffix(name, ".txt") {
		return "", &FileError{Code: CodeUnsupportedFile, Message: "not text"}
	}
	return string(data), nil
}

func newTestService(t *testing.T, st Storage, emb Embedder) *Service {
	t.Helper()
	s, err := New(Options{Storage: st, Embedder: emb, Parse: textOnly, Chunk: wordChunks,
		CheckChunking: func(Chunking) error { return nil }, EmbeddingModel: "emb", Chunking: Chunking{MaxTokens: 2},
		HeartbeatEvery: 5 * time.Millisecond, StaleAfter: time.Second, MaxFileBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func target(name, data string) *Target {
	return &Target{StoreFile: StoreFile{StoreID: "vs_1", FileID: "file-1", Team: "t", KeyID: "k", Chunking: Chunking{MaxTokens: 2}},
		Filename: name, Data: []byte(data), EmbeddingModel: "emb"}
}

func TestIngest(t *testing.T) {
	ref := FileRef{StoreID: "vs_1", FileID: "file-1", Generation: 1}
	words := strings.Repeat("w ", 2*embedBatch+3) // 3 embedding calls
	budget := &router.Error{Kind: router.KindBudgetExceeded, Message: "Team budget exhausted."}
	upstream := &router.Error{Kind: router.KindUpstream, Message: "Upstream failed."}
	limited := &router.Error{Kind: router.KindRateLimited, Message: "Rate limit."}
	for _, tc := range []struct {
		name     string
		target   *Target
		startErr error
		embedErr error
		complErr error
		last     bool
		wantErr  bool
		wantFail string // last_error code, "" for none
		wantDone int    // chunks completed
	}{
		{"completes", target("a.txt", words), nil, nil, nil, false, false, "", embedBatch + 2},
		{"unsupported file fails for good", target("a.bin", "x"), nil, nil, nil, false, false, CodeUnsupportedFile, 0},
		{"no text is an invalid file", target("a.txt", "  \n"), nil, nil, nil, false, false, CodeInvalidFile, 0},
		{"a parser panic is an invalid file", target("panic.txt", "x"), nil, nil, nil, false, false, CodeInvalidFile, 0},
		{"spent budget fails at once", target("a.txt", "a b"), nil, budget, nil, false, false, CodeRateLimitExceeded, 0},
		{"upstream error is retried", target("a.txt", "a b"), nil, upstream, nil, false, true, "", 0},
		{"upstream error on the last attempt fails", target("a.txt", "a b"), nil, upstream, nil, true, false, CodeServerError, 0},
		{"rate limit on the last attempt", target("a.txt", "a b"), nil, limited, nil, true, false, CodeRateLimitExceeded, 0},
		{"superseded before start", nil, ErrSuperseded, nil, nil, false, false, "", 0},
		{"detached before start", nil, ErrNotFound, nil, nil, false, false, "", 0},
		{"superseded at commit", target("a.txt", "a b"), nil, nil, ErrSuperseded, false, false, "", 0},
		{"database error is retried", target("a.txt", "a b"), nil, nil, errors.New("disk full"), false, true, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStorage{target: tc.target, startErr: tc.startErr, complErr: tc.complErr}
			emb := &fakeEmbedder{err: tc.embedErr}
			err := newTestService(t, st, emb).Ingest(context.Background(), ref, tc.last)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Ingest = %v; want error %v", err, tc.wantErr)
			}
			switch {
			case tc.wantFail == "" && st.failed != nil:
				t.Errorf("file failed with %+v; want not failed", st.failed)
			case tc.wantFail != "" && (st.failed == nil || st.failed.Code != tc.wantFail || st.failed.Message == ""):
				t.Errorf("last_error = %+v; want code %s and a message", st.failed, tc.wantFail)
			}
			if len(st.completed) != tc.wantDone {
				t.Errorf("completed %d chunks; want %d", len(st.completed), tc.wantDone)
			}
			for i, c := range st.completed {
				if c.Index != i || len(c.Embedding) != 2 || c.Embedding[1] != float32(len(c.Content)) {
					t.Errorf("chunk %d = %+v; want its own embedding", i, c)
					break
				}
			}
			for i, r := range emb.routes {
				if r != "ingest" || emb.who[i] != (router.Identity{Team: "t", KeyID: "k"}) {
					t.Errorf("embed call %d: route %q as %+v; want ingest as the attaching team and key", i, r, emb.who[i])
				}
			}
			if tc.wantDone > 0 && len(emb.calls) != 2 {
				t.Errorf("%d embedding calls for %d chunks; want 2 of at most %d", len(emb.calls), tc.wantDone, embedBatch)
			}
		})
	}
}

// TestIngestStopsWhenSuperseded: a heartbeat that finds the file detached
// cancels the embedding calls in flight, and nothing is written.
func TestIngestStopsWhenSuperseded(t *testing.T) {
	st := &fakeStorage{target: target("a.txt", "a b c"), beatErr: ErrSuperseded}
	emb := &fakeEmbedder{block: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- newTestService(t, st, emb).Ingest(context.Background(), FileRef{Generation: 1}, false) }()
	select {
	case err := <-done:
		if err != nil || st.failed != nil || st.completed != nil {
			t.Errorf("Ingest = %v, failed %+v, completed %d; want a quiet nil", err, st.failed, len(st.completed))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ingest still embedding after its file was superseded")
	}
}

type fakeQueue struct {
	waiting  map[int64]bool
	enqueued []FileRef
}

func (q *fakeQueue) Enqueue(_ context.Context, refs []FileRef) ([]int64, error) {
	q.enqueued = append(q.enqueued, refs...)
	ids := make([]int64, len(refs))
	for i := range ids {
		ids[i] = int64(100 + len(q.enqueued) + i)
	}
	return ids, nil
}

func (q *fakeQueue) Waiting(_ context.Context, id int64) (bool, error) { return q.waiting[id], nil }

func TestReconcile(t *testing.T) {
	ref := func(f string) FileRef { return FileRef{StoreID: "vs", FileID: f, Generation: 1} }
	st := &fakeStorage{stale: []Stale{
		{FileRef: ref("queued"), JobID: 1},    // still waiting for a worker
		{FileRef: ref("dead"), JobID: 2},      // its process died mid-run
		{FileRef: ref("lost")},                // never got a job
		{FileRef: ref("raced"), JobID: 3},     // another replica requeued it first
		{FileRef: ref("killer"), Requeues: 3}, // died with its process 3 times
	}, lostRace: map[string]bool{"raced": true}}
	q := &fakeQueue{waiting: map[int64]bool{1: true}}
	s := newTestService(t, st, &fakeEmbedder{})
	s.SetQueue(q)
	n, err := s.Reconcile(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("Reconcile = %d, %v; want 2 requeued", n, err)
	}
	if len(st.touched) != 1 || st.touched[0].FileID != "queued" {
		t.Errorf("touched %v; want the queued one", st.touched)
	}
	if len(q.enqueued) != 2 || q.enqueued[0] != (FileRef{"vs", "dead", 2}) || q.enqueued[1] != (FileRef{"vs", "lost", 2}) {
		t.Errorf("enqueued %v; want dead and lost at generation 2", q.enqueued)
	}
	if st.jobIDs[FileRef{"vs", "dead", 2}] == 0 {
		t.Errorf("job ids not recorded: %v", st.jobIDs)
	}
	if st.failed == nil || st.failed.Code != CodeServerError || !strings.Contains(st.failed.Message, "interrupted 4 times") {
		t.Errorf("the file that died 3 times: last_error %+v; want it failed as interrupted", st.failed)
	}
}

func TestStatuses(t *testing.T) {
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		b    Batch
		want string
	}{
		{Batch{FileCounts: FileCounts{InProgress: 1, Completed: 1, Total: 2}}, StatusInProgress},
		{Batch{FileCounts: FileCounts{Completed: 1, Failed: 1, Total: 2}}, StatusCompleted},
		{Batch{FileCounts: FileCounts{Failed: 2, Total: 2}}, StatusFailed},
		{Batch{Cancelled: true, FileCounts: FileCounts{InProgress: 1, Total: 1}}, StatusCancelled},
		{Batch{}, StatusCompleted},
	} {
		if got := tc.b.Status(); got != tc.want {
			t.Errorf("Batch%+v.Status() = %s; want %s", tc.b.FileCounts, got, tc.want)
		}
	}
	for _, tc := range []struct {
		s    Store
		want string
	}{
		{Store{FileCounts: FileCounts{InProgress: 1, Total: 1}, LastActiveAt: now}, StatusInProgress},
		{Store{FileCounts: FileCounts{Failed: 1, Total: 1}, LastActiveAt: now}, StatusCompleted},
		{Store{ExpiresAfterDays: 1, LastActiveAt: now.Add(-25 * time.Hour)}, StatusExpired},
		{Store{ExpiresAfterDays: 1, LastActiveAt: now.Add(-23 * time.Hour), FileCounts: FileCounts{InProgress: 1}}, StatusInProgress},
	} {
		if got := tc.s.Status(now); got != tc.want {
			t.Errorf("Store%+v.Status() = %s; want %s", tc.s.FileCounts, got, tc.want)
		}
	}
}
