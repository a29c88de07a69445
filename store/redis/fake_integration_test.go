//go:build integration

package redis

import (
	"context"
	"io"
	"sync/atomic"

	"llmproxy/router"
)

// countingProvider answers with err, or one content chunk, and counts calls.
type countingProvider struct {
	err   error
	calls atomic.Int64
}

func (p *countingProvider) Chat(context.Context, *router.ChatRequest) (router.Stream, error) {
	p.calls.Add(1)
	if p.err != nil {
		return nil, p.err
	}
	return &oneChunk{}, nil
}

type oneChunk struct{ done bool }

func (o *oneChunk) Next() (*router.Chunk, error) {
	if o.done {
		return nil, io.EOF
	}
	o.done = true
	return &router.Chunk{Data: []byte(`{"choices":[{"index":0,"delta":{"content":"ok"}}]}`)}, nil
}

func (o *oneChunk) Close() error { return nil }
