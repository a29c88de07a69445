package anthropic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

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
	key       string
	version   string
	url       string // .../v1/messages
	headers   map[string]string
	maxTokens int
	needsKey  bool // empty key against api.anthropic.com: fail without a call
	hc        *http.Client
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
	c := &Client{
		name:      cfg.Name,
		key:       cfg.APIKey,
		version:   cfg.APIVersion,
		url:       base + "/v1/messages",
		headers:   cfg.Headers,
		maxTokens: cfg.MaxTokens,
		needsKey:  cfg.APIKey == "" && strings.EqualFold(u.Hostname(), "api.anthropic.com"),
		hc:        hc,
		now:       time.Now,
	}
	if c.version == "" {
		c.version = DefaultAPIVersion
	}
	if c.maxTokens <= 0 {
		c.maxTokens = DefaultMaxTokens
	}
	return c, nil
}

// Chat translates the OpenAI request, sends it to the Messages API and
// returns OpenAI chunks: one Whole chat.completion for a plain request, or
// chat.completion.chunk events for a stream. Both are bounded by
// req.Timeouts.
func (c *Client) Chat(ctx context.Context, req *router.ChatRequest) (router.Stream, error) {
	if c.needsKey {
		return nil, &router.Error{Kind: router.KindUpstream, Provider: c.name,
			Message: fmt.Sprintf("provider %q has no API key configured", c.name)}
	}
	tr, terr := translateRequest(req.Body, requestOptions{Model: req.Target.Model, Stream: req.Stream,
		MaxTokens: req.MaxTokens, DefaultMaxTokens: c.maxTokens})
	if terr != nil {
		terr.Provider = c.name
		return nil, terr
	}
	cctx, cancel := context.WithCancelCause(ctx)
	wd := newWatchdog(cancel)
	// One timer covers the attempt: FirstToken until the first event (for
	// a plain reply, until it is read), then Idle between events.
	wd.arm(req.Timeouts.FirstToken, errFirstToken)
	fail := func(err error) (router.Stream, error) {
		wd.stop()
		cancel(errClosed)
		return nil, err
	}
	resp, err := c.post(cctx, tr.Body, req.Stream)
	if err != nil {
		return fail(c.transportError(cctx, ctx, err))
	}
	if resp.StatusCode/100 != 2 {
		e := c.statusError(resp)
		resp.Body.Close()
		return fail(e)
	}
	if !req.Stream || isJSON(resp.Header.Get("Content-Type")) {
		body, err := c.readBody(cctx, ctx, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fail(err)
		}
		ch, err := c.wholeChunk(body, tr.JSONTool)
		if err == nil && req.Stream {
			err = &router.Error{Kind: router.KindUpstream, Provider: c.name,
				Message: fmt.Sprintf("provider %q answered a stream request without streaming", c.name)}
		}
		if err != nil {
			return fail(err)
		}
		wd.stop()
		cancel(errClosed)
		return &whole{chunk: ch}, nil
	}
	return newStream(streamConfig{c: c, ctx: cctx, parent: ctx, cancel: cancel, wd: wd, body: resp.Body,
		idle: req.Timeouts.Idle, jsonTool: tr.JSONTool}), nil
}

// post builds a fresh upstream request: nothing from the client's HTTP
// request is forwarded, so its Authorization, OpenAI-Organization or
// X-Stainless-* headers never reach Anthropic.
func (c *Client) post(ctx context.Context, body []byte, stream bool) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range c.headers {
		hr.Header.Set(k, v)
	}
	hr.Header.Set("Content-Type", "application/json")
	if stream {
		hr.Header.Set("Accept", "text/event-stream")
	} else {
		hr.Header.Set("Accept", "application/json")
	}
	hr.Header.Set("anthropic-version", c.version)
	if c.key != "" {
		hr.Header.Set("x-api-key", c.key)
	}
	return c.hc.Do(hr)
}

// readBody reads a whole reply, at most maxReplyBody bytes.
func (c *Client) readBody(cctx, parent context.Context, r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxReplyBody+1))
	if err != nil {
		return nil, c.transportError(cctx, parent, err)
	}
	if len(body) > maxReplyBody {
		return nil, &router.Error{Kind: router.KindUpstream, Provider: c.name,
			Message: fmt.Sprintf("provider %q sent a reply larger than %d bytes", c.name, maxReplyBody)}
	}
	return body, nil
}

// wholeChunk translates a plain Messages reply into its one Chunk.
func (c *Client) wholeChunk(body []byte, jsonTool bool) (*router.Chunk, error) {
	out, u, model, err := translateResponse(body, jsonTool, c.now())
	if err != nil {
		var we *wireErrorReply
		if errors.As(err, &we) {
			return nil, c.eventError(we.raw)
		}
		return nil, c.malformed("reply", err)
	}
	return &router.Chunk{Data: out, Whole: true, Usage: u, Model: model}, nil
}

func isJSON(contentType string) bool {
	return strings.HasPrefix(strings.TrimSpace(contentType), "application/json")
}

// whole is the one-chunk Stream of a plain reply.
type whole struct {
	chunk *router.Chunk
	done  bool
}

func (w *whole) Next() (*router.Chunk, error) {
	if w.done {
		return nil, io.EOF
	}
	w.done = true
	return w.chunk, nil
}

func (w *whole) Close() error { return nil }

// errClosed is the cancel cause when we end an attempt ourselves, so a
// late read error is not mistaken for a client cancel or a timeout.
var errClosed = errors.New("anthropic: stream closed")
