package router

import (
	"strconv"
	"time"
)

// Meta is what the budget guard tells the HTTP layer about a request: the
// response headers it owes the client and, once the stream is closed, the
// settled cost for the access record and the usage ledger.
type Meta struct {
	// MaxTokensClamped is the completion cap the guard lowered the request
	// to so that it fits the budget (x-llmproxy-max-tokens-clamped); 0: not
	// clamped.
	MaxTokensClamped int
	// DowngradedFrom is the alias the client asked for when the downgrade
	// ladder moved the request (x-llmproxy-downgraded-from).
	DowngradedFrom string
	// BudgetRemainingUSD is the team's budget left, its limit less the
	// spend settled so far (x-llmproxy-budget-remaining-usd): requests
	// in flight are not counted. Valid when HasBudgetUSD.
	BudgetRemainingUSD float64
	HasBudgetUSD       bool
	// RateLimit holds OpenAI's x-ratelimit-* values; zero limits are not
	// sent.
	RateLimit RateLimitInfo

	// Set in the stream's Close, before the HTTP layer's access record.

	// Usage is the settled usage: the upstream's report, or the
	// tokenizer's count when Estimated.
	Usage Usage
	// CostUSD is the settled cost of the request.
	CostUSD float64
	// Estimated is true when the upstream reported no usage (or the
	// stream was cut) and the tokenizer counted.
	Estimated bool
	// Settled is true once CostUSD is final.
	Settled bool

	// EmbedCache is "hit", "miss" or "partial" when the embeddings cache
	// answered all, none or some of the inputs (x-llmproxy-cache); "" when
	// no cache ran.
	EmbedCache string
	// CachedInputTokens are the input tokens the embeddings cache served:
	// not in Usage, not charged, not counted against tpm.
	CachedInputTokens int
}

// RateLimitInfo is the tightest rate limit a request counted against.
type RateLimitInfo struct {
	LimitRequests, RemainingRequests int64
	ResetRequests                    time.Duration
	LimitTokens, RemainingTokens     int64
	ResetTokens                      time.Duration
}

// Headers returns the response headers m asks for, as name/value pairs.
func (m *Meta) Headers() [][2]string {
	if m == nil {
		return nil
	}
	var h [][2]string
	rl := m.RateLimit
	if rl.LimitRequests > 0 {
		h = append(h, [2]string{"x-ratelimit-limit-requests", strconv.FormatInt(rl.LimitRequests, 10)},
			[2]string{"x-ratelimit-remaining-requests", strconv.FormatInt(rl.RemainingRequests, 10)},
			[2]string{"x-ratelimit-reset-requests", resetString(rl.ResetRequests)})
	}
	if rl.LimitTokens > 0 {
		h = append(h, [2]string{"x-ratelimit-limit-tokens", strconv.FormatInt(rl.LimitTokens, 10)},
			[2]string{"x-ratelimit-remaining-tokens", strconv.FormatInt(rl.RemainingTokens, 10)},
			[2]string{"x-ratelimit-reset-tokens", resetString(rl.ResetTokens)})
	}
	if m.MaxTokensClamped > 0 {
		h = append(h, [2]string{"x-llmproxy-max-tokens-clamped", strconv.Itoa(m.MaxTokensClamped)})
	}
	if m.DowngradedFrom != "" {
		h = append(h, [2]string{"x-llmproxy-downgraded-from", m.DowngradedFrom})
	}
	if m.HasBudgetUSD {
		h = append(h, [2]string{"x-llmproxy-budget-remaining-usd", strconv.FormatFloat(max(m.BudgetRemainingUSD, 0), 'f', 6, 64)})
	}
	return h
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
