package anthropic

import (
	"encoding/json"
	"strconv"
	"testing"

	"llmproxy/router"
)

// TestUsageClamps is issue 16's negative usage for Anthropic's counts,
// summed into prompt_tokens: each is clamped before the sum.
func TestUsageClamps(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      router.Usage
	}{
		{"negative input", `{"input_tokens":-1000000,"output_tokens":5,"cache_read_input_tokens":3}`,
			router.Usage{PromptTokens: 3, CompletionTokens: 5, TotalTokens: 8, CachedTokens: 3, Clamped: true}},
		{"negative output", `{"input_tokens":10,"output_tokens":-1000000000}`,
			router.Usage{PromptTokens: 10, TotalTokens: 10, Clamped: true}},
		{"absurd", `{"input_tokens":9223372036854775807,"output_tokens":1,"cache_creation_input_tokens":9223372036854775807}`,
			router.Usage{PromptTokens: router.MaxUsageTokens, CompletionTokens: 1, TotalTokens: router.MaxUsageTokens, Clamped: true}},
		{"sane", `{"input_tokens":10,"output_tokens":5}`, router.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w wireUsage
			if err := json.Unmarshal([]byte(tc.raw), &w); err != nil {
				t.Fatal(err)
			}
			if got := w.usage(); *got != tc.want {
				t.Errorf("usage(%s) = %+v; want %+v", tc.raw, *got, tc.want)
			}
		})
	}
}

// FuzzUsage: whatever the numbers, the converted usage is in range.
func FuzzUsage(f *testing.F) {
	f.Add(int64(-5), int64(3), int64(-2), int64(0))
	f.Add(int64(1)<<62, int64(1)<<62, int64(1)<<62, int64(1)<<62)
	f.Fuzz(func(t *testing.T, in, out, read, write int64) {
		raw := `{"input_tokens":` + strconv.FormatInt(in, 10) + `,"output_tokens":` + strconv.FormatInt(out, 10) +
			`,"cache_read_input_tokens":` + strconv.FormatInt(read, 10) + `,"cache_creation_input_tokens":` + strconv.FormatInt(write, 10) + `}`
		var w wireUsage
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			t.Fatal(err)
		}
		u := w.usage()
		for _, n := range []int{u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.CachedTokens} {
			if n < 0 || n > router.MaxUsageTokens {
				t.Fatalf("usage(%s) = %+v: a count out of range", raw, u)
			}
		}
	})
}
