package budget

import (
	"context"
	"errors"
	"math"
	"testing"

	"llmproxy/router"
)

// TestRerankAdmission: a rerank call reserves what a cross-encoder reads
// (the query once per document plus the documents), is refused whole with
// insufficient_quota when that does not fit, and settles to the
// upstream's usage, else to the count, marked estimated.
func TestRerankAdmission(t *testing.T) {
	q, docs := "one two three", []string{"one two three", "one two three four"} // 3×2 + 3 + 4 = 13 tokens
	for _, tc := range []struct {
		name     string
		budget   int64 // tokens
		reported int
		want     int // tokens charged; -1: refused
		estimate bool
	}{
		{"fits, upstream reports", 100, 11, 11, false},
		{"fits, no report", 100, 0, 13, true},
		{"does not fit", 12, 11, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			next := router.RerankHandlerFunc(func(_ context.Context, req *router.RerankRequest) (*router.RerankResponse, error) {
				calls++
				if req.PromptTokens != 13 {
					t.Errorf("router told %d tokens; want 13", req.PromptTokens)
				}
				req.Result.Target = router.Target{Provider: "p", Model: "up-rerank"}
				return &router.RerankResponse{Results: []router.Ranked{{Index: 1, Score: 0.5}}, Usage: router.Usage{PromptTokens: tc.reported, TotalTokens: tc.reported}}, nil
			})
			g := mustGuard(t, GuardOptions{
				Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{Tokens: tc.budget, Period: Day}}},
				Models: map[string]ModelPolicy{"r": inputOnly},
			})
			req := &router.RerankRequest{Model: "r", Query: q, Documents: docs, Result: &router.Result{}}
			resp, err := g.Rerank(next).ServeRerank(teamCtx("t", "k"), req)
			if tc.want < 0 {
				var re *router.Error
				if !errors.As(err, &re) || re.Kind != router.KindBudgetExceeded || calls != 0 {
					t.Fatalf("ServeRerank = %v after %d calls; want insufficient_quota before any", err, calls)
				}
				return
			}
			if err != nil || resp.Results[0].Index != 1 {
				t.Fatalf("ServeRerank = %+v, %v; want the ranking", resp, err)
			}
			m := req.Result
			if !m.Settled || m.Usage.PromptTokens != tc.want || m.Estimated != tc.estimate || math.Abs(m.CostUSD-float64(tc.want)/1e6) > 1e-15 {
				t.Errorf("result = %+v; want %d tokens settled at $1/M (estimated %v)", m, tc.want, tc.estimate)
			}
			if s, _ := g.Status(context.Background(), "t"); s.SpentTokens != int64(tc.want) {
				t.Errorf("spent %d tokens; want %d", s.SpentTokens, tc.want)
			}
		})
	}
}

// TestRerankRateLimited: the team's rpm applies to rerank calls too.
func TestRerankRateLimited(t *testing.T) {
	next := router.RerankHandlerFunc(func(context.Context, *router.RerankRequest) (*router.RerankResponse, error) {
		return &router.RerankResponse{}, nil
	})
	g := mustGuard(t, GuardOptions{Teams: map[string]TeamPolicy{"t": {RateLimit: &RateSpec{RPM: 1}}}})
	h := g.Rerank(next)
	if _, err := h.ServeRerank(teamCtx("t", "k"), &router.RerankRequest{Model: "r", Query: "q", Documents: []string{"d"}}); err != nil {
		t.Fatal(err)
	}
	_, err := h.ServeRerank(teamCtx("t", "k"), &router.RerankRequest{Model: "r", Query: "q", Documents: []string{"d"}})
	if e := router.AsError(err); e.Kind != router.KindRateLimited {
		t.Errorf("second call in the minute = %v; want rate_limit_error", err)
	}
}
