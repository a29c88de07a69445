package demo

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"
	"unicode"

	"llmproxy/router"
)

var _ router.Reranker = (*Client)(nil)

// maxRerankDocuments is the most documents one call takes, the limit the
// vendors of the API share.
const maxRerankDocuments = 1000

// Rerank ranks the documents lexically: a document's relevance_score is
// the cosine between its word counts and the query's (lowercase letters
// and digits), in [0, 1]; ties keep the input order. Words, not meaning:
// a stand-in for tests and demos, deterministic and offline. Usage counts
// what a cross-encoder reads (Voyage's definition): the query once per
// document plus every document, in o200k_base tokens.
func (c *Client) Rerank(ctx context.Context, req *router.RerankRequest) (*router.RerankResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, router.AsError(err)
	}
	switch {
	case strings.TrimSpace(req.Query) == "":
		return nil, invalid("query", "'query' must not be empty.")
	case len(req.Documents) == 0:
		return nil, invalid("documents", "'documents' must not be empty.")
	case len(req.Documents) > maxRerankDocuments:
		return nil, invalid("documents", "'documents' must have at most 1000 items.")
	}
	q := wordCounts(req.Query)
	qn := length(q)
	out := make([]router.Ranked, len(req.Documents))
	tokens := c.count(req.Query) * len(req.Documents)
	for i, d := range req.Documents {
		tokens += c.count(d)
		dc := wordCounts(d)
		dot := 0.0
		for w, n := range q {
			dot += n * dc[w]
		}
		score := 0.0
		if dn := length(dc); dn > 0 && qn > 0 {
			score = min(dot/(qn*dn), 1)
		}
		out[i] = router.Ranked{Index: i, Score: score}
	}
	slices.SortStableFunc(out, func(a, b router.Ranked) int { return cmp.Compare(b.Score, a.Score) })
	if req.TopN > 0 && len(out) > req.TopN {
		out = out[:req.TopN]
	}
	return &router.RerankResponse{Results: out, Usage: router.Usage{PromptTokens: tokens, TotalTokens: tokens}}, nil
}

// wordCounts counts the words of s.
func wordCounts(s string) map[string]float64 {
	m := map[string]float64{}
	for _, w := range terms(s) {
		m[w]++
	}
	return m
}

// terms are the lowercase runs of letters and digits of s: what the demo
// embeds and reranks by.
func terms(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
}

// length is the Euclidean length of m as a vector.
func length(m map[string]float64) float64 {
	s := 0.0
	for _, v := range m {
		s += v * v
	}
	return math.Sqrt(s)
}
