package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"llmproxy/router"
)

// streamOf decodes body as an upstream stream, without HTTP.
func streamOf(t testing.TB, body string) *stream {
	c, err := New(Config{Name: "oa", BaseURL: "http://upstream.example/v1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	parent := context.Background()
	ctx, cancel := context.WithCancelCause(parent)
	s := newStream(c, ctx, parent, cancel, newWatchdog(cancel), io.NopCloser(strings.NewReader(body)), 0)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStreamChunks(t *testing.T) {
	const usage = `{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":1}}`
	for _, tc := range []struct {
		name      string
		body      string
		chunks    int
		usageOnly bool
		usage     *router.Usage // on the last chunk
		model     string
		kind      router.Kind // of the final error; -1 means io.EOF
		msg       string
	}{
		{name: "usage only", body: "data: {\"model\":\"m1\",\"choices\":[],\"usage\":" + usage + "}\n\ndata: [DONE]\n\n",
			chunks: 1, usageOnly: true, usage: &router.Usage{PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7, CachedTokens: 3, ReasoningTokens: 1}, model: "m1", kind: -1},
		{name: "usage on a content chunk (vLLM style)", body: "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":" + usage + "}\n\ndata: [DONE]\n\n",
			chunks: 1, usage: &router.Usage{PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7, CachedTokens: 3, ReasoningTokens: 1}, kind: -1},
		{name: "null usage is no usage", body: "data: {\"choices\":[{\"delta\":{}}],\"usage\":null}\n\ndata: [DONE]\n\n", chunks: 1, kind: -1},
		{name: "comments and blank data skipped", body: ": ping\n\ndata:\n\ndata: {\"choices\":[]}\n\n: OPENROUTER PROCESSING\n\ndata: [DONE]\n\n", chunks: 1, kind: -1},
		{name: "crlf framing", body: "data: {\"choices\":[]}\r\n\r\ndata: [DONE]\r\n\r\n", chunks: 1, kind: -1},
		{name: "error event", body: "data: {\"choices\":[]}\n\ndata: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n",
			chunks: 1, kind: router.KindUpstream, msg: "overloaded"},
		{name: "malformed chunk", body: "data: {\"choices\":[\n\n", kind: router.KindUpstream, msg: "malformed"},
		{name: "malformed usage", body: "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\"x\"}}\n\n", kind: router.KindUpstream, msg: "malformed usage"},
		{name: "no DONE", body: "data: {\"choices\":[]}\n\n", chunks: 1, kind: router.KindUpstream, msg: "upstream closed the stream early"},
		{name: "cut mid event", body: "data: {\"choices\":[]}\n\ndata: {\"cho", chunks: 1, kind: router.KindUpstream, msg: "upstream closed the stream early"},
		{name: "oversized event", body: "data: \"" + strings.Repeat("x", 4<<20) + "\"\n\n", kind: router.KindUpstream, msg: "larger than"},
		{name: "escaped model", body: "data: {\"model\":\"a\\u002fb\",\"choices\":[]}\n\ndata: [DONE]\n\n", chunks: 1, model: "a/b", kind: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := streamOf(t, tc.body)
			var got []*router.Chunk
			var err error
			for {
				var c *router.Chunk
				if c, err = s.Next(); err != nil {
					break
				}
				got = append(got, c)
			}
			if len(got) != tc.chunks {
				t.Fatalf("got %d chunks; want %d (err %v)", len(got), tc.chunks, err)
			}
			if tc.kind == -1 {
				if err != io.EOF {
					t.Fatalf("end = %v; want io.EOF", err)
				}
			} else if e := router.AsError(err); e.Kind != tc.kind || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("end = %v (%v); want %v containing %q", err, e.Kind, tc.kind, tc.msg)
			}
			if _, again := s.Next(); again != err {
				t.Errorf("Next after the end = %v; want the same %v", again, err)
			}
			if len(got) == 0 {
				return
			}
			last := got[len(got)-1]
			if last.UsageOnly != tc.usageOnly {
				t.Errorf("UsageOnly = %v; want %v", last.UsageOnly, tc.usageOnly)
			}
			if (last.Usage == nil) != (tc.usage == nil) || (tc.usage != nil && *last.Usage != *tc.usage) {
				t.Errorf("Usage = %+v; want %+v", last.Usage, tc.usage)
			}
			if last.Model != tc.model {
				t.Errorf("Model = %q; want %q", last.Model, tc.model)
			}
		})
	}
}

