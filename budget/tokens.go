package budget

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/tiktoken-go/tokenizer"
)

// Token-count constants from OpenAI's cookbook ("How to count tokens with
// tiktoken") for the gpt-3.5/gpt-4/gpt-4o chat format, and fixed costs for
// what we do not tokenize.
const (
	// tokensPerMessage wraps every message (<|start|>role\n ... <|end|>\n).
	tokensPerMessage = 3
	// tokensPerName is added when a message carries a name.
	tokensPerName = 1
	// tokensReplyPrimer primes the assistant's reply (<|start|>assistant).
	tokensReplyPrimer = 3
	// tokensPerTool covers the framing of one tool definition in the
	// hidden system preamble OpenAI renders tools into.
	tokensPerTool = 8
	// tokensToolsPreamble is the fixed text that introduces tools.
	tokensToolsPreamble = 12
	// tokensPerToolCall covers the framing of one tool call in a message.
	tokensPerToolCall = 4
	// ImageTokens is what one image part is estimated at: a 1024×1024
	// high-detail image on gpt-4o (85 base + 4 tiles × 170). Images are
	// not fetched or decoded on the request path.
	ImageTokens = 765
	// ImageTokensLow is an image part with detail "low".
	ImageTokensLow = 85
)

// encodingFor maps a model (alias or upstream name) to its tokenizer
// encoding. tokenizer.ForModel rejects dated and new names such as
// gpt-5-mini-2025-08-07 and every non-OpenAI model, so we keep our own
// prefix table; anything unknown counts with o200k_base, the encoding of
// every current OpenAI model (close enough for admission estimates).
func encodingFor(model string) tokenizer.Encoding {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 { // "openai/gpt-4"
		m = m[i+1:]
	}
	switch {
	case strings.HasPrefix(m, "gpt-4o"), strings.HasPrefix(m, "gpt-4.1"),
		strings.HasPrefix(m, "gpt-4.5"), strings.HasPrefix(m, "gpt-5"),
		strings.HasPrefix(m, "o1"), strings.HasPrefix(m, "o3"), strings.HasPrefix(m, "o4"),
		strings.HasPrefix(m, "chatgpt-4o"):
		return tokenizer.O200kBase
	case strings.HasPrefix(m, "gpt-4"), strings.HasPrefix(m, "gpt-3.5"),
		strings.HasPrefix(m, "text-embedding-"):
		return tokenizer.Cl100kBase
	}
	return tokenizer.O200kBase
}

// Counter estimates token counts for admission and counts completion text
// when the upstream reports no usage. Its codecs are built once, on first
// use, and shared; a Counter is safe for concurrent use.
type Counter struct {
	o200k, cl100k lazyCodec
}

type lazyCodec struct {
	once  sync.Once
	enc   tokenizer.Encoding
	codec tokenizer.Codec
}

func (l *lazyCodec) get() tokenizer.Codec {
	l.once.Do(func() {
		c, err := tokenizer.Get(l.enc)
		if err == nil {
			l.codec = c
		}
	})
	return l.codec
}

// NewCounter returns a Counter. Building the codecs is deferred to the
// first count so a proxy without budgets pays nothing.
func NewCounter() *Counter {
	c := &Counter{}
	c.o200k.enc = tokenizer.O200kBase
	c.cl100k.enc = tokenizer.Cl100kBase
	return c
}

func (c *Counter) codec(model string) tokenizer.Codec {
	if encodingFor(model) == tokenizer.Cl100kBase {
		return c.cl100k.get()
	}
	return c.o200k.get()
}

// Text counts the tokens of s as model would encode it.
func (c *Counter) Text(model, s string) int {
	if s == "" {
		return 0
	}
	return countWith(c.codec(model), s)
}

func countWith(cd tokenizer.Codec, s string) int {
	if s == "" {
		return 0
	}
	if cd != nil {
		if n, err := cd.Count(s); err == nil {
			return n
		}
	}
	return (len(s) + 3) / 4 // about four bytes per token for English
}

// promptShape is the part of a chat body that costs prompt tokens.
type promptShape struct {
	Messages       []promptMessage   `json:"messages"`
	Tools          []json.RawMessage `json:"tools"`
	Functions      []json.RawMessage `json:"functions"`
	ResponseFormat struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

// PromptInfo is what admission needs to know about a request body.
type PromptInfo struct {
	// Tokens is the prompt's token count: exact when Exact is set, else
	// an upper bound (PromptBound) that the exact count never exceeds.
	Tokens int
	// Exact reports that Tokens is the tokenizer's count.
	Exact bool
	// Tools, Vision and JSONSchema say which capabilities the request
	// needs: tool definitions, image parts, response_format json_schema.
	Tools, Vision, JSONSchema bool
}

type promptMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	ToolCalls  []promptCall    `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

type promptCall struct {
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type contentPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL struct {
		Detail string `json:"detail"`
	} `json:"image_url"`
}

// Prompt counts the prompt tokens of a chat-completions body with the
// tokenizer: every message (role, name, text content and text parts, tool
// calls), a fixed cost per image part, the tool definitions, and the
// cookbook's per-message and reply-primer overhead. A body that does not
// decode counts by size, so a count is never zero for a non-empty request.
func (c *Counter) Prompt(model string, body []byte) int { return c.exactPrompt(model, body) }

// Inspect reports the capabilities the request needs and an upper bound on
// its prompt tokens (see PromptBound), without the tokenizer; the exact
// count is Prompt, which admission asks for only when a decision depends
// on it.
func (c *Counter) Inspect(model string, body []byte) PromptInfo { return inspect(body) }

func (c *Counter) exactPrompt(model string, body []byte) int {
	var p promptShape
	if err := json.Unmarshal(body, &p); err != nil {
		return (len(body) + 3) / 4
	}
	cd := c.codec(model)
	n := tokensReplyPrimer
	for _, m := range p.Messages {
		n += tokensPerMessage + countWith(cd, m.Role)
		if m.Name != "" {
			n += tokensPerName + countWith(cd, m.Name)
		}
		t, _ := contentTokens(cd, m.Content)
		n += t
		for _, tc := range m.ToolCalls {
			n += tokensPerToolCall + countWith(cd, tc.Function.Name) + countWith(cd, tc.Function.Arguments)
		}
		if m.ToolCallID != "" {
			n += countWith(cd, m.ToolCallID)
		}
	}
	defs := append(p.Tools, p.Functions...)
	if len(defs) > 0 {
		n += tokensToolsPreamble
		for _, d := range defs {
			// The JSON of a definition is a slight overestimate of the
			// TypeScript-like text OpenAI renders it into: fine for a
			// reservation that is settled to the real count.
			n += tokensPerTool + countWith(cd, string(d))
		}
	}
	return n
}

// contentTokens counts a message's content and reports image parts.
func contentTokens(cd tokenizer.Codec, raw json.RawMessage) (n int, image bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return countWith(cd, s), false
		}
		return (len(raw) + 3) / 4, false
	}
	var parts []contentPart
	if json.Unmarshal(raw, &parts) != nil {
		return (len(raw) + 3) / 4, false
	}
	for _, p := range parts {
		switch p.Type {
		case "text":
			n += countWith(cd, p.Text)
		case "refusal":
			n += countWith(cd, p.Refusal)
		case "image_url", "input_image":
			image = true
			if p.ImageURL.Detail == "low" {
				n += ImageTokensLow
			} else {
				n += ImageTokens
			}
		default: // input_audio, file: a flat cost rather than nothing
			n += ImageTokens
		}
	}
	return n, image
}
