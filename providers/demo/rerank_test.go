package demo

import (
	"context"
	"testing"

	"llmproxy/router"
)

func TestRerankLexical(t *testing.T) {
	c := New(Config{Name: "demo"})
	docs := []string{
		"The cafeteria opens at eight.",
		"Refunds are paid within 14 days of the return.",
		"Returns need the receipt; refunds go to the original card.",
		"Parking is free on weekends.",
	}
	req := &router.RerankRequest{Query: "How long do refunds take after a return?", Documents: docs, TopN: 2}
	a, err := c.Rerank(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Results) != 2 || a.Results[0].Index != 1 || a.Results[1].Index != 2 {
		t.Fatalf("Rerank() = %+v; want documents 1 then 2", a.Results)
	}
	for _, r := range a.Results {
		if r.Score <= 0 || r.Score > 1 {
			t.Errorf("score %v; want in (0, 1]", r.Score)
		}
	}
	if a.Usage.PromptTokens <= c.count(req.Query)*len(docs) {
		t.Errorf("usage %d tokens; want the query per document plus the documents", a.Usage.PromptTokens)
	}
	b, _ := c.Rerank(context.Background(), req)
	if b.Results[0] != a.Results[0] || b.Results[1] != a.Results[1] {
		t.Errorf("second run %+v differs from the first %+v; want deterministic", b.Results, a.Results)
	}
	all, _ := c.Rerank(context.Background(), &router.RerankRequest{Query: "weekends parking", Documents: docs})
	if len(all.Results) != len(docs) || all.Results[0].Index != 3 || all.Results[3].Score != 0 {
		t.Errorf("top_n 0 = %+v; want all 4, parking first, a zero last", all.Results)
	}
}

func TestRerankInvalid(t *testing.T) {
	c := New(Config{Name: "demo"})
	for _, req := range []*router.RerankRequest{
		{Query: " ", Documents: []string{"a"}},
		{Query: "q"},
		{Query: "q", Documents: make([]string, 1001)},
	} {
		if _, err := c.Rerank(context.Background(), req); router.AsError(err).Kind != router.KindInvalidRequest {
			t.Errorf("Rerank(%q, %d docs) = %v; want invalid_request_error", req.Query, len(req.Documents), err)
		}
	}
}
