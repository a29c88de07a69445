package azure

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"llmproxy/providers/openai"
	"llmproxy/router"
)

// DefaultAPIVersion is the api-version sent when the config sets none: the
// newest GA version of the data-plane inference API that has
// stream_options.include_usage.
const DefaultAPIVersion = "2024-10-21"

// Config configures one Azure OpenAI resource.
type Config struct {
	// Name is the configured provider name (a metrics label).
	Name string
	// BaseURL is the resource endpoint, e.g. https://myres.openai.azure.com.
	BaseURL string
	// APIKey is sent in the "api-key" header. Empty sends none, for
	// deployments that authenticate with a static Authorization header.
	APIKey string
	// APIVersion is the api-version query parameter; "" means
	// DefaultAPIVersion.
	APIVersion string
	// Headers are extra static headers for every upstream request.
	Headers map[string]string
}

// Client calls one Azure OpenAI resource. It is safe for concurrent use.
type Client struct {
	name  string
	inner *openai.Client
}

var (
	_ router.Provider = (*Client)(nil)
	_ router.Embedder = (*Client)(nil)
)

// New checks cfg and returns a Client that sends with hc.
func New(cfg Config, hc *http.Client) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("azure provider %q: base_url %q is not an absolute http(s) URL", cfg.Name, cfg.BaseURL)
	}
	version := cfg.APIVersion
	if version == "" {
		version = DefaultAPIVersion
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	inner, err := openai.New(openai.Config{
		Name: cfg.Name, BaseURL: base, APIKey: cfg.APIKey, Headers: cfg.Headers,
		URL:        func(path, model string) string { return deploymentURL(base, model, path, version) },
		AuthHeader: "api-key",
	}, hc)
	if err != nil {
		return nil, err
	}
	return &Client{name: cfg.Name, inner: inner}, nil
}

// deploymentURL is Azure's data-plane URL for one deployment, e.g.
// {base}/openai/deployments/{deployment}/chat/completions?api-version=...
// ("Azure OpenAI in Azure AI Foundry Models REST API reference > Chat
// completions > Create").
func deploymentURL(base, deployment, path, version string) string {
	return base + "/openai/deployments/" + url.PathEscape(deployment) + path + "?api-version=" + url.QueryEscape(version)
}

// Chat sends one chat completion to the deployment named by
// req.Target.Model. The body's "model" carries the same name; Azure ignores
// it.
func (c *Client) Chat(ctx context.Context, req *router.ChatRequest) (router.Stream, error) {
	s, err := c.inner.Chat(ctx, req)
	if err != nil {
		return nil, c.mapError(err)
	}
	if !req.Stream {
		return s, nil
	}
	return &stream{inner: s, c: c}, nil
}

// Embed sends one embeddings call to the deployment named by
// req.Target.Model; the reply is OpenAI's list, passed through.
func (c *Client) Embed(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
	resp, err := c.inner.Embed(ctx, req)
	if err != nil {
		return nil, c.mapError(err)
	}
	return resp, nil
}
