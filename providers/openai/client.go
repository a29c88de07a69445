package openai

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"llmproxy/providers/upstream"
	"llmproxy/router"
)

// Size bounds for bodies read whole. A chat completion is a few KiB; an
// embeddings list of 2048 inputs × 3072 float dimensions as JSON text is
// well over 100 MiB, so its bound is much larger.
const (
	maxChatBody  = 32 << 20
	maxEmbedBody = 256 << 20
)

// Config configures one OpenAI-compatible provider.
type Config struct {
	// Name is the configured provider name (a metrics label, used in
	// messages).
	Name string
	// BaseURL is the API root including the version, e.g.
	// https://api.openai.com/v1 or http://localhost:8000/v1.
	BaseURL string
	// APIKey is sent as a bearer token when non-empty. Local servers need
	// none.
	APIKey string
	// Headers are extra static headers for every upstream request. They
	// cannot replace Content-Type or Accept, and set Authorization only
	// when APIKey is empty (for gateways that want another scheme).
	Headers map[string]string
	// URL, when set, builds the upstream URL for an API path
	// ("/chat/completions" or "/embeddings") and the request's upstream
	// model; BaseURL is then only checked. Azure OpenAI uses it to put the
	// deployment in the path and api-version in the query.
	URL func(path, model string) string
	// AuthHeader, when set, carries APIKey as-is in this header instead of
	// "Authorization: Bearer <key>" (Azure's "api-key").
	AuthHeader string
}

// Client calls one OpenAI-compatible upstream. It is safe for concurrent
// use.
type Client struct {
	name     string
	up       upstream.Client
	chatURL  string
	embedURL string
	// rerankURL is {base}/rerank (rerank.go).
	rerankURL string
	needsKey  bool // empty key against api.openai.com: fail without a call
	now       func() time.Time
	maxChat   int64
	maxEmbed  int64
	urlFor    func(path, model string) string
}

var (
	_ router.Provider = (*Client)(nil)
	_ router.Embedder = (*Client)(nil)
)

// New checks cfg and returns a Client that sends its requests with hc
// (http.DefaultClient when nil).
func New(cfg Config, hc *http.Client) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("openai provider %q: base_url %q is not an absolute http(s) URL", cfg.Name, cfg.BaseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	c := &Client{
		name:      cfg.Name,
		chatURL:   base + "/chat/completions",
		embedURL:  base + "/embeddings",
		rerankURL: base + "/rerank",
		needsKey:  cfg.APIKey == "" && strings.EqualFold(u.Hostname(), "api.openai.com"),
		now:       time.Now,
		maxChat:   maxChatBody,
		maxEmbed:  maxEmbedBody,
		urlFor:    cfg.URL,
	}
	c.up = upstream.Client{Name: cfg.Name, Key: cfg.APIKey, HTTP: hc, Headers: cfg.Headers, Status: c.statusError,
		Redactor: upstream.NewRedactor(cfg.APIKey, cfg.Headers, cfg.BaseURL)}
	switch {
	case cfg.APIKey != "" && cfg.AuthHeader != "":
		c.up.Pinned = map[string]string{cfg.AuthHeader: cfg.APIKey}
	case cfg.APIKey != "":
		c.up.Pinned = map[string]string{"Authorization": "Bearer " + cfg.APIKey}
	}
	return c, nil
}

// Chat sends one chat completion. For a streamed request it returns once
// the upstream's headers arrive; for a plain one it reads the whole reply
// and returns a one-chunk Stream. Both are bounded by req.Timeouts: one
// timer covers the whole attempt, FirstToken until the first event (for a
// plain reply, until the reply is read), then Idle between events.
func (c *Client) Chat(ctx context.Context, req *router.ChatRequest) (router.Stream, error) {
	if c.needsKey {
		return nil, c.up.MissingKey()
	}
	call := c.up.Start(ctx, req.Timeouts.FirstToken)
	resp, err := call.Post(c.endpoint(c.chatURL, "/chat/completions", req.Target.Model), chatBody(req), req.Stream)
	if err != nil {
		return nil, err
	}
	if !req.Stream || upstream.IsJSON(resp) {
		// Some compatible servers answer a stream request that fails early
		// with a JSON body and status 200; wholeChunk reports its error.
		return call.Reply(resp, c.maxChat, req.Stream, c.wholeChunk)
	}
	return c.stream(call, resp.Body, req.Timeouts.Idle), nil
}

// Embed forwards an embeddings call with only "model" rewritten; the
// client's encoding_format and dimensions pass through untouched.
func (c *Client) Embed(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
	if c.needsKey {
		return nil, c.up.MissingKey()
	}
	call := c.up.Start(ctx, 0)
	resp, err := call.Post(c.endpoint(c.embedURL, "/embeddings", req.Target.Model), embedBody(req), false)
	if err != nil {
		return nil, err
	}
	body, err := call.Read(resp, c.maxEmbed)
	if err != nil {
		return nil, err
	}
	u, err := c.embedUsage(body)
	if err != nil {
		return nil, err
	}
	return &router.EmbedResponse{Data: body, Usage: u}, nil
}

// endpoint is the URL for an API path: fixed (BaseURL + path) unless
// Config.URL builds it per model.
func (c *Client) endpoint(fixed, path, model string) string {
	if c.urlFor != nil {
		return c.urlFor(path, model)
	}
	return fixed
}
