package router

import (
	"context"
	"testing"
)

// TestPlanInputExactPrompt: the router plans on the guard's prompt bound
// and asks for the exact count only when a decision could differ.
func TestPlanInputExactPrompt(t *testing.T) {
	p := &fakeProvider{}
	tests := []struct {
		name   string
		routes []Route
		want   int // PromptTokens planned on
		calls  int
	}{
		{"no window", []Route{{Alias: "a", Deployments: []Deployment{{Provider: "p", Model: "m", Client: p}}}}, 900, 0},
		{"window holds the bound", []Route{{Alias: "a", ContextWindow: 2000, Deployments: []Deployment{{Provider: "p", Model: "m", Client: p}}}}, 900, 0},
		{"window below the bound", []Route{{Alias: "a", ContextWindow: 1000, Deployments: []Deployment{{Provider: "p", Model: "m", Client: p}}}}, 300, 1},
		{"fallback's window", []Route{
			{Alias: "a", Fallbacks: []string{"b"}, Deployments: []Deployment{{Provider: "p", Model: "m", Client: p}}},
			{Alias: "b", ContextWindow: 1000, Deployments: []Deployment{{Provider: "p", Model: "n", Client: p}}},
		}, 300, 1},
		{"cost strategy", []Route{{Alias: "a", Strategy: StrategyCost, Deployments: []Deployment{{Provider: "p", Model: "m", Client: p}}}}, 300, 1},
		{"tpm room below the bound", []Route{{Alias: "a", Deployments: []Deployment{{Provider: "p", Model: "m", Client: p, TPM: 1000}}}}, 300, 1},
		{"tpm room holds the bound", []Route{{Alias: "a", Deployments: []Deployment{{Provider: "p", Model: "m", Client: p, TPM: 100000}}}}, 900, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(Options{Routes: tc.routes})
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			req := &ChatRequest{Model: "a", Body: []byte(`{"model":"a","messages":[]}`), MaxTokens: 200,
				PromptTokens: 900, PromptTokensExact: func() int { calls++; return 300 }}
			in := r.planInput(context.Background(), req)
			if in.PromptTokens != tc.want || calls != tc.calls {
				t.Errorf("planInput: PromptTokens = %d after %d exact counts; want %d after %d", in.PromptTokens, calls, tc.want, tc.calls)
			}
		})
	}
}
