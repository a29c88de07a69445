package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeUpstream is an OpenAI-compatible upstream. It records every request
// and answers with handler, which a test may swap; the default answers chat
// and embeddings with defaultReply.
type fakeUpstream struct {
	srv     *httptest.Server
	mu      sync.Mutex
	handler func(w http.ResponseWriter, r *http.Request, body []byte)
	reqs    []upstreamRequest
}

// upstreamRequest is one request as the fake received it.
type upstreamRequest struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	f := &fakeUpstream{handler: defaultHandler}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeUpstream) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, upstreamRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	h := f.handler
	f.mu.Unlock()
	h(w, r, body)
}

// handle replaces the fake's behaviour until the next call.
func (f *fakeUpstream) handle(h func(w http.ResponseWriter, r *http.Request, body []byte)) {
	f.mu.Lock()
	f.handler = h
	f.mu.Unlock()
}

// reset restores the default behaviour and forgets recorded requests.
func (f *fakeUpstream) reset() {
	f.mu.Lock()
	f.handler = defaultHandler
	f.reqs = nil
	f.mu.Unlock()
}

// last is the most recent request; the test fails if there was none.
func (f *fakeUpstream) last(t *testing.T) upstreamRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("the upstream received no request")
	}
	return f.reqs[len(f.reqs)-1]
}

// count is how many requests the fake has received.
func (f *fakeUpstream) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// reply is what the fake answers a chat completion with.
type reply struct {
	id      string
	content []string // content deltas; a plain reply joins them
	calls   []call
	usage   wireUsage
}

// call is one tool call; args is the arguments JSON split as the deltas
// carry it.
type call struct {
	id, name string
	args     []string
}

var defaultReply = reply{
	id:      "chatcmpl-fake-0001",
	content: []string{"Hello", " there", ", ", completionCanary, "!"},
	usage:   wireUsage{PromptTokens: 17, CompletionTokens: 5, TotalTokens: 22},
}

var toolReply = reply{
	id: "chatcmpl-fake-tools",
	calls: []call{
		{id: "call_weather_1", name: "get_weather", args: []string{`{"lo`, `cation`, `": "Par`, `is, FR`, `", "unit"`, `: "celsius"}`}},
		{id: "call_time_2", name: "get_time", args: []string{`{"tz":`, ` "Europe/`, `Paris"}`}},
	},
	usage: wireUsage{PromptTokens: 80, CompletionTokens: 40, TotalTokens: 120},
}

func defaultHandler(w http.ResponseWriter, r *http.Request, body []byte) {
	switch r.URL.Path {
	case "/v1/chat/completions":
		serveChat(w, body, defaultReply)
	case "/v1/embeddings":
		serveEmbeddings(w, body)
	default:
		writeUpstreamError(w, http.StatusNotFound, `{"error":{"message":"Invalid URL (POST `+r.URL.Path+`)","type":"invalid_request_error","param":null,"code":null}}`)
	}
}

// upstreamAsk is what the fake reads of a chat request.
type upstreamAsk struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func parseAsk(body []byte) upstreamAsk {
	var a upstreamAsk
	_ = json.Unmarshal(body, &a)
	return a
}

func (a upstreamAsk) includeUsage() bool {
	return a.StreamOptions != nil && a.StreamOptions.IncludeUsage
}

// serveChat answers like OpenAI: a chat.completion object, or a stream of
// chat.completion.chunk events ending in [DONE], with the usage-only chunk
// only when stream_options.include_usage was asked.
func serveChat(w http.ResponseWriter, body []byte, rep reply) {
	ask := parseAsk(body)
	if !ask.Stream {
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(completion(rep))
		w.Write(b)
		return
	}
	sw := newSSEWriter(w)
	for _, c := range chunks(rep, ask.includeUsage()) {
		sw.event(c)
	}
	sw.done()
}

// sseWriter writes OpenAI's SSE framing and flushes every event.
type sseWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	f.Flush()
	return &sseWriter{w: w, f: f}
}

func (s *sseWriter) event(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.raw("data: " + string(b) + "\n\n")
}

func (s *sseWriter) raw(ev string) error {
	if _, err := io.WriteString(s.w, ev); err != nil {
		return err
	}
	s.f.Flush()
	return nil
}

func (s *sseWriter) done() { s.raw("data: [DONE]\n\n") }

