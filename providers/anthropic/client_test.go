package anthropic

import (
	"testing"

	"llmproxy/providers/providertest"
	"llmproxy/router"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Factory{
		New: func(t *testing.T, u providertest.Upstream) router.Provider {
			c, err := New(Config{Name: "anthropic-test", BaseURL: u.BaseURL, APIKey: u.APIKey}, u.HTTPClient)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		Fake:              fake{},
		Model:             "claude-sonnet-4-5",
		NoReasoningTokens: true,
	})
}
