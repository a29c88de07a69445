//go:build integration

package main

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmproxy/budget"
)

// withPricedEmbeddings adds embed-priced to a replica's config: input at
// $500 per million tokens on deployment a.
func withPricedEmbeddings(c *Config) {
	c.Models = append(c.Models, ModelConfig{Name: "embed-priced", Type: "embedding",
		Pricing:     &PricingConfig{InputPerMTok: 500},
		Deployments: []DeploymentConfig{{Provider: "a", Model: upstreamEmbed, Weight: 1}}})
}

// TestE2EReplicaMixedBudget: three replicas share a $1.00 budget; 300
// concurrent requests, round-robin, half chat streams of 24 tokens
// ($0.006) and half embeddings of two 3-token inputs ($0.003). Chat and
// embeddings reserve in the same Redis buckets and settle on the same
// path, so the spend in Redis and in the PostgreSQL ledger stays within
// $1.00 plus one chunk, and the two agree.
//
// Not parallel: its 300 requests on top of TestE2EReplicaBudget's 300, on
// two cores under -race, push Reserve past the guard's 1 s Redis op
// timeout and both tests see fail-closed 503s (issue 9's third flake).
func TestE2EReplicaMixedBudget(t *testing.T) {
	if n := budget.NewCounter().Text("embed-priced", embedInput); n != 3 {
		t.Fatalf("the tokenizer counts %q as %d tokens; the test needs the fake's 3", embedInput, n)
	}
	st := mustSharedStores(t)
	up := newFakeUpstream(t)
	up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.URL.Path == "/v1/embeddings" {
			serveEmbeddings(w, body) // 3 prompt tokens per input
			return
		}
		serveChat(w, body, tokenReply(24))
	})
	reps := startReplicas(t, st, 3, up, nil, withPricedEmbeddings)
	const (
		total     = 300
		limit     = 1.00
		tokenCost = 250.0 / 1e6 // one chat chunk: output_per_mtok 250
		embedUSD  = 6 * 500.0 / 1e6
	)
	params := chatParams("gpt-test")
	params.MaxTokens = openai.Int(24)
	// Distinct inputs: the embeddings cache would answer a repeated one
	// for $0, outside the budget.
	inputs := threeTokenInputs(t, total)
	chats := make([]streamResult, total)
	embeds := make([]embedResult, total)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range total {
		c := reps[i%len(reps)].client()
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if i%2 == 0 {
				chats[i] = streamOnce(ctx, c, params)
				return
			}
			var resp *http.Response
			embedParams := openai.EmbeddingNewParams{Model: "embed-priced",
				Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{inputs[i-1], inputs[i]}}}
			_, err := c.Embeddings.New(ctx, embedParams, option.WithResponseInto(&resp))
			var apiErr *openai.Error
			switch {
			case resp == nil:
				embeds[i] = embedResult{status: -1}
			case errors.As(err, &apiErr):
				embeds[i] = embedResult{status: resp.StatusCode, errType: apiErr.Type, header: resp.Header}
			default:
				embeds[i] = embedResult{status: resp.StatusCode, header: resp.Header}
			}
		})
	}
	close(start)
	wg.Wait()

	var chatOnly []streamResult
	embedServed, embedRefused := 0, 0
	for i := range total {
		if i%2 == 0 {
			chatOnly = append(chatOnly, chats[i])
			continue
		}
		switch r := embeds[i]; {
		case r.status == 200:
			embedServed++
		case r.status == 429 && r.errType == "insufficient_quota" && r.header.Get("x-should-retry") == "false":
			embedRefused++
		default:
			t.Errorf("embeddings request %d: %d %q; want 200, or 429 insufficient_quota with x-should-retry: false", i, r.status, r.errType)
		}
	}
	tl := tallyStreams(t, chatOnly)
	t.Logf("chat: %d admitted (%d cut), %d refused; embeddings: %d served, %d refused", tl.admitted, tl.cut, tl.refused, embedServed, embedRefused)
	if tl.refused+embedRefused == 0 {
		t.Errorf("nothing refused; want the requests past $%.2f refused", limit)
	}
	redisSpent := budgetSpent(t, reps)
	shutdownAll(t, reps)
	var dbSpent float64
	rows := st.ledger(t)
	for _, row := range rows {
		dbSpent += row.costUSD
	}
	t.Logf("spent: Redis $%.6f, PostgreSQL $%.6f (%d rows); cap $%.2f, one chunk $%.5f", redisSpent, dbSpent, len(rows), limit, tokenCost)
	for name, spent := range map[string]float64{"Redis": redisSpent, "PostgreSQL": dbSpent} {
		if spent > limit+tokenCost+1e-9 {
			t.Errorf("%s spend $%.6f; want at most $%.2f plus one chunk ($%.5f)", name, spent, limit, tokenCost)
		}
		if embedRefused > 0 && limit-spent >= embedUSD {
			t.Errorf("%s spend $%.6f with %d embeddings refused: an embeddings call ($%.3f) still fit", name, spent, embedRefused, embedUSD)
		}
	}
	if math.Abs(redisSpent-dbSpent) > 1e-6 {
		t.Errorf("Redis says $%.6f, the ledger $%.6f; want them equal", redisSpent, dbSpent)
	}
	if len(rows) != total {
		t.Errorf("ledger has %d rows; want %d (one per request)", len(rows), total)
	}
}
