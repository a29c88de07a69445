package gemini

import (
	"encoding/json"
	"testing"

	"llmproxy/router"
)

// TestToUsageClamps is issue 16's negative usage for Gemini's
// usageMetadata: each count is clamped before the sums.
func TestToUsageClamps(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      router.Usage
	}{
		{"negative", `{"promptTokenCount":-1000000,"candidatesTokenCount":5,"totalTokenCount":-999995}`,
			router.Usage{CompletionTokens: 5, TotalTokens: 5, Clamped: true}},
		{"negative thoughts", `{"promptTokenCount":4,"candidatesTokenCount":5,"thoughtsTokenCount":-100,"totalTokenCount":9}`,
			router.Usage{PromptTokens: 4, CompletionTokens: 5, TotalTokens: 9, Clamped: true}},
		{"absurd", `{"promptTokenCount":9223372036854775807,"toolUsePromptTokenCount":9223372036854775807,"candidatesTokenCount":1}`,
			router.Usage{PromptTokens: router.MaxUsageTokens, CompletionTokens: 1, TotalTokens: router.MaxUsageTokens, Clamped: true}},
		{"sane", `{"promptTokenCount":4,"candidatesTokenCount":5,"totalTokenCount":9}`, router.Usage{PromptTokens: 4, CompletionTokens: 5, TotalTokens: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m usageMetadata
			if err := json.Unmarshal([]byte(tc.raw), &m); err != nil {
				t.Fatal(err)
			}
			if got := toUsage(&m); got != tc.want {
				t.Errorf("toUsage(%s) = %+v; want %+v", tc.raw, got, tc.want)
			}
		})
	}
}

// FuzzToUsage: whatever the numbers, the converted usage is in range.
func FuzzToUsage(f *testing.F) {
	f.Add(int64(-5), int64(3), int64(-2), int64(0), int64(-9))
	f.Add(int64(1)<<62, int64(1)<<62, int64(1)<<62, int64(1)<<62, int64(-1)<<62)
	f.Fuzz(func(t *testing.T, p, c, th, tool, tot int64) {
		m := usageMetadata{PromptTokenCount: int(p), CandidatesTokenCount: int(c), ThoughtsTokenCount: int(th),
			ToolUsePromptTokenCount: int(tool), TotalTokenCount: int(tot)}
		u := toUsage(&m)
		for _, n := range []int{u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.CachedTokens, u.ReasoningTokens} {
			if n < 0 || n > router.MaxUsageTokens {
				t.Fatalf("toUsage(%+v) = %+v: a count out of range", m, u)
			}
		}
	})
}
