package router

import (
	"math"
	"testing"
)

func TestUsageClamp(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Usage
		want Usage
	}{
		{"sane", Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}, Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}},
		{"negative", Usage{PromptTokens: -1_000_000, CompletionTokens: 5, TotalTokens: -999_995, CachedTokens: -3, ReasoningTokens: -1},
			Usage{PromptTokens: 0, CompletionTokens: 5, TotalTokens: 5, Clamped: true}},
		{"absurd", Usage{PromptTokens: math.MaxInt64, CompletionTokens: 1, TotalTokens: math.MinInt64},
			Usage{PromptTokens: MaxUsageTokens, CompletionTokens: 1, TotalTokens: MaxUsageTokens, Clamped: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.in
			if got := u.Clamp(); got != tc.want.Clamped || u != tc.want {
				t.Errorf("Clamp(%+v) = %v, %+v; want %v, %+v", tc.in, got, u, tc.want.Clamped, tc.want)
			}
		})
	}
}

func TestDecodeUsageClamps(t *testing.T) {
	u := decodeUsage([]byte(`{"prompt_tokens":-5,"completion_tokens":-1000000000,"total_tokens":-1000000005}`))
	if u == nil || u.PromptTokens != 0 || u.CompletionTokens != 0 || u.TotalTokens != 0 || !u.Clamped {
		t.Errorf("decodeUsage(negative) = %+v; want zeros, Clamped", u)
	}
}
