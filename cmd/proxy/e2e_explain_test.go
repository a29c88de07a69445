package main

import (
	"context"
	"encoding/json"
	"testing"

	"llmproxy/router"
)

// explainConfig: the "dg" team's budget is 100 output tokens of gpt-test
// ($1/M), and its ladder moves gpt-test to the free "cheap" alias once 4%
// of it is settled: one default reply (5 completion tokens) is 5%. The
// "broke" team's budget cannot hold the smallest completion.
const explainConfig = `
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
    deployments:
      - provider: fake
        model: gpt-4o-mini
  - name: cheap
    pricing: {input_per_mtok: 0, output_per_mtok: 0}
    deployments:
      - provider: fake
        model: gpt-cheap-up
teams:
  - name: dg
    api_keys: ["${TEAM_KEY}"]
    budget: {usd: 0.0001, period: day}
    rate_limit: {rpm: 5}
    downgrade: [{at_budget_used: 0.04, from: gpt-test, to: cheap}]
  - name: broke
    api_keys: ["sk-broke"]
    budget: {usd: 0.000000001, period: day}
`

// explainReply is the part of POST /v1/route/explain the tests read.
type explainReply struct {
	Model          string                 `json:"model"`
	RoutedModel    string                 `json:"routed_model"`
	DowngradedFrom string                 `json:"downgraded_from"`
	Candidates     []router.Explained     `json:"candidates"`
	Budget         *router.BudgetDecision `json:"budget"`
	WouldFail      *apiErrorBody          `json:"would_fail"`
	Stages         []router.Note          `json:"stages"`
}

func (e *e2e) explain(t *testing.T, key, body string) explainReply {
	t.Helper()
	r, b := e.do("POST", "/v1/route/explain", body, authHeader(key))
	if r.StatusCode != 200 {
		t.Fatalf("explain = %d %s; want 200", r.StatusCode, b)
	}
	var out explainReply
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("explain body %s: %v", b, err)
	}
	return out
}

// TestE2EExplainDryRunShowsDowngrade (issue 9 item 4): explain runs the
// chain as a dry run. For a team past its ladder's threshold it shows the
// downgrade and the target alias's candidates; it calls no upstream and
// leaves the budget's spend and the rpm counter as they were.
func TestE2EExplainDryRunShowsDowngrade(t *testing.T) {
	e := startConfigE2E(t, explainConfig)
	body := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	r, b := e.do("POST", "/v1/chat/completions", body, authHeader(teamKeyDefault))
	if r.StatusCode != 200 || r.Header.Get("x-ratelimit-remaining-requests") != "4" {
		t.Fatalf("first chat = %d %s (remaining %q); want 200, 4 requests left", r.StatusCode, b, r.Header.Get("x-ratelimit-remaining-requests"))
	}
	before, err := e.srv.usage.status(context.Background(), "dg")
	if err != nil || before.SpentUSD <= 0 {
		t.Fatalf("status = %+v, %v; want the first reply's spend", before, err)
	}
	calls := e.up.count()
	var ex explainReply
	for range 3 { // more dry runs than the rpm has left would show
		ex = e.explain(t, teamKeyDefault, body)
	}
	if ex.Model != "gpt-test" || ex.DowngradedFrom != "gpt-test" || ex.RoutedModel != "cheap" {
		t.Errorf("explain model %q routed %q downgraded from %q; want gpt-test moved to cheap", ex.Model, ex.RoutedModel, ex.DowngradedFrom)
	}
	if len(ex.Candidates) == 0 || ex.Candidates[0].Alias != "cheap" || ex.Candidates[0].Model != "gpt-cheap-up" || !ex.Candidates[0].Chosen {
		t.Errorf("candidates = %+v; want cheap's deployment gpt-cheap-up, chosen", ex.Candidates)
	}
	if d := ex.Budget; d == nil || !d.Admit || d.DowngradeReason != "budget" || d.UsedShare < 0.04 || d.Team != "dg" {
		t.Errorf("budget = %+v; want admitted, downgraded for budget at a share ≥ 0.04", d)
	}
	if len(ex.Stages) == 0 || ex.Stages[0].Stage != "budget" || ex.WouldFail != nil {
		t.Errorf("stages = %+v, would_fail %+v; want the budget's downgrade note and no failure", ex.Stages, ex.WouldFail)
	}
	if got := e.up.count(); got != calls {
		t.Errorf("explain made %d upstream calls; want 0", got-calls)
	}
	after, err := e.srv.usage.status(context.Background(), "dg")
	if err != nil || after.SpentUSD != before.SpentUSD || after.SpentTokens != before.SpentTokens {
		t.Errorf("status after explain = %+v, %v; want the spend of before, %+v", after, err, before)
	}
	r, b = e.do("POST", "/v1/chat/completions", body, authHeader(teamKeyDefault))
	if r.StatusCode != 200 || r.Header.Get("x-ratelimit-remaining-requests") != "3" || r.Header.Get("x-llmproxy-downgraded-from") != "gpt-test" {
		t.Errorf("chat after explain = %d %s (remaining %q, downgraded from %q); want 200, 3 left: the dry runs took no rpm, downgraded from gpt-test",
			r.StatusCode, b, r.Header.Get("x-ratelimit-remaining-requests"), r.Header.Get("x-llmproxy-downgraded-from"))
	}
}

// TestE2EExplainWouldRefuse: a team whose budget cannot hold a reply gets
// the refusal chat would answer with, as would_fail, from a dry run.
func TestE2EExplainWouldRefuse(t *testing.T) {
	e := startConfigE2E(t, explainConfig)
	body := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	ex := e.explain(t, "sk-broke", body)
	if d := ex.Budget; d == nil || d.Admit || ex.WouldFail == nil || ex.WouldFail.Code == nil || *ex.WouldFail.Code != "insufficient_quota" {
		t.Fatalf("explain budget %+v would_fail %+v; want refused with insufficient_quota", ex.Budget, ex.WouldFail)
	}
	if len(ex.Candidates) == 0 {
		t.Errorf("candidates = %+v; want gpt-test's plan still shown", ex.Candidates)
	}
	r, b := e.do("POST", "/v1/chat/completions", body, authHeader("sk-broke"))
	if _, _, code := errorShape(t, b); r.StatusCode != 429 || code != "insufficient_quota" {
		t.Errorf("chat = %d %s; want the 429 insufficient_quota explain predicted", r.StatusCode, b)
	}
	if e.up.count() != 0 {
		t.Errorf("upstream calls = %d; want 0", e.up.count())
	}
}