// TestChunkDataIsCopied guards against handing out the decoder's buffer,
// which the next event overwrites.
func TestChunkDataIsCopied(t *testing.T) {
	s := streamOf(t, "data: {\"a\":1111}\n\ndata: {\"a\":2222}\n\ndata: [DONE]\n\n")
	c1, _ := s.Next()
	c2, _ := s.Next()
	if string(c1.Data) != `{"a":1111}` || string(c2.Data) != `{"a":2222}` {
		t.Errorf("chunks = %s, %s; want each its own bytes", c1.Data, c2.Data)
	}
}

func TestCloseIdempotent(t *testing.T) {
	s := streamOf(t, "data: {}\n\n")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := s.Next(); err == nil {
		t.Fatal("Next after Close succeeded")
	}
}

// TestNonStreamTimeout: a plain reply is one chunk, so FirstToken bounds it.
func TestNonStreamTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c, _ := New(Config{Name: "oa", BaseURL: srv.URL}, srv.Client())
	req := chatReq(t, false)
	req.Timeouts = router.Timeouts{FirstToken: 50 * time.Millisecond}
	_, err := c.Chat(context.Background(), req)
	if e := router.AsError(err); e.Kind != router.KindUpstreamTimeout {
		t.Fatalf("Chat err = %v; want KindUpstreamTimeout", err)
	}
}

// TestStreamAnsweredWithJSON covers servers that reply to a stream request
// with a 200 JSON error instead of an event stream.
func TestStreamAnsweredWithJSON(t *testing.T) {
	_, c := newCapture(t, `{"error":{"message":"model is loading","type":"server_error"}}`, "application/json", Config{Name: "local"})
	_, err := c.Chat(context.Background(), chatReq(t, true))
	if e := router.AsError(err); e.Kind != router.KindUpstream || e.Message != "model is loading" {
		t.Fatalf("Chat err = %v; want KindUpstream model is loading", err)
	}
	_, c = newCapture(t, `{"object":"chat.completion","choices":[]}`, "application/json", Config{Name: "local"})
	_, err = c.Chat(context.Background(), chatReq(t, true))
	if e := router.AsError(err); e.Kind != router.KindUpstream || !strings.Contains(e.Message, "without streaming") {
		t.Fatalf("Chat err = %v; want KindUpstream without streaming", err)
	}
}

func TestOversizedPlainReply(t *testing.T) {
	_, c := newCapture(t, `{"object":"chat.completion","pad":"`+strings.Repeat("x", 100)+`"}`, "application/json", Config{Name: "p"})
	c.maxChat = 64
	_, err := c.Chat(context.Background(), chatReq(t, false))
	if e := router.AsError(err); e.Kind != router.KindUpstream || !strings.Contains(e.Message, "larger than") {
		t.Fatalf("Chat err = %v; want KindUpstream larger than", err)
	}
}

func TestChunkAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	s := streamOf(t, "")
	data := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":null}`)
	s.chunk(data) // caches the model name
	n := testing.AllocsPerRun(100, func() {
		if _, err := s.chunk(data); err != nil {
			t.Fatal(err)
		}
	})
	if n > 2 { // the Chunk and its copy of Data
		t.Errorf("allocs per chunk = %v; want at most 2", n)
	}
}

// FuzzStream feeds arbitrary bodies to the stream decoder: it must never
// panic, and every failure must be a *router.Error.
func FuzzStream(f *testing.F) {
	for _, seed := range []string{
		"data: {\"choices\":[]}\n\ndata: [DONE]\n\n",
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n",
		"data: {\"error\":{\"message\":\"x\"}}\n\n",
		"data: {\"model\":\"a\\\"b\",\"choices\":null}\r\n\r\n",
		"data: {\"choices\":[\n\n",
		": ping\n\ndata: [DONE]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s := streamOf(t, string(body))
		for i := 0; ; i++ {
			c, err := s.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var e *router.Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v (%T) is not a *router.Error", err, err)
				}
				return
			}
			if c == nil || len(c.Data) == 0 {
				t.Fatal("nil or empty chunk without error")
			}
		}
	})
}
