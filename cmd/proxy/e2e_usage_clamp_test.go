package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestE2ENegativeUsageClamped is issue 16's negative usage: an upstream
// reporting negative counts, plain and streamed, once drove a team's spend
// to −$1.1M. The spend must stay ≥ 0 and each such reply logs one warning.
func TestE2ENegativeUsageClamped(t *testing.T) {
	e := startBudgetE2E(t)
	bad := reply{id: "chatcmpl-negative", content: []string{"ok"},
		usage: wireUsage{PromptTokens: -5, CompletionTokens: -1_000_000_000, TotalTokens: -1_000_000_005}}
	e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) { serveChat(w, body, bad) })
	for _, stream := range []string{"false", "true"} {
		resp, b := e.do("POST", "/v1/chat/completions", `{"model":"gpt-test","stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`,
			authHeader(teamKeyDefault))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream=%s: status = %d; want 200\n%s", stream, resp.StatusCode, b)
		}
	}
	resp, b := e.do("GET", "/v1/usage", "", authHeader(teamKeyDefault))
	var rep usageReport
	if err := json.Unmarshal(b, &rep); resp.StatusCode != 200 || err != nil || rep.Budget == nil || rep.Budget.USDSpent == nil {
		t.Fatalf("GET /v1/usage = %d %s; want a budget with usd_spent", resp.StatusCode, b)
	}
	if spent := *rep.Budget.USDSpent; spent < 0 {
		t.Errorf("usd_spent = %v; want ≥ 0", spent)
	}
	if rep.Budget.TokensSpent != nil && *rep.Budget.TokensSpent < 0 {
		t.Errorf("tokens_spent = %d; want ≥ 0", *rep.Budget.TokensSpent)
	}
	if rep.Totals.CompletionTokens < 0 || rep.Totals.PromptTokens < 0 || rep.Totals.CostUSD < 0 {
		t.Errorf("usage totals = %+v; want no negative count or cost", rep.Totals)
	}
	const warn = "upstream usage out of range; clamped"
	if !eventually(5*time.Second, func() bool { return strings.Count(e.logs.String(), warn) == 2 }) {
		t.Errorf("logs have %d %q lines; want one per reply:\n%s", strings.Count(e.logs.String(), warn), warn, e.logs.String())
	}
}
