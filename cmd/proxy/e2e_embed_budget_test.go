package main

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmproxy/budget"
)

// embedBudgetConfig prices embed-priced at $0.05 an input token, so one
// input of "one two three" (3 tokens, as the fake reports for each input)
// costs $0.15: the "budgeted" team's $1.00 a day buys 6 of them. The
// "rpm" team has only a rate limit, 5 requests a minute; "arrays" has the
// same $1.00 budget for the token-array case.
const embedBudgetConfig = `
server:
  listen: 127.0.0.1:0
providers:
  - name: fake
    type: openai
    base_url: ${FAKE_URL}/v1
    api_key: ${UPSTREAM_KEY}
models:
  - name: embed-priced
    type: embedding
    pricing: {input_per_mtok: 50000, output_per_mtok: 0}
    deployments:
      - provider: fake
        model: text-embedding-3-small
teams:
  - name: budgeted
    api_keys: ["${TEAM_KEY}"]
    budget: {usd: 1.00, period: day}
  - name: rpm
    api_keys: ["sk-rpm"]
    rate_limit: {rpm: 5}
  - name: arrays
    api_keys: ["sk-arrays"]
    budget: {usd: 1.00, period: day}
`

// embedInput is one input of 3 tokens.
const embedInput = "one two three"

// embedInputs are distinct inputs of 3 tokens each: the embeddings cache
// would answer a repeated one without the upstream or the budget.
var embedInputs = []string{embedInput, "one two four", "one two five", "one two six", "one two seven",
	"one two eight", "one two nine", "one two ten", "one two eleven"}

// startEmbedBudgetE2E is startE2E with embedBudgetConfig.
func startEmbedBudgetE2E(t *testing.T) *e2e {
	t.Helper()
	for _, in := range embedInputs {
		if n := budget.NewCounter().Text("embed-priced", in); n != 3 {
			t.Fatalf("the tokenizer counts %q as %d tokens; the test needs the fake's 3", in, n)
		}
	}
	return startFakeE2E(t, embedBudgetConfig)
}

// embedResult is what the SDK saw of one embeddings call.
type embedResult struct {
	status  int
	errType string
	header  http.Header
}

func embedOnce(t *testing.T, c *openai.Client, input openai.EmbeddingNewParamsInputUnion) embedResult {
	t.Helper()
	var resp *http.Response
	_, err := c.Embeddings.New(withTimeout(t), openai.EmbeddingNewParams{Model: "embed-priced", Input: input}, option.WithResponseInto(&resp))
	if resp == nil {
		t.Fatalf("embeddings: no response: %v", err)
	}
	r := embedResult{status: resp.StatusCode, header: resp.Header}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		r.errType = apiErr.Type
	} else if err != nil {
		t.Fatalf("embeddings: %v", err)
	}
	return r
}

// oneInput is the i-th distinct input of 3 tokens.
func oneInput(i int) openai.EmbeddingNewParamsInputUnion {
	return openai.EmbeddingNewParamsInputUnion{OfString: openai.String(embedInputs[i])}
}

// TestE2EEmbeddingsBudget is issue 9's scenario with the budget alone: 8
// embeddings calls at $0.15 each against $1.00 a day. Spend stays within
// the budget, the calls that do not fit get 429 insufficient_quota with
// x-should-retry: false, and /v1/usage's totals equal its budget's spend.
func TestE2EEmbeddingsBudget(t *testing.T) {
	e := startEmbedBudgetE2E(t)
	const limit, perCall = 1.00, 0.15
	c := e.noRetry()
	served, refused := 0, 0
	for i := range 8 {
		r := embedOnce(t, c, oneInput(i))
		switch {
		case r.status == 200:
			served++
			if r.header.Get("x-llmproxy-budget-remaining-usd") == "" {
				t.Errorf("call %d: no x-llmproxy-budget-remaining-usd header", i+1)
			}
		case r.status == 429 && r.errType == "insufficient_quota" && r.header.Get("x-should-retry") == "false":
			refused++
		default:
			t.Errorf("call %d: %d %q (x-should-retry %q); want 200, or 429 insufficient_quota with x-should-retry false",
				i+1, r.status, r.errType, r.header.Get("x-should-retry"))
		}
	}
	if refused == 0 {
		t.Errorf("all %d calls served; want the ones past $%.2f refused", served, limit)
	}
	if n := e.up.count(); n != served {
		t.Errorf("upstream got %d calls; want the %d served", n, served)
	}
	q := "/v1/usage?start=" + time.Now().UTC().AddDate(0, 0, -1).Format(usageDate) + "&end=" + time.Now().UTC().AddDate(0, 0, 1).Format(usageDate)
	var rep usageReport
	if !eventually(5*time.Second, func() bool {
		_, b := e.do("GET", q, "", authHeader(teamKeyDefault))
		rep = usageReport{}
		return json.Unmarshal(b, &rep) == nil && rep.Totals.Requests == 8
	}) {
		t.Fatalf("/v1/usage totals = %+v; want 8 requests once the ledger flushed", rep.Totals)
	}
	if rep.Budget == nil || rep.Budget.USDSpent == nil {
		t.Fatalf("/v1/usage has no budget: %+v", rep)
	}
	spent := *rep.Budget.USDSpent
	t.Logf("%d served, %d refused; budget spent $%.6f, ledger $%.6f", served, refused, spent, rep.Totals.CostUSD)
	if spent > limit+perCall+1e-9 {
		t.Errorf("budget spent $%.6f; want at most $%.2f plus one call", spent, limit)
	}
	if math.Abs(rep.Totals.CostUSD-spent) > 1e-6 || math.Abs(spent-float64(served)*perCall) > 1e-6 {
		t.Errorf("/v1/usage totals $%.6f, budget spent $%.6f; want both the %d served calls' $%.2f", rep.Totals.CostUSD, spent, served, float64(served)*perCall)
	}
}

