package openai

import (
	"testing"

	"llmproxy/router"
)

// TestChatBodyCompletionCap (issue 17 item 1): a cap the budget imposed
// on a body without one is written in the field the upstream model takes;
// a client's own cap field, or no cap at all, leaves the body alone.
func TestChatBodyCompletionCap(t *testing.T) {
	tests := []struct {
		name, body, model string
		cap               int
		want              string
	}{
		{"no cap", `{"model":"a","messages":[]}`, "gpt-4o-mini", 0, `{"model":"gpt-4o-mini","messages":[]}`},
		{"chat model", `{"model":"a","messages":[]}`, "gpt-4o-mini", 50, `{"model":"gpt-4o-mini","messages":[],"max_tokens":50}`},
		{"o-series", `{"model":"a","messages":[]}`, "o3-mini", 50, `{"model":"o3-mini","messages":[],"max_completion_tokens":50}`},
		{"gpt-5 behind a vendor prefix", `{"model":"a","messages":[]}`, "openai/gpt-5-mini", 50, `{"model":"openai/gpt-5-mini","messages":[],"max_completion_tokens":50}`},
		{"not o-series", `{"model":"a","messages":[]}`, "ollama-llama3", 50, `{"model":"ollama-llama3","messages":[],"max_tokens":50}`},
		{"client field wins", `{"model":"a","max_tokens":50,"messages":[]}`, "o3-mini", 50, `{"model":"o3-mini","max_tokens":50,"messages":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := router.ParseChatRequest([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Target.Model, req.CompletionCap = tc.model, tc.cap
			if got := string(chatBody(req)); got != tc.want {
				t.Errorf("chatBody = %s; want %s", got, tc.want)
			}
		})
	}
}
