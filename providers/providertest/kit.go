// Package providertest is the conformance kit every upstream adapter in
// providers/<vendor> passes. It sits beside the request path, not on it: the
// kit plays the upstream with an httptest server and checks that the adapter
// hands the router correct router.Chunks and *router.Errors.
//
// Scenarios are vendor-neutral: the kit knows the text, tool calls, usage and
// error kinds each one must produce, and a vendor's Fake renders them in its
// own wire format (recorded transcripts for replies, small renderers for
// errors). Adapters always emit OpenAI JSON, so the kit reads the chunks the
// same way for every vendor.
package providertest

import (
	"net/http"
	"testing"

	"llmproxy/router"
)

// Factory is what a vendor's tests hand to Run.
type Factory struct {
	// New builds the adapter under test, pointed at the fake upstream.
	New func(t *testing.T, u Upstream) router.Provider
	// Fake renders the kit's scenarios in the vendor's wire format.
	Fake Fake
	// Model is the upstream model the kit asks for; "" means "test-model".
	Model string
	// NoReasoningTokens is for vendors whose usage has no separate
	// reasoning count (Anthropic bills thinking inside output_tokens): the
	// kit then wants ReasoningTokens 0 where Replies lists some.
	NoReasoningTokens bool
}

// Upstream is where the adapter under test must send its requests.
type Upstream struct {
	// BaseURL is the fake's API root, ending in "/v1" with no slash.
	BaseURL string
	// APIKey is the credential the adapter must present.
	APIKey string
	// HTTPClient talks to the fake; the kit closes its connections when the
	// test ends.
	HTTPClient *http.Client
}

// Want is what the adapter's upstream request must ask for.
type Want struct {
	// Model is the upstream model name the body must carry.
	Model string
	// Stream reports whether a streamed reply was requested.
	Stream bool
	// APIKey is the credential the request must present.
	APIKey string
}

// Fake renders scenarios in one vendor's wire format.
type Fake interface {
	// Check reports what is wrong with the adapter's upstream request
	// (method, path, auth, body), or nil.
	Check(r *http.Request, body []byte, want Want) error
	// Reply returns the recorded transcript of one of Replies(), by name.
	Reply(name string) (Transcript, error)
	// Error renders an error reply with the HTTP status and a message.
	Error(status int, message string) Transcript
	// ErrorEvent renders one framed mid-stream error event carrying
	// message.
	ErrorEvent(message string) []byte
}

// Transcript is one upstream reply in wire format.
type Transcript struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	Header http.Header
	// Body is a plain (non-streamed) reply's body.
	Body []byte
	// Events are a stream's framed events (for SSE "data: {...}\n\n"). The
	// kit writes and flushes each on its own, sometimes one step at a time.
	Events [][]byte
	// Done are the frames that end a stream normally ("data: [DONE]\n\n").
	// The kit leaves them off to play an upstream that stops early.
	Done [][]byte
	// Model is the model name the reply reports; every chunk must carry it.
	Model string
}

// ToolCall is one reassembled tool call.
type ToolCall struct {
	// ID is the upstream's call ID; in Replies it is left empty, since IDs
	// are vendor-specific, and the kit only checks it is set and unique.
	ID        string
	Name      string
	Arguments string // JSON, compared after compaction
}

// Reply is a successful exchange every vendor records a transcript for.
type Reply struct {
	Name      string
	Stream    bool
	Text      string
	ToolCalls []ToolCall
	Usage     router.Usage
}

// The names of the replies in Replies.
const (
	ReplyText        = "text"         // plain reply with cached prompt tokens
	ReplyStreamText  = "stream_text"  // streamed text, then the usage chunk
	ReplyStreamTools = "stream_tools" // two streamed tool calls, reasoning tokens
)

// Greeting is the assistant text of the text replies.
const Greeting = "Hello! How can I help you today?"

// Replies lists the replies each Fake must serve and what the adapter must
// make of them. A vendor's transcripts encode exactly these values.
func Replies() []Reply {
	return []Reply{
		{Name: ReplyText, Text: Greeting,
			Usage: router.Usage{PromptTokens: 1200, CompletionTokens: 10, TotalTokens: 1210, CachedTokens: 1024}},
		{Name: ReplyStreamText, Stream: true, Text: Greeting,
			Usage: router.Usage{PromptTokens: 19, CompletionTokens: 10, TotalTokens: 29}},
		{Name: ReplyStreamTools, Stream: true,
			ToolCalls: []ToolCall{
				{Name: "get_weather", Arguments: `{"location":"Paris, France"}`},
				{Name: "get_weather", Arguments: `{"location":"London, UK"}`},
			},
			Usage: router.Usage{PromptTokens: 82, CompletionTokens: 250, TotalTokens: 332, ReasoningTokens: 192}},
	}
}

// TestKey is the credential the kit configures. Fakes may echo it in error
// bodies; the kit checks it never reaches an error.
const TestKey = "sk-providertest-5ecret-0123456789abcdef"
