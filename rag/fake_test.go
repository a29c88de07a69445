package rag

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"llmproxy/router"
)

// fakeRetriever holds stores in memory: a team's stores by name and id,
// and the hits every search returns (real scoring is not needed here).
type fakeRetriever struct {
	mu      sync.Mutex
	stores  map[string]map[string]string // team → ref (name or id) → id
	hits    []Hit
	err     error // returned by Search
	queries []string
	ctxs    []context.Context
}

func (f *fakeRetriever) ResolveStores(_ context.Context, team string, refs []string) ([]string, error) {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		id, ok := f.stores[team][r]
		if !ok {
			return nil, StoreNotFound(r)
		}
		out = append(out, id)
	}
	return out, nil
}

func (f *fakeRetriever) Search(ctx context.Context, _ string, ids []string, q string, topK int, _ float64) ([]Hit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	f.ctxs = append(f.ctxs, ctx)
	if f.err != nil {
		return nil, f.err
	}
	var out []Hit
	for _, h := range f.hits {
		for _, id := range ids {
			if h.StoreID == id && len(out) < topK {
				out = append(out, h)
			}
		}
	}
	return out, nil
}

func (f *fakeRetriever) searches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queries)
}

// newFakeRetriever: team "t" owns store "handbook" (vs_hb) and "faq"
// (vs_faq); team "other" owns "secret" (vs_secret).
func newFakeRetriever() *fakeRetriever {
	return &fakeRetriever{
		stores: map[string]map[string]string{
			"t":     {"handbook": "vs_hb", "vs_hb": "vs_hb", "faq": "vs_faq", "vs_faq": "vs_faq"},
			"other": {"secret": "vs_secret", "vs_secret": "vs_secret"},
		},
		hits: []Hit{
			{StoreID: "vs_hb", FileID: "file-refunds", Filename: "refunds.md", ChunkIndex: 2, Score: 0.9, Content: "Refunds are paid within 14 days."},
			{StoreID: "vs_hb", FileID: "file-parking", Filename: "parking.md", ChunkIndex: 0, Score: 0.5, Content: "Parking is free on weekends."},
			{StoreID: "vs_faq", FileID: "file-faq", Filename: "faq.md", ChunkIndex: 7, Score: 0.4, Content: "Returns need a receipt."},
			{StoreID: "vs_secret", FileID: "file-secret", Filename: "secret.md", ChunkIndex: 0, Score: 0.99, Content: "The launch code is 1234."},
		},
	}
}

// wordCount is the test's tokenizer: one token per word.
func wordCount(_, text string) int { return len(strings.Fields(text)) }

// fakeNext is the chain inside rag: it records the request it got.
type fakeNext struct {
	mu   sync.Mutex
	reqs []*router.ChatRequest
}

func (f *fakeNext) Serve(_ context.Context, req *router.ChatRequest) (router.Stream, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	return emptyStream{}, nil
}

func (f *fakeNext) last(t *testing.T) *router.ChatRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("the next stage got no request")
	}
	return f.reqs[len(f.reqs)-1]
}

type emptyStream struct{}

func (emptyStream) Next() (*router.Chunk, error) { return nil, io.EOF }
func (emptyStream) Close() error                 { return nil }

// observed records the observer's events.
type observed struct {
	mu       sync.Mutex
	outcomes []string
}

func (o *observed) Retrieval(outcome string, _ time.Duration) {
	o.mu.Lock()
	o.outcomes = append(o.outcomes, outcome)
	o.mu.Unlock()
}

func (o *observed) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.outcomes...)
}

// harness is a RAG with fakes around it.
type harness struct {
	rag  *RAG
	ret  *fakeRetriever
	next *fakeNext
	obs  *observed
	logs *bytes.Buffer
	h    router.Handler
}

func newHarness(t *testing.T, o Options) *harness {
	t.Helper()
	hs := &harness{ret: newFakeRetriever(), next: &fakeNext{}, obs: &observed{}, logs: &bytes.Buffer{}}
	if o.Retriever == nil {
		o.Retriever = hs.ret
	}
	o.Count, o.Observer = wordCount, hs.obs
	o.Log = slog.New(slog.NewJSONHandler(hs.logs, nil))
	r, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs.rag, hs.h = r, r.Middleware()(hs.next)
	return hs
}

func teamCtx(team string) context.Context {
	return router.WithIdentity(context.Background(), router.Identity{Team: team, KeyID: "key_1"})
}

// chat builds a parsed request for body.
func chat(t *testing.T, body string) *router.ChatRequest {
	t.Helper()
	req, err := router.ParseChatRequest([]byte(body))
	if err != nil {
		t.Fatalf("ParseChatRequest(%s): %v", body, err)
	}
	req.Result = &router.Result{}
	return req
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
