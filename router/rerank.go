package router

import "context"

// RerankRequest is one rerank call: POST /v1/rerank, or a Go caller's
// (RAG's rerank step). The shape is the one Cohere, Jina, Voyage and vLLM
// share: a query, documents, and how many of the best to return.
type RerankRequest struct {
	// Model is the rerank alias.
	Model string
	// Query is what the documents are ranked against.
	Query string
	// Documents are the texts to rank.
	Documents []string
	// TopN is how many of the best to return; 0 returns them all.
	TopN int
	// PromptTokens is the input's token count, set by the first stage that
	// counts it (the budget guard); 0 means not counted.
	PromptTokens int
	// Target is the deployment of the current attempt, set by the router
	// for the provider.
	Target Target
	// Result is where the stages report, as on ChatRequest.
	Result *Result
}

// RerankResponse is a ranking, best first.
type RerankResponse struct {
	// Results hold at most TopN entries (all when TopN is 0), by
	// descending score; Index points into RerankRequest.Documents.
	Results []Ranked
	// Usage is the upstream's report (input tokens only); zero when it
	// reported none.
	Usage Usage
}

// Ranked is one document's place in a ranking.
type Ranked struct {
	Index int     `json:"index"`
	Score float64 `json:"relevance_score"`
}

// Reranker is a provider that also serves the /v1/rerank API.
type Reranker interface {
	Rerank(ctx context.Context, req *RerankRequest) (*RerankResponse, error)
}

// RerankHandler serves one rerank call: the Router, and the budget guard
// around it.
type RerankHandler interface {
	ServeRerank(ctx context.Context, req *RerankRequest) (*RerankResponse, error)
}

// RerankHandlerFunc adapts a function to a RerankHandler.
type RerankHandlerFunc func(ctx context.Context, req *RerankRequest) (*RerankResponse, error)

// ServeRerank calls f.
func (f RerankHandlerFunc) ServeRerank(ctx context.Context, req *RerankRequest) (*RerankResponse, error) {
	return f(ctx, req)
}

// Rerank routes a rerank call as Embed routes embeddings: the same plan,
// breakers, limiters, cooldowns, retries and fallbacks, no commit point.
// Deployments whose provider cannot rerank are skipped.
func (r *Router) Rerank(ctx context.Context, req *RerankRequest) (*RerankResponse, error) {
	req, res := req.WithResult()
	size := len(req.Query) * len(req.Documents)
	for _, d := range req.Documents {
		size += len(d)
	}
	return routeWhole(r, ctx, wholeCall{alias: req.Model, tokens: req.PromptTokens, body: size, res: res,
		unusable: noRerank, what: "rerank"}, func(ctx context.Context, d *Deployment) (*RerankResponse, *Usage, error) {
		req.Target = Target{Provider: d.Provider, Model: d.Model}
		resp, err := d.Client.(Reranker).Rerank(ctx, req)
		if err != nil {
			return nil, nil, err
		}
		return resp, &resp.Usage, nil
	})
}

// ServeRerank is Rerank.
func (r *Router) ServeRerank(ctx context.Context, req *RerankRequest) (*RerankResponse, error) {
	return r.Rerank(ctx, req)
}

func noRerank(d *Deployment) Skip {
	if _, ok := d.Client.(Reranker); ok {
		return SkipNone
	}
	return SkipNoRerank
}

// WithResult is ChatRequest.WithResult for rerank calls.
func (req *RerankRequest) WithResult() (*RerankRequest, *Result) {
	if req.Result != nil {
		return req, req.Result
	}
	c := *req
	c.Result = &Result{}
	return &c, c.Result
}
