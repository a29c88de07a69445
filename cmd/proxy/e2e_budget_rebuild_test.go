package main

import (
	"fmt"
	"testing"
	"time"
)

// TestE2EBudgetSurvivesRestart (issue 17 item 6, in process): without
// Redis the budget counters live in the process. A team spends part of a
// token budget, the proxy stops, and a new proxy on the same SQLite file
// must still know the spend: /v1/usage reports it before any request,
// and a request that no longer fits is refused. The old code started the
// new process from zero and admitted it.
func TestE2EBudgetSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	withBudget := func(tokens int64) func(*Config) {
		return func(c *Config) {
			c.Server.DataDir = dir
			for i := range c.Teams {
				if c.Teams[i].Name == "limited" {
					c.Teams[i].Budget = &BudgetLimit{Tokens: tokens, Period: "day"}
				}
			}
		}
	}
	body := `{"model":"demo-chat","messages":[{"role":"user","content":"Say hello."}]}`
	p := startUsageProxy(t, usageMasterKey, withBudget(1_000_000))
	var spent int64
	for range 3 {
		_, u := p.send(teamKeyLimited, "/v1/chat/completions", body, false)
		spent += int64(u.prompt + u.completion)
	}
	if err := p.stop(5 * time.Second); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if p.serveErr != nil {
		t.Fatalf("Serve: %v", p.serveErr)
	}

	// The new limit leaves 10 tokens: less than any prompt plus the 16
	// completion tokens a request needs at least.
	q := p2Query()
	p2 := startUsageProxy(t, usageMasterKey, withBudget(spent+10))
	code, rep, raw := p2.report(q, teamKeyLimited)
	if code != 200 || rep.Budget == nil || rep.Budget.TokensSpent == nil || *rep.Budget.TokensSpent != spent {
		t.Fatalf("/v1/usage after restart = %d %s; want budget tokens_spent %d", code, raw, spent)
	}
	resp, b := p2.do("POST", "/v1/chat/completions", body, authHeader(teamKeyLimited))
	if resp.StatusCode != 429 {
		t.Fatalf("request after restart = %d %s; want 429: the %d tokens spent before the restart still count", resp.StatusCode, b, spent)
	}
	if _, typ, code := errorShape(t, b); typ != "insufficient_quota" || code != "insufficient_quota" {
		t.Errorf("refusal type/code = %s/%s; want insufficient_quota", typ, code)
	}
}

func p2Query() string {
	now := time.Now().UTC()
	return fmt.Sprintf("/v1/usage?start=%s&end=%s", now.AddDate(0, 0, -1).Format(usageDate), now.AddDate(0, 0, 1).Format(usageDate))
}
