package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"
)

// budgetConfig prices gpt-test at $1 per million output tokens and
// nothing for input, so the "tight" team's $0.0001 a day is exactly 100
// completion tokens. The "slow" team may send one request a minute.
const budgetConfig = `
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
teams:
  - name: tight
    api_keys: ["${TEAM_KEY}"]
    budget: {usd: 0.0001, period: day}
  - name: slow
    api_keys: ["sk-slow"]
    rate_limit: {rpm: 1, tpm: 100000}
`

// startBudgetE2E is startE2E with budgetConfig.
func startBudgetE2E(t *testing.T) *e2e { t.Helper(); return startConfigE2E(t, budgetConfig) }

// startConfigE2E is startE2E with conf, which may use ${FAKE_URL},
// ${UPSTREAM_KEY} and ${TEAM_KEY}, logging at Info.
func startConfigE2E(t *testing.T, conf string, opts ...proxyOption) *e2e {
	t.Helper()
	return startFakeE2E(t, conf, opts...)
}

// TestE2EBudgetCutsStream: a model that would stream 1,000 tokens against
// a budget of 100 output tokens. The client gets at most 100 plus one
// chunk, a finish_reason "length" chunk, then the budget error event; the
// upstream request is cancelled; the next request gets 429
// insufficient_quota with x-should-retry: false.
func TestE2EBudgetCutsStream(t *testing.T) {
	e := startBudgetE2E(t)
	upstreamGone := make(chan struct{})
	e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		sw := newSSEWriter(w)
		for i := 0; i < 1000; i++ {
			if sw.event(chunks(reply{id: "chatcmpl-long", content: []string{" hi"}}, false)[1]) != nil {
				break
			}
		}
		select {
		case <-r.Context().Done():
			close(upstreamGone)
		case <-time.After(3 * time.Second):
		}
	})
	var resp *http.Response
	stream := e.noRetry().Chat.Completions.NewStreaming(context.Background(), chatParams("gpt-test"), option.WithResponseInto(&resp))
	content, finish := 0, ""
	for stream.Next() {
		c := stream.Current()
		if len(c.Choices) == 0 {
			continue
		}
		if c.Choices[0].Delta.Content != "" {
			content++
		}
		if c.Choices[0].FinishReason != "" {
			finish = c.Choices[0].FinishReason
		}
	}
	if content > 101 || content < 90 {
		t.Errorf("client got %d one-token chunks; want 100 (at most one more)", content)
	}
	if finish != "length" {
		t.Errorf("finish_reason = %q; want length", finish)
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "budget exhausted") {
		t.Errorf("stream error = %v; want the budget exhausted event", err)
	}
	if got := resp.Header.Get("x-llmproxy-max-tokens-clamped"); got == "" {
		t.Error("no x-llmproxy-max-tokens-clamped header")
	}
	if got := resp.Header.Get("x-llmproxy-budget-remaining-usd"); got == "" {
		t.Error("no x-llmproxy-budget-remaining-usd header")
	}
	select {
	case <-upstreamGone:
	case <-time.After(3 * time.Second):
		t.Error("the upstream request still runs after the cut")
	}
	r, b := e.do("POST", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"again"}]}`, authHeader(teamKeyDefault))
	if _, typ, _ := errorShape(t, b); r.StatusCode != 429 || typ != "insufficient_quota" || r.Header.Get("x-should-retry") != "false" {
		t.Errorf("after exhaustion: %d %s (x-should-retry %q); want 429 insufficient_quota, false", r.StatusCode, typ, r.Header.Get("x-should-retry"))
	}
}

// TestE2ERateLimit: OpenAI's x-ratelimit-* headers on a served request,
// then 429 rate_limit_error with Retry-After.
func TestE2ERateLimit(t *testing.T) {
	e := startBudgetE2E(t)
	body := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	r, _ := e.do("POST", "/v1/chat/completions", body, authHeader("sk-slow"))
	if r.StatusCode != 200 || r.Header.Get("x-ratelimit-limit-requests") != "1" || r.Header.Get("x-ratelimit-remaining-requests") != "0" ||
		r.Header.Get("x-ratelimit-limit-tokens") != "100000" || r.Header.Get("x-ratelimit-reset-requests") == "" {
		t.Errorf("first: %d, headers %v; want 200 with x-ratelimit-* (limit 1, 0 left)", r.StatusCode, r.Header)
	}
	r, b := e.do("POST", "/v1/chat/completions", body, authHeader("sk-slow"))
	if _, typ, _ := errorShape(t, b); r.StatusCode != 429 || typ != "rate_limit_error" || r.Header.Get("Retry-After") == "" ||
		r.Header.Get("x-ratelimit-remaining-requests") != "0" {
		t.Errorf("second: %d %s, headers %v; want 429 rate_limit_error with Retry-After", r.StatusCode, typ, r.Header)
	}
}
