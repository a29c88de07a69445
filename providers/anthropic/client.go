package anthropic

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"llmproxy/providers/upstream"
	"llmproxy/router"
)

// Defaults for Config fields left empty.
const (
	DefaultBaseURL    = "https://api.anthropic.com"
	DefaultAPIVersion = "2023-06-01"
	// DefaultMaxTokens is sent as max_tokens when the client set neither
	// max_tokens nor max_completion_tokens: Anthropic requires the field,
	// OpenAI does not. 4096 fits every current Claude model's output limit.
	DefaultMaxTokens = 4096
)

// maxReplyBody bounds a non-streamed reply; a Messages reply is a few KiB.
const maxReplyBody = 32 << 20

// Config configures one Anthropic provider.
type Config struct {
	// Name is the configured provider name (a metrics label, used in
	// messages).
	Name string
	// BaseURL is the API root, with or without "/v1"; empty means
	// DefaultBaseURL.
	BaseURL string
	// APIKey is sent as x-api-key.
	APIKey string
	// APIVersion is the anthropic-version header; empty means
	// DefaultAPIVersion.
	APIVersion string
	// Headers are extra static headers, for example anthropic-beta. They
	// cannot replace the auth, version or content headers.
	Headers map[string]string
	// MaxTokens is max_tokens when the client sent none; 0 means
	// DefaultMaxTokens.
	MaxTokens int
}

// Client calls Anthropic's Messages API and speaks OpenAI to the router. It
// is safe for concurrent use.
type Client struct {
	name      string
	up        upstream.Client
	url       string // .../v1/messages
	maxTokens int
	needsKey  bool // empty key against api.anthropic.com: fail without a call
	now       func() time.Time
}

var _ router.Provider = (*Client)(nil)

// New checks cfg and returns a Client that sends its requests with hc
// (http.DefaultClient when nil).
func New(cfg Config, hc *http.Client) (*Client, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("anthropic provider %q: base_url %q is not an absolute http(s) URL", cfg.Name, base)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	// Operators write the root with or without the version, as they do
	// for OpenAI ("https://api.anthropic.com/v1/").
	base = strings.TrimSuffix(strings.TrimRight(base, "/"), "/v1")
	version := cfg.APIVersion
	if version == "" {
		version = DefaultAPIVersion
	}
	c := &Client{
		name:      cfg.Name,
		url:       base + "/v1/messages",
		maxTokens: cfg.MaxTokens,
		needsKey:  cfg.APIKey == "" && strings.EqualFold(u.Hostname(), "api.anthropic.com"),
		now:       time.Now,
	}
	c.up = upstream.Client{Name: cfg.Name, Key: cfg.APIKey, HTTP: hc, Headers: cfg.Headers, Status: c.statusError,
		Pinned:   map[string]string{"anthropic-version": version, "x-api-key": cfg.APIKey},
		Redactor: upstream.NewRedactor(cfg.APIKey, cfg.Headers, cfg.BaseURL)}
	if c.maxTokens <= 0 {
		c.maxTokens = DefaultMaxTokens
	}
	return c, nil
}

// Chat translates the OpenAI request, sends it to the Messages API and
// returns OpenAI chunks: one Whole chat.completion for a plain request, or
// chat.completion.chunk events for a stream. Both are bounded by
// req.Timeouts: one timer covers the attempt, FirstToken until the first
// event (for a plain reply, until it is read), then Idle between events.
func (c *Client) Chat(ctx context.Context, req *router.ChatRequest) (router.Stream, error) {
	if c.needsKey {
		return nil, c.up.MissingKey()
	}
	tr, terr := translateRequest(req.Body, requestOptions{Model: req.Target.Model, Stream: req.Stream,
		MaxTokens: req.MaxTokens, DefaultMaxTokens: c.maxTokens})
	if terr != nil {
		terr.Provider = c.name
		return nil, terr
	}
	call := c.up.Start(ctx, req.Timeouts.FirstToken)
	resp, err := call.Post(c.url, tr.Body, req.Stream)
	if err != nil {
		return nil, err
	}
	if !req.Stream || upstream.IsJSON(resp) {
		return call.Reply(resp, maxReplyBody, req.Stream, func(body []byte) (*router.Chunk, error) {
			return c.wholeChunk(body, tr.JSONTool)
		})
	}
	return c.stream(call, resp.Body, req.Timeouts.Idle, tr.JSONTool), nil
}

// wholeChunk translates a plain Messages reply into its one Chunk.
func (c *Client) wholeChunk(body []byte, jsonTool bool) (*router.Chunk, error) {
	out, u, model, err := translateResponse(body, jsonTool, c.now())
	if err != nil {
		var we *wireErrorReply
		if errors.As(err, &we) {
			return nil, c.eventError(we.raw)
		}
		return nil, c.up.Malformed("reply", err)
	}
	return &router.Chunk{Data: out, Whole: true, Usage: u, Model: model}, nil
}
