package chunk

import (
	"fmt"
	"strings"

	"github.com/tiktoken-go/tokenizer"
)

// The defaults are the seed's 500/50. OpenAI's "auto" strategy (800/400)
// is what OpenAI does, not ours; a request that wants it says "static".
const (
	DefaultMaxTokens     = 500
	DefaultOverlapTokens = 50
	// MinMaxTokens and MaxMaxTokens bound max_chunk_size_tokens as
	// OpenAI's static chunking strategy does.
	MinMaxTokens = 100
	MaxMaxTokens = 4096
)

// Options sizes the chunks. The zero Options means the defaults (500/50);
// with MaxTokens set, OverlapTokens is taken as given, so 0 means no
// overlap (as OpenAI's chunk_overlap_tokens: 0 does).
type Options struct {
	MaxTokens, OverlapTokens int
}

func (o Options) withDefaults() Options {
	if o.MaxTokens == 0 && o.OverlapTokens == 0 {
		return Options{DefaultMaxTokens, DefaultOverlapTokens}
	}
	if o.MaxTokens == 0 {
		o.MaxTokens = DefaultMaxTokens
	}
	return o
}

// Validate checks o against OpenAI's static strategy bounds:
// max_chunk_size_tokens in 100..4096, chunk_overlap_tokens at least 0 and
// at most half of it. The zero Options is valid.
func (o Options) Validate() error {
	o = o.withDefaults()
	if o.MaxTokens < MinMaxTokens || o.MaxTokens > MaxMaxTokens {
		return fmt.Errorf("max_chunk_size_tokens %d is out of range: want %d to %d", o.MaxTokens, MinMaxTokens, MaxMaxTokens)
	}
	if o.OverlapTokens < 0 || o.OverlapTokens > o.MaxTokens/2 {
		return fmt.Errorf("chunk_overlap_tokens %d is out of range: want 0 to half of max_chunk_size_tokens (%d)", o.OverlapTokens, o.MaxTokens/2)
	}
	return nil
}

// clamp makes any Options usable: Split never fails, so out-of-range
// values are pulled to the nearest valid ones.
func (o Options) clamp() Options {
	o = o.withDefaults()
	o.MaxTokens = min(max(o.MaxTokens, MinMaxTokens), MaxMaxTokens)
	o.OverlapTokens = min(max(o.OverlapTokens, 0), o.MaxTokens/2)
	return o
}

// Chunk is one window of the text.
type Chunk struct {
	// Index is the chunk's position, from 0.
	Index int
	// Text is a substring of the text Split was given (once invalid
	// UTF-8 in it is replaced).
	Text string
	// Tokens is Text's cl100k_base token count.
	Tokens int
}

// Split cuts text into consecutive chunks of at most MaxTokens tokens,
// each starting with the last OverlapTokens tokens of the previous one.
// Cuts fall between tokens, never inside a UTF-8 character: the bytes of a
// character split across tokens stay in one chunk, so the overlap can be a
// token or three short of OverlapTokens at such a seam. Text that is empty
// or only whitespace has no chunks; whitespace-only windows inside a text
// are dropped. Invalid UTF-8 is replaced by U+FFFD first. Options outside
// Validate's bounds are clamped to them. The result depends only on the
// arguments.
func Split(text string, o Options) []Chunk {
	o = o.clamp()
	text = strings.ToValidUTF8(text, "\uFFFD")
	if strings.TrimSpace(text) == "" {
		return nil
	}
	cd, err := tokenizer.Get(tokenizer.Cl100kBase)
	if err != nil { // built in; cannot fail for a known encoding
		panic(fmt.Sprintf("chunk: cl100k_base: %v", err))
	}
	var out []Chunk
	for _, s := range spans(cd, text, o) {
		t := text[s.start:s.end]
		if strings.TrimSpace(t) == "" {
			continue
		}
		out = append(out, Chunk{Index: len(out), Text: t, Tokens: s.tokens})
	}
	return out
}
