package azure

import (
	"testing"

	"llmproxy/providers/providertest"
	"llmproxy/router"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Factory{
		Fake:  fake{},
		Model: "gpt4o-prod",
		New: func(t *testing.T, u providertest.Upstream) router.Provider {
			c, err := New(Config{Name: "azure", BaseURL: u.BaseURL, APIKey: u.APIKey}, u.HTTPClient)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	})
}
