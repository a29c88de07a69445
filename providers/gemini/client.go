package gemini

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tiktoken-go/tokenizer"

	"llmproxy/router"
)

// DefaultBaseURL is the Generative Language API's root.
const DefaultBaseURL = "https://generativelanguage.googleapis.com"

// defaultVersion is the API version in the path; v1beta has
// system_instruction, tools and responseSchema.
const defaultVersion = "v1beta"

// maxBody bounds a plain reply or an embeddings list read whole.
const maxBody = 256 << 20

// Config configures one Gemini provider.
type Config struct {
	// Name is the configured provider name (a metrics label).
	Name string
	// BaseURL is the API root without the version; "" means
	// DefaultBaseURL.
	BaseURL string
	// APIKey is sent in the x-goog-api-key header.
	APIKey string
	// APIVersion is the path version; "" means v1beta.
	APIVersion string
	// Headers are extra static headers for every upstream request.
	Headers map[string]string
}

// Client calls the Gemini API. It is safe for concurrent use.
type Client struct {
	name    string
	key     string
	root    string // BaseURL + "/" + version
	headers map[string]string
	hc      *http.Client
	now     func() time.Time
	newID   func() string
	codec   tokenizer.Codec
}

var (
	_ router.Provider = (*Client)(nil)
	_ router.Embedder = (*Client)(nil)
)

// New checks cfg and returns a Client that sends with hc
// (http.DefaultClient when nil).
func New(cfg Config, hc *http.Client) (*Client, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("gemini provider %q: base_url %q is not an absolute http(s) URL", cfg.Name, cfg.BaseURL)
	}
	version := cfg.APIVersion
	if version == "" {
		version = defaultVersion
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	codec, err := tokenizer.Get(tokenizer.O200kBase)
	if err != nil {
		return nil, fmt.Errorf("gemini provider %q: tokenizer: %w", cfg.Name, err)
	}
	return &Client{name: cfg.Name, key: cfg.APIKey, root: strings.TrimRight(base, "/") + "/" + version,
		headers: cfg.Headers, hc: hc, now: time.Now, newID: randomID, codec: codec}, nil
}

// modelURL is the method URL for a model: "gemini-2.5-flash" becomes
// models/gemini-2.5-flash; names with a collection ("tunedModels/x") are
// used as given.
func (c *Client) modelURL(model, method string) string {
	if !strings.Contains(model, "/") {
		model = "models/" + url.PathEscape(model)
	}
	return c.root + "/" + model + ":" + method
}

// Chat sends one chat completion as generateContent, or as
// streamGenerateContent?alt=sse when req.Stream. Both are bounded by
// req.Timeouts: FirstToken until the reply (or first event), then Idle
// between events.
func (c *Client) Chat(ctx context.Context, req *router.ChatRequest) (router.Stream, error) {
	body, err := translateRequest(req)
	if err != nil {
		return nil, withProvider(err, c.name)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	wd := newWatchdog(cancel)
	wd.arm(req.Timeouts.FirstToken, errFirstToken)
	release := func() {
		wd.stop()
		cancel(errClosed)
	}
	u := c.modelURL(req.Target.Model, "generateContent")
	if req.Stream {
		u = c.modelURL(req.Target.Model, "streamGenerateContent") + "?alt=sse"
	}
	resp, err := c.post(cctx, u, body, req.Stream)
	if err != nil {
		release()
		return nil, c.transportError(cctx, ctx, err)
	}
	if resp.StatusCode/100 != 2 {
		e := c.statusError(resp)
		resp.Body.Close()
		release()
		return nil, e
	}
	meta := replyMeta{ID: "chatcmpl-" + c.newID(), Created: c.now().Unix(), Model: req.Target.Model}
	estimate := c.estimator(req)
	if req.Stream {
		return newStream(c, cctx, ctx, cancel, wd, resp.Body, req.Timeouts.Idle, newDecoder(meta, estimate, c.eventError)), nil
	}
	defer release()
	raw, err := c.readBody(cctx, ctx, resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	ch, err := c.wholeChunk(raw, meta, estimate)
	if err != nil {
		return nil, err
	}
	return &whole{chunk: ch}, nil
}

// wholeChunk translates a plain reply into its one Chunk.
func (c *Client) wholeChunk(raw []byte, meta replyMeta, estimate func(string) router.Usage) (*router.Chunk, error) {
	var r genResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, &router.Error{Kind: router.KindUpstream, Provider: c.name,
			Message: fmt.Sprintf("provider %q sent a malformed reply", c.name), Err: err}
	}
	if r.Error != nil {
		return nil, c.eventError(r.Error)
	}
	if r.ModelVersion != "" {
		meta.Model = r.ModelVersion
	}
	if r.ResponseID != "" {
		meta.ID = "chatcmpl-" + r.ResponseID
	}
	b, u, err := completion(&r, meta, estimate)
	if err != nil {
		return nil, withProvider(err, c.name)
	}
	return &router.Chunk{Data: b, Whole: true, Usage: &u, Model: meta.Model}, nil
}

// estimator counts usage with o200k_base when Gemini reports none: the
// prompt's message texts and the completion text, marked Estimated.
func (c *Client) estimator(req *router.ChatRequest) func(string) router.Usage {
	return func(completion string) router.Usage {
		u := router.Usage{CompletionTokens: c.count(completion), Estimated: true}
		if msgs, err := req.Messages(); err == nil {
			for _, m := range msgs {
				u.PromptTokens += 3 + c.count(m.Text())
			}
		}
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
		return u
	}
}

func (c *Client) count(s string) int {
	n, _ := c.codec.Count(s) // fails only on a regexp timeout, and ours has none
	return n
}

// post builds a fresh upstream request; nothing from the client's HTTP
// request is forwarded.
func (c *Client) post(ctx context.Context, u string, body []byte, stream bool) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range c.headers {
		hr.Header.Set(k, v)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	if stream {
		hr.Header.Set("Accept", "text/event-stream")
	}
	if c.key != "" {
		hr.Header.Set("x-goog-api-key", c.key)
	}
	return c.hc.Do(hr)
}

func (c *Client) readBody(cctx, parent context.Context, r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, c.transportError(cctx, parent, err)
	}
	if len(b) > maxBody {
		return nil, &router.Error{Kind: router.KindUpstream, Provider: c.name,
			Message: fmt.Sprintf("provider %q sent a reply larger than %d bytes", c.name, maxBody)}
	}
	return b, nil
}

// withProvider stamps a translation error with the provider's name.
func withProvider(err error, name string) error {
	if e, ok := err.(*router.Error); ok && e.Provider == "" {
		e.Provider = name
	}
	return err
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
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
