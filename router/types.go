package router

import (
	"context"
	"time"
)

// Handler serves one chat completion, streamed or not.
type Handler interface {
	Serve(ctx context.Context, req *ChatRequest) (Stream, error)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, req *ChatRequest) (Stream, error)

// Serve calls f.
func (f HandlerFunc) Serve(ctx context.Context, req *ChatRequest) (Stream, error) { return f(ctx, req) }

// EmbedHandler serves one embeddings call. The Router is one; so is every
// stage of a Chain whose Handler also implements it.
type EmbedHandler interface {
	ServeEmbed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error)
}

// EmbedHandlerFunc adapts a function to an EmbedHandler.
type EmbedHandlerFunc func(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error)

// ServeEmbed calls f.
func (f EmbedHandlerFunc) ServeEmbed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
	return f(ctx, req)
}

// Middleware wraps a Handler. The first one in a Chain runs outermost. A
// stage that applies to embeddings too (usage, budget) returns a Handler
// that also implements EmbedHandler whenever the Handler it wraps does.
type Middleware func(Handler) Handler

// Chain wraps h in mws so that mws[0] runs first. Chat and embeddings take
// the same chain: when h is an EmbedHandler, so is the result, and a
// stage that serves chat only (memory, rag) passes embeddings straight to
// the stage inside it.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		inner := h
		h = mws[i](h)
		if ie, ok := inner.(EmbedHandler); ok {
			if _, ok := h.(EmbedHandler); !ok {
				h = chatOnly{Handler: h, embed: ie}
			}
		}
	}
	return h
}

// chatOnly is a chat-only stage in a chain that serves embeddings: it
// hands them to the next stage in.
type chatOnly struct {
	Handler
	embed EmbedHandler
}

func (c chatOnly) ServeEmbed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
	return c.embed.ServeEmbed(ctx, req)
}

// Stream hands out chunks in order; Next returns io.EOF after the last one.
// Close frees the upstream connection and is safe to call twice.
type Stream interface {
	Next() (*Chunk, error)
	Close() error
}

// Provider is all the router needs from an upstream adapter.
type Provider interface {
	Chat(ctx context.Context, req *ChatRequest) (Stream, error)
}

// Embedder is a provider that also serves /v1/embeddings.
type Embedder interface {
	Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error)
}

// Target is the deployment a provider is asked to serve: the router fills it
// in on a copy of the request before each attempt.
type Target struct {
	// Provider is the configured provider name (a metrics label).
	Provider string
	// Model is the upstream model name that replaces the alias in the body.
	Model string
}

// Chunk is one unit of a reply.
//
// Data holds OpenAI JSON exactly as it goes to the client: a
// chat.completion.chunk object for streamed replies, or a whole
// chat.completion object when Whole is set (a non-streamed upstream reply).
// Adapters for OpenAI-compatible upstreams pass the upstream bytes through
// untouched, so the hot path never re-encodes JSON.
type Chunk struct {
	Data []byte
	// Whole marks Data as a complete chat.completion body.
	Whole bool
	// Usage is set on the chunk that carries the upstream's usage report.
	Usage *Usage
	// UsageOnly marks the trailing usage chunk (choices: []) that OpenAI
	// sends only when stream_options.include_usage was asked.
	UsageOnly bool
	// Model is the upstream model that produced the chunk, when known.
	Model string
}

// Usage is the canonical token count of one reply.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	// CachedTokens is prompt_tokens_details.cached_tokens.
	CachedTokens int `json:"-"`
	// ReasoningTokens is completion_tokens_details.reasoning_tokens.
	ReasoningTokens int `json:"-"`
	// Estimated is true when the upstream reported nothing and we counted.
	Estimated bool `json:"-"`
	// Clamped is true when the upstream reported a count out of range
	// (negative or above MaxUsageTokens) and Clamp corrected it.
	Clamped bool `json:"-"`
}

// EmbedRequest is one /v1/embeddings call.
type EmbedRequest struct {
	// Model is the alias the client asked for.
	Model string
	// Body is the client's JSON body; adapters rewrite only "model".
	Body []byte
	// Input is the decoded input: one string per item. Token-array inputs
	// are left in Body and Input is nil.
	Input []string
	// InputTokens is the number of tokens given as token arrays (their
	// total length); 0 for string inputs.
	InputTokens int
	// PromptTokens is the input's token count, set by the first stage
	// that counts it (the budget guard) so the router need not estimate
	// it; 0 means not counted.
	PromptTokens int
	// EncodingFormat is "float" (default) or "base64".
	EncodingFormat string
	// Dimensions is the optional requested vector size (0 when absent).
	Dimensions int
	// Target is the deployment of the current attempt, set by the router
	// for the provider (Result.Target reports it).
	Target Target
	// Result is where the stages report, as on ChatRequest.
	Result *Result
}

// EmbedResponse is an OpenAI "list" of embeddings, already encoded.
type EmbedResponse struct {
	// Data is the JSON body to send to the client.
	Data  []byte
	Usage Usage
	// Vectors, when set, are the embeddings in input order as the
	// upstream encoded them (float32). The embed package's batcher
	// returns them instead of Data, and its cache stage renders Data.
	Vectors [][]float32
}

// Timeouts bounds one upstream attempt. Zero means no limit.
type Timeouts struct {
	// FirstToken bounds the wait for the first chunk.
	FirstToken time.Duration
	// Idle bounds the silence between two chunks.
	Idle time.Duration
	// Total bounds the whole call, stream included. The router applies it
	// (adapters need not).
	Total time.Duration
}
