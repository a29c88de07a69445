package azure

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"llmproxy/router"
)

// FuzzStream plays arbitrary SSE bodies through the whole Azure stream
// (openai's decoder plus the annotation folding): no panic, every chunk is
// JSON, only usage chunks are UsageOnly, and failures are *router.Error.
func FuzzStream(f *testing.F) {
	f.Add(string(read(f, "chat_stream_text.sse")))
	f.Add(string(read(f, "chat_stream_tools.sse")))
	f.Add("data: {\"choices\":[],\"prompt_filter_results\":[{}]}\n\ndata: [DONE]\n\n")
	f.Add("data: {\"choices\":[],\"prompt_filter_results\":[]}\n\ndata: {\"prompt_filter_results\":1,\"choices\":[{}]}\n\ndata: [DONE]\n\n")
	req := chatReq(f, `{"model":"a","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	f.Fuzz(func(t *testing.T, body string) {
		rt := &roundTrip{ctype: "text/event-stream", body: body}
		s, err := newTest(t, rt, "").Chat(context.Background(), req)
		if err != nil {
			t.Fatalf("Chat: %v", err)
		}
		defer s.Close()
		for {
			c, err := s.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var e *router.Error
				if !errors.As(err, &e) {
					t.Fatalf("err = %v (%T); want *router.Error", err, err)
				}
				return
			}
			if !json.Valid(c.Data) {
				t.Fatalf("chunk is not JSON: %s", c.Data)
			}
			if c.UsageOnly && c.Usage == nil {
				t.Fatalf("UsageOnly chunk without usage: %s", c.Data)
			}
		}
	})
}
