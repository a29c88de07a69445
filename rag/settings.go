package rag

import (
	"bytes"
	"errors"
	"fmt"
	"text/template"
)

// Defaults for Settings fields left zero.
const (
	DefaultTopK             = 10
	DefaultRerankTopK       = 3
	DefaultMaxContextTokens = 4000
	// MaxTopK bounds top_k: more hits than this make a prompt no model
	// reads well, and a rerank call too large for most vendors.
	MaxTopK = 100
	// MaxStores bounds the stores one request may name.
	MaxStores = 16
	// MaxQueryTokens bounds the query: a longer user message is searched
	// by its last MaxQueryTokens tokens (where a question after pasted
	// text usually is), so it fits every embedding model's input.
	MaxQueryTokens = 2048
)

// Settings say how RAG runs for an alias (or for requests that name their
// stores on an alias without a rag block).
type Settings struct {
	// VectorStores are the stores searched (names or vs_ ids, resolved
	// per team); a request's own list replaces them.
	VectorStores []string
	// TopK is how many hits the search returns.
	TopK int
	// RerankTopK is how many the rerank keeps; used only with RerankModel.
	RerankTopK int
	// ScoreThreshold drops hits whose search score (in [0, 1]) is below.
	ScoreThreshold float64
	// MaxContextTokens bounds the references' tokens in the prompt: the
	// best hits are kept while they fit.
	MaxContextTokens int
	// RerankModel is the rerank alias; "" does not rerank.
	RerankModel string
	// Template builds the system message (ParseTemplate); nil is the
	// default.
	Template *template.Template
	// FailOpen answers without context when retrieval fails; otherwise
	// the request gets 503.
	FailOpen bool
}

// withDefaults fills s's zero fields.
func (s Settings) withDefaults(def *template.Template) Settings {
	if s.TopK <= 0 {
		s.TopK = DefaultTopK
	}
	if s.RerankTopK <= 0 {
		s.RerankTopK = DefaultRerankTopK
	}
	if s.MaxContextTokens <= 0 {
		s.MaxContextTokens = DefaultMaxContextTokens
	}
	if s.Template == nil {
		s.Template = def
	}
	return s
}

// check reports the first invariant s breaks.
func (s Settings) check() error {
	switch {
	case s.TopK < 0 || s.TopK > MaxTopK:
		return fmt.Errorf("top_k %d out of range 1 to %d", s.TopK, MaxTopK)
	case s.RerankTopK < 0 || (s.TopK > 0 && s.RerankTopK > s.TopK):
		return fmt.Errorf("rerank_top_k %d out of range 1 to top_k", s.RerankTopK)
	case s.ScoreThreshold < 0 || s.ScoreThreshold > 1:
		return fmt.Errorf("score_threshold %v out of range 0 to 1", s.ScoreThreshold)
	case s.MaxContextTokens < 0:
		return fmt.Errorf("negative max_context_tokens %d", s.MaxContextTokens)
	case len(s.VectorStores) > MaxStores:
		return fmt.Errorf("%d vector stores; at most %d", len(s.VectorStores), MaxStores)
	}
	return nil
}

// DefaultTemplate is the system message RAG adds unless the config gives
// its own: answer from the references, say so plainly when they do not
// hold the answer, cite by number.
const DefaultTemplate = `Answer the user's question using the numbered references below. If the references do not contain the answer, say plainly that you could not find it in the provided documents; do not make one up. Cite the references you use by their number, like [1].

References:
{{range .References}}
[{{.Index}}] {{.Filename}}
{{.Content}}
{{end}}`

// PromptData is what a template sees.
type PromptData struct {
	// Query is the text the references were retrieved for.
	Query string
	// References are the hits kept, best first, numbered from 1.
	References []Reference
}

// Reference is one hit in a template.
type Reference struct {
	Index         int
	VectorStoreID string
	FileID        string
	Filename      string
	ChunkIndex    int
	Score         float64
	Content       string
}

// ParseTemplate parses a system-message template (Go text/template over
// PromptData) and runs it once on sample data, so a template that names a
// field PromptData lacks fails at load, not on a request.
func ParseTemplate(text string) (*template.Template, error) {
	t, err := template.New("rag").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	sample := PromptData{Query: "q", References: []Reference{{Index: 1, VectorStoreID: "vs_1", FileID: "file-1", Filename: "a.txt", Content: "c"}}}
	var b bytes.Buffer
	if err := t.Execute(&b, sample); err != nil {
		return nil, err
	}
	if b.Len() == 0 {
		return nil, errors.New("the template produces an empty message")
	}
	return t, nil
}
