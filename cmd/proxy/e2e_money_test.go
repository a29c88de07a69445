package main

import (
	"net/http"
	"strings"
	"testing"

	"llmproxy/router"
)

// moneyConfig prices every alias by output only. "roomy" has room for any
// worst case; "tight" has $0.0001 a day, 100 output tokens of gpt-test.
// pricey costs 16× gpt-test and falls back to it; its deployment fails.
const moneyConfig = `
server:
  listen: 127.0.0.1:0
providers:
  - name: fake
    type: openai
    base_url: ${FAKE_URL}/v1
    api_key: ${UPSTREAM_KEY}
models:
  - name: gpt-test
    pricing: {input_per_mtok: 0, output_per_mtok: 1}
    deployments: [{provider: fake, model: gpt-4o-mini}]
  - name: o-test
    pricing: {input_per_mtok: 0, output_per_mtok: 1}
    deployments: [{provider: fake, model: o3-mini}]
  - name: pricey
    pricing: {input_per_mtok: 0, output_per_mtok: 16}
    fallbacks: [gpt-test]
    deployments: [{provider: fake, model: broken}]
teams:
  - name: roomy
    api_keys: ["${TEAM_KEY}"]
    budget: {usd: 10, period: day}
  - name: tight
    api_keys: ["sk-tight"]
    budget: {usd: 0.0001, period: day}
`

// startMoneyE2E starts moneyConfig; the upstream fails model "broken".
func startMoneyE2E(t *testing.T) *e2e {
	t.Helper()
	e := startConfigE2E(t, moneyConfig)
	e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if parseAsk(body).Model == "broken" {
			writeUpstreamError(w, 500, `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`)
			return
		}
		defaultHandler(w, r, body)
	})
	return e
}

// TestE2EBudgetForwardsBodyUntouched (issue 17 item 1): a budgeted team
// with room sends its body upstream byte for byte (only "model" changes):
// no max_tokens is added. A clamp writes the client's own field, or, when
// it sent none, the field the upstream model takes.
func TestE2EBudgetForwardsBodyUntouched(t *testing.T) {
	e := startMoneyE2E(t)
	body := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"temperature":0.2,"metadata":{"k":"v"}}`
	r, b := e.do("POST", "/v1/chat/completions", body, authHeader(teamKeyDefault))
	if r.StatusCode != 200 {
		t.Fatalf("status %d: %s", r.StatusCode, b)
	}
	want := strings.Replace(body, `"gpt-test"`, `"gpt-4o-mini"`, 1)
	if got := string(e.up.last(t).Body); got != want {
		t.Errorf("upstream body = %s; want %s", got, want)
	}
	if h := r.Header.Get("x-llmproxy-max-tokens-clamped"); h != "" {
		t.Errorf("x-llmproxy-max-tokens-clamped = %q; want none", h)
	}

	tests := []struct {
		name, body, want, not string
	}{
		{"client field kept", `{"model":"gpt-test","max_completion_tokens":5000,"messages":[{"role":"user","content":"hi"}]}`, `"max_completion_tokens":`, `"max_tokens"`},
		{"none sent, chat model", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, `"max_tokens":`, `"max_completion_tokens"`},
		{"none sent, reasoning model", `{"model":"o-test","messages":[{"role":"user","content":"hi"}]}`, `"max_completion_tokens":`, `"max_tokens"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, b := e.do("POST", "/v1/chat/completions", tc.body, authHeader("sk-tight"))
			if r.StatusCode != 200 {
				t.Fatalf("status %d: %s", r.StatusCode, b)
			}
			got := string(e.up.last(t).Body)
			clamped := r.Header.Get("x-llmproxy-max-tokens-clamped")
			if clamped == "" || !strings.Contains(got, tc.want+clamped) || strings.Contains(got, tc.not) {
				t.Errorf("clamp %q, upstream body %s; want %s%s and no %s", clamped, got, tc.want, clamped, tc.not)
			}
		})
	}
}

// TestE2EBudgetBillsServedAlias (issue 17 items 4 and 5): a request to
// pricey served by its fallback gpt-test is billed at gpt-test's price
// (5 output tokens: $0.000005, not 16× that), and the remaining-budget
// header of the next request is the limit less that settled spend, not
// less the next request's in-flight reservation.
func TestE2EBudgetBillsServedAlias(t *testing.T) {
	e := startMoneyE2E(t)
	r, b := e.do("POST", "/v1/chat/completions", `{"model":"pricey","messages":[{"role":"user","content":"hi"}]}`, authHeader(teamKeyDefault))
	if r.StatusCode != 200 || r.Header.Get("x-llmproxy-fallback-from") != "pricey" {
		t.Fatalf("status %d, fallback-from %q: %s", r.StatusCode, r.Header.Get("x-llmproxy-fallback-from"), b)
	}
	if got := r.Header.Get("x-llmproxy-budget-remaining-usd"); got != "10.000000" {
		t.Errorf("first remaining = %s; want 10.000000 (nothing settled yet)", got)
	}
	r, b = e.do("POST", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, authHeader(teamKeyDefault))
	if r.StatusCode != 200 {
		t.Fatalf("status %d: %s", r.StatusCode, b)
	}
	if got := r.Header.Get("x-llmproxy-budget-remaining-usd"); got != "9.999995" {
		t.Errorf("remaining after the fallback = %s; want 9.999995 ($10 less 5 tokens at $1/M)", got)
	}
}

// TestUsageLedgerPricesServedAlias (issue 17 item 4): without a guard's
// settlement the ledger prices the alias that served, not the one asked.
func TestUsageLedgerPricesServedAlias(t *testing.T) {
	cfg, err := ParseConfig([]byte(moneyConfig), func(k string) (string, bool) { return "http://x", true })
	if err != nil {
		t.Fatal(err)
	}
	u := &usageLedger{prices: pricesOf(cfg)}
	rec := &reqRecord{model: "pricey", usage: router.Usage{CompletionTokens: 1_000_000},
		result: router.Result{FallbackAlias: "gpt-test", Target: router.Target{Provider: "fake", Model: "gpt-4o-mini"}}}
	rec.fill()
	if _, cost := u.settle(rec); cost != 1 {
		t.Errorf("cost = %v; want $1 (gpt-test's price, not pricey's $16)", cost)
	}
}
