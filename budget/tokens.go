package budget

import (
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
	// ImageTokens is what one image part is reserved at: the largest
	// high-detail image on gpt-4o (scaled into 2048×2048, then its short
	// side to 768: 768×2048 is 2×4 tiles, 85 base + 8 × 170). Images are
	// not fetched or decoded on the request path. Settlement uses the
	// upstream's count.
	ImageTokens = 85 + 8*170
	// ImageTokensLow is an image part with detail "low".
	ImageTokensLow = 85
	// FileRefTokens is a file part that names an uploaded file (file_id)
	// instead of carrying its bytes: its size is unknown here, so this is
	// an estimate, not a bound; settlement uses the upstream's count.
	FileRefTokens = ImageTokens
)

// Inline file and audio parts are reserved from their size, an upper
// bound on what the upstream bills for them:
//   - a file part (file.file_data, a base64 data URL) is billed as the
//     text extracted from it plus, for PDFs, an image of each page. Text
//     costs at most one token per byte (a token is at least one byte of
//     UTF-8), and extracted text is no longer than the file for text
//     formats and for PDFs with plain content streams; page images cost
//     ≤ ImageTokens per page, and a page takes well over ImageTokens
//     bytes once it has content. A PDF built to beat that (thousands of
//     empty pages, or flate-compressed repetitive text) can bill more:
//     the reservation is then short by the difference and settlement
//     records the upstream's real count. The issue #17 case — a 400 KB
//     data URL (300 KB decoded) billed at 100,054 prompt tokens — is
//     reserved at 300 K, about three bytes per billed token.
//   - an audio part (input_audio.data, base64) costs a few tens of tokens
//     per second of sound, while every accepted format (wav, mp3) takes
//     at least a kilobyte per second: its decoded size bounds it by far.
//
// The decoded size of n base64 characters is at most 3n/4 bytes; the
// bound (bound.go) uses the literal's byte length including the data-URL
// prefix, which only adds.

// base64Tokens is the decoded size of n base64 characters, rounded up.
func base64Tokens(n int) int { return (3*n + 3) / 4 }

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
	codec *tokenCounter
}

// get returns the encoding's counter, nil when the codec cannot be built.
func (l *lazyCodec) get() *tokenCounter {
	l.once.Do(func() {
		c, err := tokenizer.Get(l.enc)
		if err == nil {
			l.codec = newTokenCounter(l.enc, c)
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

func (c *Counter) codec(model string) *tokenCounter {
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

func countWith(cd *tokenCounter, s string) int {
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

// countBytesWith is countWith(cd, string(b)) without the copy.
func countBytesWith(cd *tokenCounter, b []byte) int {
	if len(b) == 0 {
		return 0
	}
	if cd != nil {
		if n, err := cd.CountBytes(b); err == nil {
			return n
		}
	}
	return (len(b) + 3) / 4
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