// TestE2EEmbeddingsRateLimit is the scenario with rpm 5 alone: five calls
// answer with x-ratelimit-* headers, the 6th within the minute gets 429
// rate_limit_error with Retry-After.
func TestE2EEmbeddingsRateLimit(t *testing.T) {
	e := startEmbedBudgetE2E(t)
	c := e.noRetry(option.WithAPIKey("sk-rpm"))
	for i := range 5 {
		r := embedOnce(t, c, oneInput(i))
		if r.status != 200 || r.header.Get("x-ratelimit-limit-requests") != "5" || r.header.Get("x-ratelimit-remaining-requests") != strconv.Itoa(4-i) {
			t.Errorf("call %d: %d, x-ratelimit-limit-requests %q remaining %q; want 200, 5, %d",
				i+1, r.status, r.header.Get("x-ratelimit-limit-requests"), r.header.Get("x-ratelimit-remaining-requests"), 4-i)
		}
	}
	r := embedOnce(t, c, oneInput(5))
	if r.status != 429 || r.errType != "rate_limit_error" || r.header.Get("Retry-After") == "" || r.header.Get("x-ratelimit-remaining-requests") != "0" {
		t.Errorf("6th call: %d %q, Retry-After %q; want 429 rate_limit_error with Retry-After", r.status, r.errType, r.header.Get("Retry-After"))
	}
	if n := e.up.count(); n != 5 {
		t.Errorf("upstream got %d calls; want 5", n)
	}
}

// TestE2EEmbeddingsTokenArrays: token-array inputs are counted by their
// length at admission: 21 tokens ($1.05) do not fit a $1.00 budget, 20
// do.
func TestE2EEmbeddingsTokenArrays(t *testing.T) {
	e := startEmbedBudgetE2E(t)
	c := e.noRetry(option.WithAPIKey("sk-arrays"))
	tokens := func(n int) openai.EmbeddingNewParamsInputUnion {
		arr := make([]int64, n)
		for i := range arr {
			arr[i] = int64(1000 + i)
		}
		return openai.EmbeddingNewParamsInputUnion{OfArrayOfTokenArrays: [][]int64{arr[:n/2], arr[n/2:]}}
	}
	if r := embedOnce(t, c, tokens(21)); r.status != 429 || r.errType != "insufficient_quota" || r.header.Get("x-should-retry") != "false" {
		t.Errorf("21 tokens at $0.05 against $1.00: %d %q; want 429 insufficient_quota", r.status, r.errType)
	}
	if r := embedOnce(t, c, tokens(20)); r.status != 200 {
		t.Errorf("20 tokens at $0.05 against $1.00: %d %q; want 200", r.status, r.errType)
	}
}

// threeTokenInputs are n distinct inputs the tokenizer counts as 3 tokens
// each (three common words), for tests whose budget arithmetic needs the
// fake's 3 tokens per input while the embeddings cache must not answer a
// repeated input.
func threeTokenInputs(t testing.TB, n int) []string {
	t.Helper()
	first := []string{"one", "two", "three", "four", "five", "six"}
	second := []string{"red", "blue", "green", "black", "white", "brown", "gray", "pink"}
	third := []string{"cat", "dog", "bird", "fish", "horse", "cow", "sheep", "pig", "duck", "goat"}
	c := budget.NewCounter()
	var out []string
	for _, a := range first {
		for _, b := range second {
			for _, d := range third {
				s := a + " " + b + " " + d
				if len(out) < n && c.Text("embed-priced", s) == 3 {
					out = append(out, s)
				}
			}
		}
	}
	if len(out) < n {
		t.Fatalf("only %d three-token inputs; the test needs %d", len(out), n)
	}
	return out
}