func writeUpstreamError(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// The wire types below follow OpenAI's JSON member for member, including
// the nulls it sends.

type wireUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	PromptDetails    struct {
		CachedTokens int `json:"cached_tokens"`
		AudioTokens  int `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
		AudioTokens     int `json:"audio_tokens"`
	} `json:"completion_tokens_details"`
}

type wireCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []wireChoice `json:"choices"`
	Usage             wireUsage    `json:"usage"`
	ServiceTier       string       `json:"service_tier"`
	SystemFingerprint string       `json:"system_fingerprint"`
}

type wireChoice struct {
	Index        int             `json:"index"`
	Message      wireMessage     `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type wireMessage struct {
	Role        string          `json:"role"`
	Content     *string         `json:"content"`
	Refusal     json.RawMessage `json:"refusal"`
	ToolCalls   []wireToolCall  `json:"tool_calls,omitempty"`
	Annotations []any           `json:"annotations"`
}

type wireToolCall struct {
	Index    *int   `json:"index,omitempty"` // deltas only
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type wireChunk struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	Created           int64             `json:"created"`
	Model             string            `json:"model"`
	ServiceTier       string            `json:"service_tier"`
	SystemFingerprint string            `json:"system_fingerprint"`
	Choices           []wireChunkChoice `json:"choices"`
	// Usage is absent unless include_usage was asked; then it is null on
	// every chunk but the last.
	Usage json.RawMessage `json:"usage,omitempty"`
}

type wireChunkChoice struct {
	Index        int             `json:"index"`
	Delta        wireDelta       `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type wireDelta struct {
	Role      string          `json:"role,omitempty"`
	Content   *string         `json:"content,omitempty"`
	Refusal   json.RawMessage `json:"refusal,omitempty"`
	ToolCalls []wireToolCall  `json:"tool_calls,omitempty"`
}

var null = json.RawMessage("null")

const fakeCreated = 1733000000

func completion(rep reply) wireCompletion {
	msg := wireMessage{Role: "assistant", Refusal: null, Annotations: []any{}}
	finish := "stop"
	if len(rep.calls) > 0 {
		finish = "tool_calls"
		for _, c := range rep.calls {
			tc := wireToolCall{ID: c.id, Type: "function"}
			tc.Function.Name, tc.Function.Arguments = c.name, strings.Join(c.args, "")
			msg.ToolCalls = append(msg.ToolCalls, tc)
		}
	} else {
		s := strings.Join(rep.content, "")
		msg.Content = &s
	}
	return wireCompletion{ID: rep.id, Object: "chat.completion", Created: fakeCreated, Model: upstreamSnapshot,
		Choices: []wireChoice{{Message: msg, Logprobs: null, FinishReason: finish}},
		Usage:   rep.usage, ServiceTier: "default", SystemFingerprint: "fp_fake01"}
}

// chunks is the streamed form of rep, in the order OpenAI sends it.
func chunks(rep reply, includeUsage bool) []wireChunk {
	head := func(d wireDelta, finish *string) wireChunk {
		c := wireChunk{ID: rep.id, Object: "chat.completion.chunk", Created: fakeCreated, Model: upstreamSnapshot,
			ServiceTier: "default", SystemFingerprint: "fp_fake01",
			Choices: []wireChunkChoice{{Delta: d, Logprobs: null, FinishReason: finish}}}
		if includeUsage {
			c.Usage = null
		}
		return c
	}
	empty := ""
	var out []wireChunk
	if len(rep.calls) == 0 {
		out = append(out, head(wireDelta{Role: "assistant", Content: &empty, Refusal: null}, nil))
		for _, s := range rep.content {
			out = append(out, head(wireDelta{Content: &s}, nil))
		}
	} else {
		for i, c := range rep.calls {
			first := wireToolCall{Index: &i, ID: c.id, Type: "function"}
			first.Function.Name = c.name
			d := wireDelta{ToolCalls: []wireToolCall{first}}
			if i == 0 {
				d.Role, d.Refusal = "assistant", null
			}
			out = append(out, head(d, nil))
			for _, a := range c.args {
				more := wireToolCall{Index: &i}
				more.Function.Arguments = a
				out = append(out, head(wireDelta{ToolCalls: []wireToolCall{more}}, nil))
			}
		}
	}
	finish := "stop"
	if len(rep.calls) > 0 {
		finish = "tool_calls"
	}
	out = append(out, head(wireDelta{}, &finish))
	if includeUsage {
		u, _ := json.Marshal(rep.usage)
		last := head(wireDelta{}, nil)
		last.Choices = []wireChunkChoice{}
		last.Usage = u
		out = append(out, last)
	}
	return out
}

// fakeVector is the fake's embedding of input number i.
func fakeVector(i int) []float32 {
	return []float32{0.5, -0.25, float32(i) + 1.0/3, 1e-7}
}

// serveEmbeddings answers like OpenAI, in base64 (little-endian float32)
// when encoding_format asks for it.
func serveEmbeddings(w http.ResponseWriter, body []byte) {
	var ask struct {
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
	}
	_ = json.Unmarshal(body, &ask)
	n := 1
	var many []string
	var arrays []json.RawMessage
	switch {
	case json.Unmarshal(ask.Input, &many) == nil:
		n = len(many)
	case json.Unmarshal(ask.Input, &arrays) == nil && len(arrays) > 0 && arrays[0][0] == '[':
		n = len(arrays) // token arrays: one embedding each
	}
	type item struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
	}
	out := struct {
		Object string         `json:"object"`
		Data   []item         `json:"data"`
		Model  string         `json:"model"`
		Usage  map[string]int `json:"usage"`
	}{Object: "list", Model: upstreamEmbed}
	for i := range n {
		v := fakeVector(i)
		var emb any = v
		if ask.EncodingFormat == "base64" {
			b := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(f))
			}
			emb = base64.StdEncoding.EncodeToString(b)
		}
		out.Data = append(out.Data, item{Object: "embedding", Index: i, Embedding: emb})
	}
	out.Usage = map[string]int{"prompt_tokens": 3 * n, "total_tokens": 3 * n}
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.Marshal(out)
	w.Write(b)
}
