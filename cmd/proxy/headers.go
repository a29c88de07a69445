package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
)

// The response headers a request's router.Result becomes. They are named
// here only: the chain's stages report facts (router.Result), cmd/proxy
// decides how a client sees them. A stage that adds a fact the client
// should see adds its header to setResultHeaders.

// setResultHeaders sends what the budget guard decided (x-ratelimit-*,
// clamps, downgrades, budget left); it runs for errors too, so a 429
// carries them.
func setResultHeaders(c *fiber.Ctx, res *router.Result) {
	rl := res.RateLimit
	if rl.LimitRequests > 0 {
		c.Set("x-ratelimit-limit-requests", strconv.FormatInt(rl.LimitRequests, 10))
		c.Set("x-ratelimit-remaining-requests", strconv.FormatInt(rl.RemainingRequests, 10))
		c.Set("x-ratelimit-reset-requests", resetString(rl.ResetRequests))
	}
	if rl.LimitTokens > 0 {
		c.Set("x-ratelimit-limit-tokens", strconv.FormatInt(rl.LimitTokens, 10))
		c.Set("x-ratelimit-remaining-tokens", strconv.FormatInt(rl.RemainingTokens, 10))
		c.Set("x-ratelimit-reset-tokens", resetString(rl.ResetTokens))
	}
	if res.MaxTokensClamped > 0 {
		c.Set("x-llmproxy-max-tokens-clamped", strconv.Itoa(res.MaxTokensClamped))
	}
	if res.DowngradedFrom != "" {
		c.Set("x-llmproxy-downgraded-from", res.DowngradedFrom)
	}
	if res.HasBudgetUSD {
		c.Set("x-llmproxy-budget-remaining-usd", strconv.FormatFloat(max(res.BudgetRemainingUSD, 0), 'f', 6, 64))
	}
	if res.EmbedCache != "" {
		c.Set("x-llmproxy-cache", res.EmbedCache) // hit, miss or partial (embed.Service)
	}
	if res.Conversation != "" {
		c.Set(headerConversation, res.Conversation)
	}
	if res.MemoryDropped > 0 {
		c.Set("x-llmproxy-memory-dropped", strconv.Itoa(res.MemoryDropped))
	}
	if res.RAG != "" {
		c.Set(headerRAG, res.RAG) // used, no_results or skipped
	}
	if len(res.Sources) > 0 {
		c.Set(headerRAGSources, sourceFiles(res.Sources))
	}
}

// sourceFiles is x-llmproxy-rag-sources: the cited files' ids, each once,
// in reference order, comma-separated.
func sourceFiles(src []router.Source) string {
	var b strings.Builder
	seen := make(map[string]bool, len(src))
	for _, s := range src {
		if seen[s.FileID] {
			continue
		}
		seen[s.FileID] = true
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.FileID)
	}
	return b.String()
}

// setRouteHeaders tells the client what served its request.
func setRouteHeaders(c *fiber.Ctx, res *router.Result) {
	if res.FallbackAlias != "" {
		c.Set("x-llmproxy-fallback-from", res.Alias)
	}
	c.Set("x-llmproxy-model", res.ServedAlias("")+";upstream="+res.Target.Model)
	c.Set("x-llmproxy-provider", res.Target.Provider)
	c.Set("x-llmproxy-attempts", strconv.Itoa(res.Attempts))
}

// resetString formats a reset like OpenAI does: "6m0s", "1s", "20ms".
func resetString(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < time.Second {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return d.Round(time.Millisecond).String()
}
