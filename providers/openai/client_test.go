package openai

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"llmproxy/providers/providertest"
	"llmproxy/router"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Factory{
		Fake:  fake{},
		Model: "gpt-4o-mini",
		New: func(t *testing.T, u providertest.Upstream) router.Provider {
			c, err := New(Config{Name: "openai", BaseURL: u.BaseURL, APIKey: u.APIKey}, u.HTTPClient)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	})
}

func TestNewValidatesBaseURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://api.openai.com/v1", true},
		{"http://localhost:8000/v1/", true},
		{"api.openai.com/v1", false},
		{"/v1", false},
		{"", false},
		{"ftp://example.com/v1", false},
		{"https://", false},
	} {
		_, err := New(Config{Name: "p", BaseURL: tc.url}, nil)
		if (err == nil) != tc.ok {
			t.Errorf("New(BaseURL %q) err = %v; want ok=%v", tc.url, err, tc.ok)
		}
	}
}

// roundTripFunc lets a test see or refuse requests without a server.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNoKeyForOpenAI(t *testing.T) {
	hc := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Error("a request was sent without a key")
		return nil, errors.New("refused")
	})}
	c, err := New(Config{Name: "oa", BaseURL: "https://api.openai.com/v1"}, hc)
	if err != nil {
		t.Fatal(err)
	}
	want := `provider "oa" has no API key configured`
	_, err = c.Chat(context.Background(), chatReq(t, false))
	if e := router.AsError(err); e.Kind != router.KindUpstream || e.Message != want {
		t.Errorf("Chat err = %v; want KindUpstream %q", err, want)
	}
	_, err = c.Embed(context.Background(), &router.EmbedRequest{Body: []byte(`{"model":"m","input":"x"}`)})
	if e := router.AsError(err); e.Kind != router.KindUpstream || e.Message != want {
		t.Errorf("Embed err = %v; want KindUpstream %q", err, want)
	}
}

