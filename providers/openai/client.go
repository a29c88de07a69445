package openai

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
	name      string
	key       string
	chatURL   string
	embedURL  string
	headers   map[string]string
	needsKey  bool // empty key against api.openai.com: fail without a call
	hc        *http.Client
	now       func() time.Time
	maxChat   int64
	maxEmbed  int64
	authName  string
	authValue string
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
		name:     cfg.Name,
		key:      cfg.APIKey,
		chatURL:  base + "/chat/completions",
		embedURL: base + "/embeddings",
		headers:  cfg.Headers,
		needsKey: cfg.APIKey == "" && strings.EqualFold(u.Hostname(), "api.openai.com"),
		hc:       hc,
		now:      time.Now,
		maxChat:  maxChatBody,
		maxEmbed: maxEmbedBody,
		authName: "Authorization",
		urlFor:   cfg.URL,
	}
	switch {
	case cfg.APIKey != "" && cfg.AuthHeader != "":
		c.authName, c.authValue = cfg.AuthHeader, cfg.APIKey
	case cfg.APIKey != "":
		c.authValue = "Bearer " + cfg.APIKey
	}
	return c, nil
}

// Chat sends one chat completion. For a streamed request it returns once
// the upstream's headers arrive; for a plain one it reads the whole reply
// and returns a one-chunk Stream. Both are bounded by req.Timeouts.
func (c *Client) Chat(ctx context.Context, req *router.ChatRequest) (router.Stream, error) {
	if c.needsKey {
		return nil, c.noKey()
	}
	cctx, cancel := context.WithCancelCause(ctx)
	wd := newWatchdog(cancel)
	// One timer covers the whole attempt: FirstToken until the first event
	// (for a plain reply, until the reply is read), then Idle between events.
	wd.arm(req.Timeouts.FirstToken, errFirstToken)
	release := func() {
		wd.stop()
		cancel(errClosed)
	}
	fail := func(err error) (router.Stream, error) {
		release()
		return nil, err
	}
	resp, err := c.post(cctx, c.endpoint(c.chatURL, "/chat/completions", req.Target.Model), chatBody(req), req.Stream)
	if err != nil {
		return fail(c.transportError(cctx, ctx, err))
	}
	if resp.StatusCode/100 != 2 {
		e := c.statusError(resp)
		resp.Body.Close()
		return fail(e)
	}
	if !req.Stream || isJSON(resp.Header.Get("Content-Type")) {
		// Some compatible servers answer a stream request that fails early
		// with a JSON body and status 200; wholeChunk reports its error.
		body, err := c.readBody(cctx, ctx, resp.Body, c.maxChat)
		resp.Body.Close()
		if err != nil {
			return fail(err)
		}
		ch, err := c.wholeChunk(body)
		if err == nil && req.Stream {
			err = &router.Error{Kind: router.KindUpstream, Provider: c.name,
				Message: fmt.Sprintf("provider %q answered a stream request without streaming", c.name)}
		}
		if err != nil {
			return fail(err)
		}
		release() // the reply is complete: nothing left to time or cancel
		return &whole{chunk: ch}, nil
	}
	return newStream(c, cctx, ctx, cancel, wd, resp.Body, req.Timeouts.Idle), nil
}

// Embed forwards an embeddings call with only "model" rewritten; the
// client's encoding_format and dimensions pass through untouched.
func (c *Client) Embed(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
	if c.needsKey {
		return nil, c.noKey()
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(errClosed)
	resp, err := c.post(cctx, c.endpoint(c.embedURL, "/embeddings", req.Target.Model), embedBody(req), false)
	if err != nil {
		return nil, c.transportError(cctx, ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, c.statusError(resp)
	}
	body, err := c.readBody(cctx, ctx, resp.Body, c.maxEmbed)
	if err != nil {
		return nil, err
	}
	u, err := c.embedUsage(body)
	if err != nil {
		return nil, err
	}
	return &router.EmbedResponse{Data: body, Usage: u}, nil
}

// post builds a fresh upstream request: nothing from the client's HTTP
// request is forwarded, so its auth, OpenAI-Organization or X-Stainless-*
// headers can never reach the upstream.
func (c *Client) post(ctx context.Context, u string, body []byte, stream bool) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
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
	if c.authValue != "" {
		hr.Header.Set(c.authName, c.authValue)
	}
	return c.hc.Do(hr)
}

// endpoint is the URL for an API path: fixed (BaseURL + path) unless
// Config.URL builds it per model.
func (c *Client) endpoint(fixed, path, model string) string {
	if c.urlFor != nil {
		return c.urlFor(path, model)
	}
	return fixed
}

// readBody reads a whole response body, at most limit bytes.
func (c *Client) readBody(cctx, parent context.Context, r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, c.transportError(cctx, parent, err)
	}
	if int64(len(body)) > limit {
		return nil, &router.Error{Kind: router.KindUpstream, Provider: c.name,
			Message: fmt.Sprintf("provider %q sent a reply larger than %d bytes", c.name, limit)}
	}
	return body, nil
}

func (c *Client) noKey() *router.Error {
	return &router.Error{Kind: router.KindUpstream, Provider: c.name,
		Message: fmt.Sprintf("provider %q has no API key configured", c.name)}
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
var errClosed = errors.New("openai: stream closed")
