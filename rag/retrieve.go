package rag

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"llmproxy/router"
	"llmproxy/telemetry"
)

// errNoRetriever fails retrieval on a server without vector stores.
var errNoRetriever = errors.New("rag: no vector store service is configured")

// augment retrieves for req and adds the references to its body. It
// changes req.Body only after every step that can fail has succeeded.
func (r *RAG) augment(ctx context.Context, req *router.ChatRequest, res *router.Result, set Settings) error {
	msgs, err := req.Messages()
	if err != nil {
		return err
	}
	q := query(msgs)
	if len(q) > MaxQueryTokens { // a token is at least a byte: short queries skip the count
		q = r.tail(req.Model, q, MaxQueryTokens)
	}
	if strings.TrimSpace(q) == "" {
		res.RAG = noResults
		res.Note("rag", "no user message to retrieve for")
		return nil
	}
	hits, err := r.retrieve(ctx, req, res, set, q)
	if err != nil {
		return err
	}
	refs, tokens := r.fit(req.Model, hits, set.MaxContextTokens)
	if len(refs) == 0 {
		res.RAG = noResults
		res.Note("rag", fmt.Sprintf("nothing retrieved above score %g", set.ScoreThreshold))
		return nil
	}
	text, err := render(set.Template, PromptData{Query: q, References: refs})
	if err != nil {
		return err
	}
	body, err := insertSystem(req.Body, msgs, text)
	if err != nil {
		return err
	}
	req.Body = body
	// The guard counts the prompt again, references included.
	req.PromptTokens, req.PromptTokensExact = 0, nil
	res.RAG, res.Sources = used, sources(refs)
	if req.DryRun {
		res.Note("rag", fmt.Sprintf("would add %d references (%d tokens) from %d vector stores; the query's embedding was a real call, charged to the team",
			len(refs), tokens, len(set.VectorStores)))
	}
	return nil
}

// retrieve searches the stores and, with a rerank model, reranks the hits
// down to RerankTopK (not on a dry run, which keeps the best by search
// score instead and says so).
func (r *RAG) retrieve(ctx context.Context, req *router.ChatRequest, res *router.Result, set Settings, q string) ([]Hit, error) {
	if r.o.Retriever == nil {
		return nil, errNoRetriever
	}
	id, _ := router.IdentityFrom(ctx)
	sctx, sp := telemetry.Start(ctx, "rag.retrieve")
	ids, err := r.o.Retriever.ResolveStores(sctx, id.Team, set.VectorStores)
	if err != nil {
		err = fmt.Errorf("rag: resolve stores: %w", err)
		sp.End(err)
		return nil, err
	}
	hits, err := r.o.Retriever.Search(router.WithLedgerRoute(sctx, "rag"), id.Team, ids, q, set.TopK, set.ScoreThreshold)
	if err != nil {
		err = fmt.Errorf("rag: search: %w", err)
		sp.End(err)
		return nil, err
	}
	hits = clean(hits, set)
	sp.SetInt("llmproxy.rag.stores", len(ids))
	sp.SetInt("llmproxy.rag.results", len(hits))
	sp.End(nil)
	if set.RerankModel == "" || len(hits) <= 1 {
		return hits, nil
	}
	if req.DryRun {
		res.Note("rag", fmt.Sprintf("rerank with %s not run on a dry run: the %d best of %d hits by search score are shown",
			set.RerankModel, min(set.RerankTopK, len(hits)), len(hits)))
		return hits[:min(set.RerankTopK, len(hits))], nil
	}
	docs := make([]string, len(hits))
	for i := range hits {
		docs[i] = hits[i].Content
	}
	rctx, rsp := telemetry.Start(ctx, "rag.rerank")
	rr, err := r.o.Rerank.ServeRerank(rctx, &router.RerankRequest{Model: set.RerankModel, Query: q, Documents: docs, TopN: min(set.RerankTopK, len(hits))})
	if err != nil {
		err = fmt.Errorf("rag: rerank: %w", err)
		rsp.End(err)
		return nil, err
	}
	rsp.SetInt("llmproxy.rag.documents", len(docs))
	rsp.SetInt("llmproxy.rag.results", len(rr.Results))
	rsp.End(nil)
	out := make([]Hit, 0, len(rr.Results))
	for _, k := range rr.Results {
		if k.Index >= 0 && k.Index < len(hits) && len(out) < set.RerankTopK {
			h := hits[k.Index]
			h.Score = k.Score
			out = append(out, h)
		}
	}
	return out, nil
}

// clean holds a Retriever to its contract: at most TopK hits, none below
// the threshold, no empty chunk, scores finite.
func clean(hits []Hit, set Settings) []Hit {
	out := hits[:0:0]
	for _, h := range hits {
		if len(out) == set.TopK {
			break
		}
		if strings.TrimSpace(h.Content) == "" || math.IsNaN(h.Score) || h.Score < set.ScoreThreshold {
			continue
		}
		out = append(out, h)
	}
	return out
}
