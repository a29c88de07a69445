package openai

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
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
		sameUsage(t, []byte(raw))
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

// parseUsageJSON is parseUsage as it was before issue 15, decoding with
// encoding/json: the oracle the hand scan must match on every valid input.
func parseUsageJSON(raw []byte) (*router.Usage, error) {
	if !isObject(raw) {
		return nil, nil
	}
	var w wireUsage
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, err
	}
	u := &router.Usage{
		PromptTokens:     w.PromptTokens,
		CompletionTokens: w.CompletionTokens,
		TotalTokens:      w.TotalTokens,
		CachedTokens:     w.PromptTokensDetails.CachedTokens,
		ReasoningTokens:  w.CompletionTokensDetails.ReasoningTokens,
	}
	u.Clamp()
	return u, nil
}

// sameUsage fails unless parseUsage and the encoding/json oracle agree on
// raw: the same usage, or errors of the same type with the same text.
func sameUsage(t *testing.T, raw []byte) {
	t.Helper()
	want, wantErr := parseUsageJSON(raw)
	got, err := parseUsage(raw)
	if (got == nil) != (want == nil) || got != nil && *got != *want {
		t.Fatalf("parseUsage(%s) = %+v, %v; encoding/json gives %+v, %v", raw, got, err, want, wantErr)
	}
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("parseUsage(%s) error = %v; encoding/json gives %v", raw, err, wantErr)
	}
	if err == nil {
		return
	}
	var te, wantTE *json.UnmarshalTypeError
	if errors.As(err, &te) != errors.As(wantErr, &wantTE) || err.Error() != wantErr.Error() {
		t.Fatalf("parseUsage(%s) error = %T %v; encoding/json gives %T %v", raw, err, err, wantErr, wantErr)
	}
}

// usageSeeds are the usage objects where a hand decoder most easily parts
// ways with encoding/json.
var usageSeeds = []string{
	`null`, `{}`, `[]`, `"x"`, `1`, ` {}`,
	`{"prompt_tokens":412,"completion_tokens":20,"total_tokens":432,"prompt_tokens_details":{"cached_tokens":128,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":64,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`,
	` { "prompt_tokens" : 1 , "total_tokens" :2 } `,
	`{"prompt_tokens":1.5}`, `{"prompt_tokens":1.0}`, `{"prompt_tokens":1e3}`, `{"prompt_tokens":1E3}`, `{"prompt_tokens":-0}`,
	`{"prompt_tokens":-7}`, `{"prompt_tokens":0.0}`, `{"prompt_tokens":-0.0}`,
	`{"prompt_tokens":9223372036854775807}`, `{"prompt_tokens":9223372036854775808}`, `{"prompt_tokens":-9223372036854775808}`,
	`{"prompt_tokens":-9223372036854775809}`, `{"prompt_tokens":18446744073709551616}`, `{"prompt_tokens":99999999999999999999999}`,
	`{"prompt_tokens":"5"}`, `{"prompt_tokens":true}`, `{"prompt_tokens":false}`, `{"prompt_tokens":null}`,
	`{"prompt_tokens":{}}`, `{"prompt_tokens":[]}`, `{"prompt_tokens":[1]}`, `{"prompt_tokens":{"a":1}}`,
	`{"prompt_tokens":5,"prompt_tokens":null}`, `{"prompt_tokens":5,"prompt_tokens":6}`, `{"prompt_tokens":5,"PROMPT_TOKENS":6}`,
	`{"Prompt_Tokens":3}`, `{"prompt_toKens":3}`, `{"prompt_to\u212aens":3}`, "{\"prompt_toKens\":3}",
	"{\"prompt_tokenſ\":3}", `{"prompt_tokens\u0000":3}`, "{\"prompt_tokens \":3}", "{\"ı\":3}",
	"{\"prompt_tokens\xff\":3}", "{\"prompt_tok\xffens\":3}", `{"prompt\u005ftokens":3}`, `{"\u0070rompt_tokens":3}`,
	`{"prompt_tokens_details":{"cached_tokens":5},"prompt_tokens_details":{}}`,
	`{"prompt_tokens_details":{"cached_tokens":5},"prompt_tokens_details":null}`,
	`{"prompt_tokens_details":{"cached_tokens":5},"prompt_tokens_details":{"cached_tokens":null}}`,
	`{"prompt_tokens_details":{"cached_tokens":5,"CACHED_TOKENS":6}}`,
	`{"prompt_tokens_details":[]}`, `{"prompt_tokens_details":"x"}`, `{"prompt_tokens_details":3}`, `{"prompt_tokens_details":true}`,
	`{"prompt_tokens_details":{"cached_tokens":1.5}}`, `{"prompt_tokens_details":{"cached_tokens":"1"}}`,
	`{"prompt_tokens_details":{"cached_tokens":[]}}`, `{"prompt_tokens_details":{"cached_tokens":{}}}`,
	`{"completion_tokens_details":{"reasoning_tokens":-3}}`, `{"completion_tokens_details":{"reasoning_tokens":1e2}}`,
	`{"completion_tokens_details":{"cached_tokens":3},"prompt_tokens_details":{"reasoning_tokens":4}}`,
	`{"prompt_tokens":1.5,"completion_tokens":"x"}`, `{"completion_tokens":"x","prompt_tokens":1.5}`,
	`{"prompt_tokens_details":{"cached_tokens":1.5},"prompt_tokens":"x"}`,
	`{"x":{"prompt_tokens":1.5},"y":[1,{"total_tokens":"z"}],"total_tokens":2}`,
	`{"prompt_tokens":` + strings.Repeat("9", 400) + `}`,
}

func TestParseUsageMatchesEncodingJSON(t *testing.T) {
	for _, s := range usageSeeds {
		if !json.Valid([]byte(s)) {
			t.Fatalf("seed %q is not valid JSON", s)
		}
		sameUsage(t, []byte(s))
	}
}

// FuzzParseUsageJSON: on any valid JSON value (what ScanFields hands
// over), parseUsage answers what the encoding/json decoder answered.
func FuzzParseUsageJSON(f *testing.F) {
	for _, s := range usageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if json.Valid(raw) {
			sameUsage(t, raw)
		}
	})
}

func TestParseUsageAllocs(t *testing.T) {
	raw := []byte(usageSeeds[6])
	if n := testing.AllocsPerRun(100, func() { _, _ = parseUsage(raw) }); n != 1 {
		t.Errorf("parseUsage allocates %v times; want 1 (the Usage)", n)
	}
}
