package openai

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
)

// benchStream is a realistic upstream stream: a role chunk, 20 content
// chunks, a finish chunk and a usage chunk, framed as OpenAI frames them.
func benchStream() (body []byte, chunks int) {
	var b bytes.Buffer
	const head = `{"id":"chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1",`
	frame := func(rest string) {
		b.WriteString("data: " + head + rest + "}\n\n")
		chunks++
	}
	frame(`"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null`)
	for i := range 20 {
		frame(fmt.Sprintf(`"choices":[{"index":0,"delta":{"content":" word%d"},"logprobs":null,"finish_reason":null}],"usage":null`, i))
	}
	frame(`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null`)
	frame(`"choices":[],"usage":{"prompt_tokens":412,"completion_tokens":20,"total_tokens":432,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`)
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes(), chunks
}

// BenchmarkStreamChunk decodes an in-memory upstream stream; ns/op and
// allocs/op are per chunk.
func BenchmarkStreamChunk(b *testing.B) {
	body, chunks := benchStream()
	c, err := New(Config{Name: "oa", BaseURL: "http://upstream.example/v1"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	rd := bytes.NewReader(body)
	parent := context.Background()
	b.SetBytes(int64(len(body) / chunks))
	b.ReportAllocs()
	n := 0
	var s *stream
	for b.Loop() {
		if s == nil {
			rd.Reset(body)
			ctx, cancel := context.WithCancelCause(parent)
			s = newStream(c, ctx, parent, cancel, newWatchdog(cancel), io.NopCloser(rd), 0)
		}
		_, err := s.Next()
		if err == io.EOF {
			s.Close()
			s = nil
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	if s != nil {
		s.Close()
	}
}
