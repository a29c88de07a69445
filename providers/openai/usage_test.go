package openai

import (
	"strconv"
	"testing"

	"llmproxy/router"
)

// TestParseUsageClamps is issue 16's negative usage: the counts reach the
// budget clamped to [0, router.MaxUsageTokens] and marked Clamped.
func TestParseUsageClamps(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      router.Usage
	}{
		{"negative", `{"prompt_tokens":-5,"completion_tokens":-1000000000,"total_tokens":-1000000005,"prompt_tokens_details":{"cached_tokens":-2}}`,
			router.Usage{Clamped: true}},
		{"absurd", `{"prompt_tokens":9223372036854775807,"completion_tokens":3,"total_tokens":3}`,
			router.Usage{PromptTokens: router.MaxUsageTokens, CompletionTokens: 3, TotalTokens: router.MaxUsageTokens, Clamped: true}},
		{"sane", `{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}`,
			router.Usage{PromptTokens: 7, CompletionTokens: 3, TotalTokens: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := parseUsage([]byte(tc.raw))
			if err != nil || u == nil || *u != tc.want {
				t.Errorf("parseUsage(%s) = %+v, %v; want %+v", tc.raw, u, err, tc.want)
			}
		})
	}
}

// FuzzParseUsage: whatever the numbers, a decoded usage is in range.
func FuzzParseUsage(f *testing.F) {
	f.Add(int64(-5), int64(3), int64(-2), int64(0))
	f.Add(int64(1)<<62, int64(1)<<62, int64(-1)<<62, int64(7))
	f.Fuzz(func(t *testing.T, p, c, tot, cached int64) {
		raw := `{"prompt_tokens":` + strconv.FormatInt(p, 10) + `,"completion_tokens":` + strconv.FormatInt(c, 10) +
			`,"total_tokens":` + strconv.FormatInt(tot, 10) + `,"prompt_tokens_details":{"cached_tokens":` + strconv.FormatInt(cached, 10) + `}}`
		u, err := parseUsage([]byte(raw))
		if err != nil {
			t.Fatalf("parseUsage(%s): %v", raw, err)
		}
		inRange(t, u)
	})
}

func inRange(t *testing.T, u *router.Usage) {
	t.Helper()
	for _, n := range []int{u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.CachedTokens, u.ReasoningTokens} {
		if n < 0 || n > router.MaxUsageTokens {
			t.Fatalf("usage %+v has a count out of range", u)
		}
	}
}