func chatReq(t *testing.T, stream bool) *router.ChatRequest {
	t.Helper()
	body := `{"model":"alias","messages":[{"role":"user","content":"hi"}],"temperature":0.2,"x_vendor":{"a":[1,2]}`
	if stream {
		body += `,"stream":true`
	}
	req, err := router.ParseChatRequest([]byte(body + "}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Target = router.Target{Provider: "local", Model: "llama-3.1-8b"}
	return req
}

// capture is a fake upstream that records the last request and answers
// with a fixed reply.
type capture struct {
	mu     sync.Mutex
	header http.Header
	path   string
	body   []byte
	reply  []byte
	ctype  string
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.header, c.path, c.body = r.Header.Clone(), r.URL.Path, b
	c.mu.Unlock()
	w.Header().Set("Content-Type", c.ctype)
	w.Write(c.reply)
}

func newCapture(t *testing.T, reply, ctype string, cfg Config) (*capture, *Client) {
	t.Helper()
	cp := &capture{reply: []byte(reply), ctype: ctype}
	srv := httptest.NewServer(cp)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL + "/v1/"
	c, err := New(cfg, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return cp, c
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRequestHeadersAndBody(t *testing.T) {
	for _, tc := range []struct {
		name, key, wantAuth string
		stream              bool
	}{
		{name: "local server, no key", wantAuth: ""},
		{name: "with key", key: "sk-abc", wantAuth: "Bearer sk-abc"},
		{name: "stream", key: "sk-abc", wantAuth: "Bearer sk-abc", stream: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, ctype := readFile(t, "chat_text.json"), "application/json"
			if tc.stream {
				reply, ctype = readFile(t, "chat_stream_text.sse"), "text/event-stream"
			}
			cp, c := newCapture(t, string(reply), ctype, Config{Name: "local", APIKey: tc.key, Headers: map[string]string{"X-Tenant": "t1"}})
			req := chatReq(t, tc.stream)
			s, err := c.Chat(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			cp.mu.Lock()
			defer cp.mu.Unlock()
			if cp.path != "/v1/chat/completions" {
				t.Errorf("path = %q; want /v1/chat/completions", cp.path)
			}
			if got := cp.header.Get("Authorization"); got != tc.wantAuth {
				t.Errorf("Authorization = %q; want %q", got, tc.wantAuth)
			}
			if got := cp.header.Get("X-Tenant"); got != "t1" {
				t.Errorf("X-Tenant = %q; want the configured header", got)
			}
			wantAccept := map[bool]string{false: "application/json", true: "text/event-stream"}[tc.stream]
			if got := cp.header.Get("Accept"); got != wantAccept {
				t.Errorf("Accept = %q; want %q", got, wantAccept)
			}
			if want := req.UpstreamBody("llama-3.1-8b"); !bytes.Equal(cp.body, want) {
				t.Errorf("body = %s; want %s", cp.body, want)
			}
		})
	}
}

// TestPassthrough checks the upstream's bytes come back untouched.
func TestPassthrough(t *testing.T) {
	whole := readFile(t, "chat_text.json")
	_, c := newCapture(t, string(whole), "application/json", Config{Name: "p"})
	s, err := c.Chat(context.Background(), chatReq(t, false))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Next()
	if err != nil || !bytes.Equal(ch.Data, whole) {
		t.Errorf("plain Data = %s, %v; want the upstream body verbatim", ch.Data, err)
	}
	s.Close()

	sseBody := readFile(t, "chat_stream_text.sse")
	_, c = newCapture(t, string(sseBody), "text/event-stream", Config{Name: "p"})
	s, err = c.Chat(context.Background(), chatReq(t, true))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	for {
		ch, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, "data: "+string(ch.Data)+"\n\n")
	}
	if want := strings.TrimSuffix(string(sseBody), "data: [DONE]\n\n"); strings.Join(got, "") != want {
		t.Errorf("chunks = %q; want the upstream events verbatim", got)
	}
}

func TestEmbed(t *testing.T) {
	reply := readFile(t, "embeddings.json")
	cp, c := newCapture(t, string(reply), "application/json", Config{Name: "e", APIKey: "sk-e"})
	body := `{"input":["a","b"],"model":"alias","encoding_format":"base64","dimensions":3}`
	resp, err := c.Embed(context.Background(), &router.EmbedRequest{Model: "alias", Body: []byte(body),
		EncodingFormat: "base64", Target: router.Target{Provider: "e", Model: "text-embedding-3-small"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.Data, reply) {
		t.Errorf("Data = %s; want the upstream body verbatim", resp.Data)
	}
	if resp.Usage.PromptTokens != 8 || resp.Usage.TotalTokens != 8 {
		t.Errorf("Usage = %+v; want 8/8", resp.Usage)
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	want := `{"input":["a","b"],"model":"text-embedding-3-small","encoding_format":"base64","dimensions":3}`
	if string(cp.body) != want || cp.path != "/v1/embeddings" {
		t.Errorf("upstream got %s %s; want /v1/embeddings %s", cp.path, cp.body, want)
	}
}

func TestEmbedUpstreamError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		io.WriteString(w, `{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"input","code":null}}`)
	}))
	defer srv.Close()
	c, _ := New(Config{Name: "e", BaseURL: srv.URL}, srv.Client())
	_, err := c.Embed(context.Background(), &router.EmbedRequest{Body: []byte(`{"model":"m","input":"x"}`)})
	e := router.AsError(err)
	if e.Kind != router.KindInvalidRequest || e.Param != "input" || !strings.Contains(e.Message, "8192") {
		t.Errorf("Embed err = %+v; want KindInvalidRequest param input", e)
	}
}

// TestUpstreamBodyGolden pins the exact bytes sent upstream.
func TestUpstreamBodyGolden(t *testing.T) {
	var out bytes.Buffer
	for _, stream := range []bool{false, true} {
		out.Write(chatBody(chatReq(t, stream)))
		out.WriteByte('\n')
	}
	out.Write(embedBody(&router.EmbedRequest{Body: []byte(`{"model": "alias", "input": "héllo", "encoding_format": "float"}`),
		Target: router.Target{Model: `we"ird`}}))
	out.WriteByte('\n')
	golden := filepath.Join("testdata", "upstream_body.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := readFile(t, "upstream_body.golden"); !bytes.Equal(out.Bytes(), want) {
		t.Errorf("upstream bodies:\n%s\nwant (go test -update to refresh):\n%s", out.Bytes(), want)
	}
}
