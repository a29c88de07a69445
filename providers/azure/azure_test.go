package azure

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"llmproxy/router"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// roundTrip answers every request in memory with status and body, and
// records what was sent.
type roundTrip struct {
	mu     sync.Mutex
	status int
	ctype  string
	body   string
	sent   []string // method URL, sorted headers, body
}

func (rt *roundTrip) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	var hs []string
	for k, v := range r.Header {
		hs = append(hs, k+": "+strings.Join(v, ","))
	}
	sort.Strings(hs)
	rt.mu.Lock()
	rt.sent = append(rt.sent, r.Method+" "+r.URL.String()+"\n"+strings.Join(hs, "\n")+"\n"+string(b)+"\n")
	rt.mu.Unlock()
	status := rt.status
	if status == 0 {
		status = 200
	}
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {rt.ctype}},
		Body: io.NopCloser(strings.NewReader(rt.body)), Request: r}, nil
}

func newTest(t testing.TB, rt *roundTrip, version string) *Client {
	t.Helper()
	c, err := New(Config{Name: "az", BaseURL: "https://myres.openai.azure.com/", APIKey: "azkey-123", APIVersion: version,
		Headers: map[string]string{"X-Ms-Client-Request-Id": "fixed"}}, &http.Client{Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func chatReq(t testing.TB, body string) *router.ChatRequest {
	t.Helper()
	req, err := router.ParseChatRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Target = router.Target{Provider: "az", Model: "gpt-4o prod"}
	return req
}

func drain(t *testing.T, s router.Stream) []*router.Chunk {
	t.Helper()
	defer s.Close()
	var out []*router.Chunk
	for {
		c, err := s.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, c)
	}
}

// TestUpstreamRequestGolden pins the URL, headers and body sent upstream.
func TestUpstreamRequestGolden(t *testing.T) {
	rt := &roundTrip{ctype: "application/json", body: string(read(t, "chat_text.json"))}
	c := newTest(t, rt, "")
	s, err := c.Chat(context.Background(), chatReq(t, `{"model":"alias","messages":[{"role":"user","content":"hi"}],"temperature":0.2}`))
	if err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	rt.body, rt.ctype = string(read(t, "chat_stream_text.sse")), "text/event-stream"
	c = newTest(t, rt, "2025-04-01-preview")
	s, err = c.Chat(context.Background(), chatReq(t, `{"model":"alias","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	rt.body, rt.ctype = string(read(t, "embeddings.json")), "application/json"
	if _, err := c.Embed(context.Background(), &router.EmbedRequest{Body: []byte(`{"model":"alias","input":"x"}`),
		Target: router.Target{Model: "embed-small"}}); err != nil {
		t.Fatal(err)
	}
	got := []byte(strings.Join(rt.sent, "\n"))
	golden := filepath.Join("testdata", "upstream_request.golden")
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	if want := read(t, "upstream_request.golden"); !bytes.Equal(got, want) {
		t.Errorf("upstream requests:\n%s\nwant (go test -update to refresh):\n%s", got, want)
	}
}

// TestPromptAnnotationFolded checks the metadata-only first chunk never
// reaches the client on its own, is not taken for the usage chunk, and its
// prompt_filter_results arrive intact on the next chunk.
func TestPromptAnnotationFolded(t *testing.T) {
	raw := string(read(t, "chat_stream_text.sse"))
	rt := &roundTrip{ctype: "text/event-stream", body: raw}
	s, err := newTest(t, rt, "").Chat(context.Background(), chatReq(t, `{"model":"a","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	chunks := drain(t, s)
	first := strings.TrimPrefix(strings.SplitN(raw, "\n\n", 2)[0], "data: ")
	pf := router.TopField([]byte(first), "prompt_filter_results")
	for i, c := range chunks {
		if got := router.TopField(c.Data, "choices"); string(got) == "[]" && c.Usage == nil {
			t.Errorf("chunk %d has no choices and no usage: %s", i, c.Data)
		}
		if c.UsageOnly != (i == len(chunks)-1) {
			t.Errorf("chunk %d UsageOnly = %v", i, c.UsageOnly)
		}
	}
	if got := router.TopField(chunks[0].Data, "prompt_filter_results"); !bytes.Equal(got, pf) {
		t.Errorf("first chunk prompt_filter_results = %s; want %s", got, pf)
	}
	if !bytes.Contains(chunks[1].Data, []byte(`"content_filter_results":{"hate"`)) {
		t.Errorf("content chunk lost content_filter_results: %s", chunks[1].Data)
	}
	if len(chunks) != 6 {
		t.Errorf("got %d chunks; want 6 (the annotation folded in)", len(chunks))
	}
}

func TestAzureErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		kind       router.Kind
		code       int
		errCode    string
		msg        string
	}{
		{"content filter keeps status and message", `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,` +
			`"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}`, 400, router.KindInvalidRequest, 400, "content_filter", "content management policy"},
		{"deployment not found is ours", `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`, 404, router.KindUpstream, 502, "", "no such deployment"},
		{"bad key", `{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}`, 401, router.KindUpstream, 502, "", "credentials"},
		{"rate limit", `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation have exceeded call rate limit."}}`, 429, router.KindUpstreamRateLimited, 429, "", "rate limited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &roundTrip{status: tc.status, ctype: "application/json", body: tc.body}
			c := newTest(t, rt, "")
			_, err := c.Chat(context.Background(), chatReq(t, `{"model":"a","messages":[{"role":"user","content":"hi"}]}`))
			e := router.AsError(err)
			if e.Kind != tc.kind || e.StatusCode() != tc.code || e.Code != tc.errCode || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("err = %+v; want kind %v status %d code %q message containing %q", e, tc.kind, tc.code, tc.errCode, tc.msg)
			}
			_, err = c.Embed(context.Background(), &router.EmbedRequest{Body: []byte(`{"model":"a","input":"x"}`)})
			if e := router.AsError(err); e.Kind != tc.kind {
				t.Errorf("Embed err kind = %v; want %v", e.Kind, tc.kind)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	for _, u := range []string{"", "myres.openai.azure.com", "ftp://x"} {
		if _, err := New(Config{Name: "az", BaseURL: u}, nil); err == nil {
			t.Errorf("New(BaseURL %q) succeeded; want an error", u)
		}
	}
}

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
