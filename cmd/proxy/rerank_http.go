package main

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
)

// maxRerankDocuments is the most documents one /v1/rerank call takes, the
// limit Cohere, Jina and Voyage share.
const maxRerankDocuments = 1000

// rerankHandler is POST /v1/rerank: Cohere's request shape ({model,
// query, documents, top_n, return_documents}; documents as strings or
// {"text": …} objects) in, {id, model, results[{index, relevance_score,
// document?}], usage} out, through the rerank chain (budget guard, router)
// and into the usage ledger (route "rerank") like an embeddings call.
// Fields beyond those are not forwarded.
func (s *Server) rerankHandler(c *fiber.Ctx) error {
	k, rec, body, err := s.wholeBody(c, routeRerank)
	if err != nil {
		return err
	}
	req, withDocs, err := parseRerankRequest(body)
	if err != nil {
		return err
	}
	if err := s.checkModel(k, req.Model, modelTypeRerank); err != nil {
		return err
	}
	var resp *router.RerankResponse
	err = s.serveWhole(c, k, rec, req.Model, func(ctx context.Context, res *router.Result) (err error) {
		req.Result = res
		resp, err = s.rerank.ServeRerank(ctx, req) // budget, rate limits, router
		return err
	})
	if err != nil {
		return err
	}
	rec.usage = resp.Usage
	out := rerankReply{ID: "rerank-" + string(c.Response().Header.Peek(fiber.HeaderXRequestID)), Model: req.Model,
		Results: make([]rerankResult, len(resp.Results)), Usage: rerankUsage{PromptTokens: rec.result.Usage.PromptTokens}}
	if !rec.result.Settled {
		out.Usage.PromptTokens = resp.Usage.PromptTokens
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens
	for i, r := range resp.Results {
		out.Results[i] = rerankResult{Index: r.Index, Score: r.Score}
		if withDocs {
			out.Results[i].Document = &rerankDoc{Text: req.Documents[r.Index]}
		}
	}
	return c.JSON(out)
}

// rerankReply is /v1/rerank's answer: Cohere's and Jina's shape.
type rerankReply struct {
	ID      string         `json:"id"`
	Model   string         `json:"model"`
	Results []rerankResult `json:"results"`
	Usage   rerankUsage    `json:"usage"`
}

type rerankResult struct {
	Index    int        `json:"index"`
	Score    float64    `json:"relevance_score"`
	Document *rerankDoc `json:"document,omitempty"`
}

type rerankDoc struct {
	Text string `json:"text"`
}

// rerankUsage is what the call was charged: the upstream's count, or the
// tokenizer's when it reported none.
type rerankUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// parseRerankRequest validates a /v1/rerank body; withDocs is
// return_documents.
func parseRerankRequest(body []byte) (*router.RerankRequest, bool, error) {
	var b struct {
		Model           *string           `json:"model"`
		Query           *string           `json:"query"`
		Documents       []json.RawMessage `json:"documents"`
		TopN            *int              `json:"top_n"`
		ReturnDocuments bool              `json:"return_documents"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, false, &router.Error{Kind: router.KindInvalidRequest, Message: "We could not parse the JSON body of your request: " + err.Error()}
	}
	if err := router.CheckKeys(body, "model", "query", "documents", "top_n", "return_documents"); err != nil {
		return nil, false, err
	}
	invalid := func(param, msg string) error {
		return &router.Error{Kind: router.KindInvalidRequest, Param: param, Message: msg}
	}
	switch {
	case b.Model == nil || *b.Model == "":
		return nil, false, invalid("model", "you must provide a model parameter")
	case b.Query == nil || *b.Query == "":
		return nil, false, invalid("query", "Missing required parameter: 'query'.")
	case len(b.Documents) == 0:
		return nil, false, invalid("documents", "Missing required parameter: 'documents' (a non-empty array).")
	case len(b.Documents) > maxRerankDocuments:
		return nil, false, invalid("documents", "'documents' must have at most "+strconv.Itoa(maxRerankDocuments)+" items.")
	case b.TopN != nil && *b.TopN < 1:
		return nil, false, invalid("top_n", "Invalid 'top_n': expected a positive integer.")
	}
	req := &router.RerankRequest{Model: *b.Model, Query: *b.Query, Documents: make([]string, len(b.Documents))}
	if b.TopN != nil {
		req.TopN = min(*b.TopN, len(b.Documents))
	}
	for i, raw := range b.Documents {
		var d struct {
			Text *string `json:"text"`
		}
		switch {
		case json.Unmarshal(raw, &req.Documents[i]) == nil:
		case json.Unmarshal(raw, &d) == nil && d.Text != nil:
			req.Documents[i] = *d.Text
		default:
			return nil, false, invalid("documents", "Invalid 'documents["+strconv.Itoa(i)+"]': expected a string or an object with a 'text' string.")
		}
	}
	return req, b.ReturnDocuments, nil
}

// rerankAPI is the rerank chain for Go callers (RAG's rerank step): the
// budget guard and the router, as for /v1/rerank, with each call written
// to the usage ledger under route "rerank" for the team in ctx. record is
// bound to the Server once it is built (the chat chain that holds RAG is
// built first).
type rerankAPI struct {
	next   router.RerankHandler
	record func(r *reqRecord, outcome string, took time.Duration)
}

var _ router.RerankHandler = (*rerankAPI)(nil)

// ServeRerank implements router.RerankHandler.
func (a *rerankAPI) ServeRerank(ctx context.Context, req *router.RerankRequest) (*router.RerankResponse, error) {
	start := time.Now()
	req, _ = req.WithResult()
	resp, err := a.next.ServeRerank(ctx, req)
	id, _ := router.IdentityFrom(ctx)
	r := &reqRecord{requestID: router.RequestID(ctx), route: routeRerank, model: req.Model, team: id.Team, keyID: id.KeyID,
		start: start, status: 200, result: *req.Result}
	r.fill()
	outcome := "ok"
	if err != nil {
		e := router.AsError(err)
		outcome, r.status = e.Kind.String(), e.StatusCode()
	} else {
		r.usage = resp.Usage
	}
	a.record(r, outcome, time.Since(start))
	return resp, err
}

// countedRerank fills in the usage of a rerank reply whose upstream
// reported none (Cohere bills search units, not tokens): what the
// reranker read, counted with the tokenizer and marked estimated, so the
// ledger and the budget charge the call by its input like any other.
type countedRerank struct {
	next  router.RerankHandler
	count func(model, text string) int
}

func (c countedRerank) ServeRerank(ctx context.Context, req *router.RerankRequest) (*router.RerankResponse, error) {
	resp, err := c.next.ServeRerank(ctx, req)
	if err != nil || resp.Usage.PromptTokens > 0 {
		return resp, err
	}
	n := c.count(req.Model, req.Query) * len(req.Documents)
	for _, d := range req.Documents {
		n += c.count(req.Model, d)
	}
	resp.Usage = router.Usage{PromptTokens: n, TotalTokens: n, Estimated: true}
	return resp, nil
}
