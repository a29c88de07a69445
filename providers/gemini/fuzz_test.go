package gemini

import (
	"encoding/json"
	"errors"
	"io"
	"testing"

	"llmproxy/providers/sse"
	"llmproxy/router"
)

// FuzzDecoder feeds arbitrary SSE bodies through the stream decoder: it
// must never panic, every chunk must be a chat.completion.chunk, and the
// stream ends either with exactly one UsageOnly chunk or a *router.Error.
func FuzzDecoder(f *testing.F) {
	f.Add(string(mustRead(f, "chat_stream_text.sse")))
	f.Add(string(mustRead(f, "chat_stream_tools.sse")))
	f.Add("data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}\n\n")
	f.Add("data: {\"error\":{\"code\":500,\"message\":\"x\"}}\n\n")
	f.Add("data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":[1]}}]},\"finishReason\":\"STOP\",\"index\":-3}]}\n\n")
	f.Add("data: {\"candidates\":null,\"usageMetadata\":{\"promptTokenCount\":-1}}\n\ndata: [DONE]\n\n")
	c := testClient(f)
	req, err := router.ParseChatRequest([]byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		chunks, err := decodeAll(body, c, req)
		for i, ch := range chunks {
			var cj struct {
				Object  string            `json:"object"`
				Choices []json.RawMessage `json:"choices"`
			}
			if jerr := json.Unmarshal(ch.Data, &cj); jerr != nil || cj.Object != "chat.completion.chunk" || cj.Choices == nil {
				t.Fatalf("chunk %d = %s (%v); want a chat.completion.chunk", i, ch.Data, jerr)
			}
			if ch.UsageOnly != (err == nil && i == len(chunks)-1) {
				t.Fatalf("chunk %d UsageOnly = %v (err %v)", i, ch.UsageOnly, err)
			}
		}
		var e *router.Error
		// The harness passes the SSE reader's own errors through; the
		// stream maps those in readError.
		if err != nil && !errors.As(err, &e) && err != io.ErrUnexpectedEOF && !errors.Is(err, sse.ErrEventTooLarge) {
			t.Fatalf("err = %v (%T); want a *router.Error", err, err)
		}
	})
}
