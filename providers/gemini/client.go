package gemini

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tiktoken-go/tokenizer"

	"llmproxy/providers/upstream"
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
	name  string
	up    upstream.Client
	root  string // BaseURL + "/" + version
	now   func() time.Time
	newID func() string
	codec tokenizer.Codec
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
	c := &Client{name: cfg.Name, root: strings.TrimRight(base, "/") + "/" + version,
		now: time.Now, newID: randomID, codec: codec}
	c.up = upstream.Client{Name: cfg.Name, Key: cfg.APIKey, HTTP: hc, Headers: cfg.Headers, Status: c.statusError,
		Pinned:   map[string]string{"x-goog-api-key": cfg.APIKey},
		Redactor: upstream.NewRedactor(cfg.APIKey, cfg.Headers, base)}
	return c, nil
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
	call := c.up.Start(ctx, req.Timeouts.FirstToken)
	u := c.modelURL(req.Target.Model, "generateContent")
	if req.Stream {
		u = c.modelURL(req.Target.Model, "streamGenerateContent") + "?alt=sse"
	}
	resp, err := call.Post(u, body, req.Stream)
	if err != nil {
		return nil, err
	}
	meta := replyMeta{ID: "chatcmpl-" + c.newID(), Created: c.now().Unix(), Model: req.Target.Model}
	estimate := c.estimator(req)
	if req.Stream {
		return c.stream(call, resp.Body, req.Timeouts.Idle, newDecoder(meta, estimate, c.eventError)), nil
	}
	return call.Reply(resp, maxBody, false, func(raw []byte) (*router.Chunk, error) {
		return c.wholeChunk(raw, meta, estimate)
	})
}

// wholeChunk translates a plain reply into its one Chunk.
func (c *Client) wholeChunk(raw []byte, meta replyMeta, estimate func(string) router.Usage) (*router.Chunk, error) {
	var r genResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, c.up.Malformed("reply", err)
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
