package main

import (
	"context"
	"errors"

	"llmproxy/rag"
	"llmproxy/vectorstore"
)

// storeRetriever is RAG's search (rag.Retriever) on the vector stores of
// issue 11: names and vs_ ids resolved among the team's own stores, and
// their hybrid search, whose query embedding is charged to the team.
type storeRetriever struct{ v *vectorStores }

func (r storeRetriever) ResolveStores(ctx context.Context, team string, refs []string) ([]string, error) {
	s, err := r.v.service()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(refs))
	for _, ref := range refs { // one at a time: the 404 names the ref the team does not own
		stores, err := s.ResolveStores(ctx, team, []string{ref})
		if errors.Is(err, vectorstore.ErrNotFound) {
			return nil, rag.StoreNotFound(ref)
		}
		if err != nil {
			return nil, err
		}
		for _, st := range stores {
			ids = append(ids, st.ID)
		}
	}
	return ids, nil
}

// maxSearchResults is the vector-store search's own cap (OpenAI's 50).
const maxSearchResults = 50

func (r storeRetriever) Search(ctx context.Context, team string, storeIDs []string, query string, topK int, scoreThreshold float64) ([]rag.Hit, error) {
	s, err := r.v.service()
	if err != nil {
		return nil, err
	}
	res, err := s.Search(ctx, team, vectorstore.SearchRequest{StoreIDs: storeIDs, Query: query,
		MaxResults: min(topK, maxSearchResults), ScoreThreshold: scoreThreshold})
	if err != nil {
		return nil, err
	}
	hits := make([]rag.Hit, len(res))
	for i, h := range res {
		hits[i] = rag.Hit{StoreID: h.StoreID, FileID: h.FileID, Filename: h.Filename, ChunkIndex: h.ChunkIndex, Score: h.Score, Content: h.Content}
	}
	return hits, nil
}
