package openai

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"llmproxy/router"
)

// maxRerankBody bounds a rerank reply: an index and a score per document
// (1000 at most upstream), plus the documents when a server echoes them.
const maxRerankBody = 32 << 20

var _ router.Reranker = (*Client)(nil)

// Rerank calls {base_url}/rerank, the API Cohere (v2), Jina, Voyage and
// vLLM share: {model, query, documents, top_n} in, results[{index,
// relevance_score}] out. The upstream's ranking is sorted again and cut to
// TopN here, so a server that ignores top_n (Voyage spells it top_k) still
// answers with TopN results.
func (c *Client) Rerank(ctx context.Context, req *router.RerankRequest) (*router.RerankResponse, error) {
	if c.needsKey {
		return nil, c.up.MissingKey()
	}
	call := c.up.Start(ctx, 0)
	resp, err := call.Post(c.endpoint(c.rerankURL, "/rerank", req.Target.Model), rerankBody(req), false)
	if err != nil {
		return nil, err
	}
	body, err := call.Read(resp, maxRerankBody)
	if err != nil {
		return nil, err
	}
	if e := router.TopField(body, "error"); isObject(e) {
		return nil, c.eventError(e)
	}
	out, err := parseRerank(body, len(req.Documents), req.TopN)
	if err != nil {
		return nil, c.up.Malformed("rerank reply", err)
	}
	return out, nil
}

// rerankBody is the upstream request. Documents go as strings, the form
// every vendor of this API takes.
func rerankBody(req *router.RerankRequest) []byte {
	b, _ := json.Marshal(struct {
		Model     string   `json:"model"`
		Query     string   `json:"query"`
		Documents []string `json:"documents"`
		TopN      int      `json:"top_n,omitempty"`
	}{req.Target.Model, req.Query, req.Documents, req.TopN})
	return b
}

// wireRerank is the reply of every vendor of the API: results (Cohere,
// Jina, vLLM) or data (Voyage), and the input's token count in usage
// (Jina, Voyage, vLLM) or meta (Cohere).
type wireRerank struct {
	Results []router.Ranked `json:"results"`
	Data    []router.Ranked `json:"data"`
	Usage   struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
	Meta struct {
		Tokens struct {
			InputTokens float64 `json:"input_tokens"`
		} `json:"tokens"`
		BilledUnits struct {
			InputTokens float64 `json:"input_tokens"`
		} `json:"billed_units"`
	} `json:"meta"`
}

// parseRerank decodes a rerank reply for n documents, checks every index
// and score, and returns the ranking best first (ties by index), cut to
// topN when positive.
func parseRerank(body []byte, n, topN int) (*router.RerankResponse, error) {
	var w wireRerank
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	res := w.Results
	if res == nil {
		res = w.Data
	}
	if res == nil {
		return nil, errors.New("no results")
	}
	seen := make([]bool, n)
	for _, r := range res {
		if r.Index < 0 || r.Index >= n || seen[r.Index] {
			return nil, fmt.Errorf("result index %d out of range or repeated (%d documents)", r.Index, n)
		}
		if math.IsNaN(r.Score) || math.IsInf(r.Score, 0) {
			return nil, errors.New("result score is not a number")
		}
		seen[r.Index] = true
	}
	slices.SortStableFunc(res, func(a, b router.Ranked) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return a.Index - b.Index
	})
	if topN > 0 && len(res) > topN {
		res = res[:topN]
	}
	tokens := w.Usage.PromptTokens
	for _, t := range []int{w.Usage.TotalTokens, int(w.Meta.Tokens.InputTokens), int(w.Meta.BilledUnits.InputTokens)} {
		if tokens <= 0 {
			tokens = t
		}
	}
	out := &router.RerankResponse{Results: res}
	if tokens > 0 {
		out.Usage = router.Usage{PromptTokens: tokens, TotalTokens: tokens}
	}
	return out, nil
}
