package main

import (
	"context"
	"slices"
	"strings"
	"sync"
	"unicode"

	"llmproxy/embed"
	"llmproxy/rag"
	"llmproxy/router"
)

// fakeStores is a rag.Retriever for the end-to-end tests until issue
// 11's vector stores are wired: stores held in memory, a lexical score
// (shared words over the query's words), and the query embedded for real
// through the proxy's embedding service (alias embedAlias), so the
// embedding is admitted, charged and written to the ledger (route "rag")
// as the real store's will be.
type fakeStores struct {
	mu         sync.Mutex
	emb        *embed.Service // set once the proxy is built
	embedAlias string
	stores     map[string]map[string]string // team → name or id → id
	chunks     []rag.Hit
	fail       error // Search fails with it when set
	searches   int
}

var _ rag.Retriever = (*fakeStores)(nil)

func (f *fakeStores) bind(s *embed.Service) {
	f.mu.Lock()
	f.emb = s
	f.mu.Unlock()
}

func (f *fakeStores) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func (f *fakeStores) searched() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.searches
}

func (f *fakeStores) ResolveStores(_ context.Context, team string, refs []string) ([]string, error) {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		id, ok := f.stores[team][r]
		if !ok {
			return nil, rag.StoreNotFound(r)
		}
		out = append(out, id)
	}
	return out, nil
}

func (f *fakeStores) Search(ctx context.Context, _ string, ids []string, q string, topK int, threshold float64) ([]rag.Hit, error) {
	f.mu.Lock()
	emb, fail := f.emb, f.fail
	f.searches++
	f.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	id, _ := router.IdentityFrom(ctx)
	if _, _, err := emb.Embed(ctx, id, f.embedAlias, []string{q}); err != nil {
		return nil, err
	}
	qw := lexWords(q)
	var out []rag.Hit
	for _, c := range f.chunks {
		if !slices.Contains(ids, c.StoreID) {
			continue
		}
		shared := 0
		for w := range lexWords(c.Content) {
			if qw[w] {
				shared++
			}
		}
		if c.Score = float64(shared) / float64(max(len(qw), 1)); c.Score > 0 && c.Score >= threshold {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b rag.Hit) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	return out[:min(len(out), topK)], nil
}

// stopWords are left out of the lexical score.
var stopWords = map[string]bool{"the": true, "a": true, "an": true, "is": true, "do": true, "i": true, "how": true,
	"what": true, "of": true, "to": true, "in": true, "my": true, "are": true, "for": true, "on": true, "get": true, "can": true}

func lexWords(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }) {
		if !stopWords[w] {
			m[w] = true
		}
	}
	return m
}

// handbook is the default team's store: one fact per chunk.
var handbook = []rag.Hit{
	{FileID: "file-vacation", Filename: "vacation.md", ChunkIndex: 0, Content: "Employees get 27 vacation days per year, plus public holidays."},
	{FileID: "file-vacation", Filename: "vacation.md", ChunkIndex: 1, Content: "Unused vacation days carry over until March 31 of the next year."},
	{FileID: "file-expenses", Filename: "expenses.md", ChunkIndex: 0, Content: "Travel expenses are reimbursed within 14 days of submitting the receipt."},
	{FileID: "file-laptop", Filename: "it.md", ChunkIndex: 3, Content: "A lost laptop must be reported to the IT helpdesk within 24 hours."},
	{FileID: "file-parking", Filename: "office.md", ChunkIndex: 2, Content: "Parking in the garage is free for bicycles and costs 5 euros a day for cars."},
}

// newFakeStores: team "default" owns "handbook" (vs_handbook) with the
// handbook chunks; team "other" owns "secrets" (vs_secrets).
func newFakeStores(embedAlias string) *fakeStores {
	f := &fakeStores{embedAlias: embedAlias, stores: map[string]map[string]string{
		"default": {"handbook": "vs_handbook", "vs_handbook": "vs_handbook"},
		"poor":    {"handbook": "vs_handbook"},
		"other":   {"secrets": "vs_secrets", "vs_secrets": "vs_secrets"},
	}}
	for _, c := range handbook {
		c.StoreID = "vs_handbook"
		f.chunks = append(f.chunks, c)
	}
	f.chunks = append(f.chunks, rag.Hit{StoreID: "vs_secrets", FileID: "file-secret", Filename: "secret.md", Content: "The vacation code word is pineapple."})
	return f
}
