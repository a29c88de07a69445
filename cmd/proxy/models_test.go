package main

import (
	"slices"
	"testing"

	"llmproxy/router"
)

// TestParseEmbedRequestInputs: string inputs are decoded, token arrays
// counted by their length, and anything else is a 400 on input.
func TestParseEmbedRequestInputs(t *testing.T) {
	tests := []struct {
		name, body string
		input      []string
		tokens     int
		bad        bool
	}{
		{name: "string", body: `{"model":"e","input":"hi there"}`, input: []string{"hi there"}},
		{name: "strings", body: `{"model":"e","input":["a","b"]}`, input: []string{"a", "b"}},
		{name: "one token array", body: `{"model":"e","input":[1,2,3]}`, tokens: 3},
		{name: "token arrays", body: `{"model":"e","input":[[1,2],[3,4,5]]}`, tokens: 5},
		{name: "empty token array", body: `{"model":"e","input":[[1],[]]}`, bad: true},
		{name: "mixed", body: `{"model":"e","input":["a",[1]]}`, bad: true},
		{name: "not tokens", body: `{"model":"e","input":[[1.5]]}`, bad: true},
		{name: "objects", body: `{"model":"e","input":[{}]}`, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseEmbedRequest([]byte(tc.body))
			if tc.bad {
				if e := router.AsError(err); err == nil || e.Kind != router.KindInvalidRequest || e.Param != "input" {
					t.Fatalf("parseEmbedRequest(%s) = %v; want a 400 on input", tc.body, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(req.Input, tc.input) || req.InputTokens != tc.tokens {
				t.Errorf("parseEmbedRequest(%s) = input %q, %d tokens; want %q, %d", tc.body, req.Input, req.InputTokens, tc.input, tc.tokens)
			}
		})
	}
}
