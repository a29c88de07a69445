package anthropic

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"llmproxy/router"
)

const secretKey = "sk-ant-api03-SECRET"

func TestStatusError(t *testing.T) {
	c, _ := New(Config{Name: "claude", APIKey: secretKey}, nil)
	for _, tc := range []struct {
		name    string
		status  int
		header  http.Header
		body    string
		kind    router.Kind
		code    int
		retry   time.Duration
		msg     string
		errCode string
	}{
		{name: "429 with retry-after", status: 429, header: http.Header{"Retry-After": {"7"}},
			body: `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`,
			kind: router.KindUpstreamRateLimited, code: 429, retry: 7 * time.Second, msg: "rate limited"},
		{name: "529 overloaded", status: 529, body: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			kind: router.KindUpstream, code: 502, msg: "overloaded"},
		{name: "500", status: 500, body: `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, kind: router.KindUpstream, code: 502},
		{name: "504", status: 504, body: `<html>gateway</html>`, kind: router.KindUpstreamTimeout, code: 504},
		{name: "400 keeps status and message", status: 400,
			body: `{"type":"error","error":{"type":"invalid_request_error","message":"messages.0.content: Input should be a valid list"},"request_id":"req_1"}`,
			kind: router.KindInvalidRequest, code: 400, msg: "messages.0.content: Input should be a valid list"},
		{name: "400 prompt too long", status: 400, body: `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}`,
			kind: router.KindInvalidRequest, code: 400, msg: "prompt is too long", errCode: "context_length_exceeded"},
		{name: "413", status: 413, body: `{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}`,
			kind: router.KindInvalidRequest, code: 413, msg: "maximum allowed"},
		{name: "401 hides the key", status: 401, body: `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key ` + secretKey + `"}}`,
			kind: router.KindUpstream, code: 502, msg: "credentials"},
		{name: "403", status: 403, body: `{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission"}}`,
			kind: router.KindUpstream, code: 502, msg: "credentials"},
		{name: "400 echoing the key is redacted", status: 400, body: `{"type":"error","error":{"type":"invalid_request_error","message":"bad ` + secretKey + `"}}`,
			kind: router.KindInvalidRequest, code: 400, msg: "bad [redacted]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: tc.header, Body: io.NopCloser(strings.NewReader(tc.body))}
			if resp.Header == nil {
				resp.Header = http.Header{}
			}
			e := c.statusError(resp)
			if e.Kind != tc.kind || e.StatusCode() != tc.code || e.RetryAfter != tc.retry || !strings.Contains(e.Message, tc.msg) || e.Code != tc.errCode {
				t.Errorf("statusError = kind %v status %d retry %v code %q msg %q; want %v %d %v %q %q", e.Kind, e.StatusCode(), e.RetryAfter, e.Code, e.Message, tc.kind, tc.code, tc.retry, tc.errCode, tc.msg)
			}
			if strings.Contains(e.Error(), secretKey) {
				t.Errorf("error leaks the key: %v", e)
			}
		})
	}
}

func TestNewBaseURL(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"", "https://api.anthropic.com/v1/messages"},
		{"https://api.anthropic.com", "https://api.anthropic.com/v1/messages"},
		{"https://api.anthropic.com/v1/", "https://api.anthropic.com/v1/messages"},
		{"http://gw.internal:8080/anthropic/", "http://gw.internal:8080/anthropic/v1/messages"},
	} {
		c, err := New(Config{Name: "a", BaseURL: tc.base, APIKey: "k"}, nil)
		if err != nil || c.url != tc.want {
			t.Errorf("New(base_url %q).url = %q (%v); want %q", tc.base, c.url, err, tc.want)
		}
	}
	if _, err := New(Config{Name: "a", BaseURL: "api.anthropic.com"}, nil); err == nil {
		t.Errorf("New with a relative base_url succeeded")
	}
}

// TestChatRequest checks the upstream request of a plain call: headers
// (extra headers cannot replace ours), the translated body, and the
// translated reply.
func TestChatRequest(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, body = r, must(io.ReadAll(r.Body))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"msg_9","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}`)
	}))
	defer srv.Close()
	c, err := New(Config{Name: "a", BaseURL: srv.URL, APIKey: "k1", APIVersion: "2024-01-01",
		Headers: map[string]string{"anthropic-beta": "prompt-caching-2024-07-31", "x-api-key": "other", "Anthropic-Version": "x"}}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := router.ParseChatRequest([]byte(`{"model":"alias","messages":[{"role":"user","content":"hi"}],"user":"u1"}`))
	req.Target.Model = "claude-x"
	s, err := c.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch, err := s.Next()
	if err != nil || !ch.Whole || ch.Usage == nil || ch.Usage.TotalTokens != 4 || ch.Model != "claude-x" {
		t.Fatalf("Next = %+v, %v; want the whole reply with usage", ch, err)
	}
	if got.URL.Path != "/v1/messages" || got.Header.Get("x-api-key") != "k1" || got.Header.Get("anthropic-version") != "2024-01-01" ||
		got.Header.Get("anthropic-beta") != "prompt-caching-2024-07-31" || got.Header.Get("Authorization") != "" {
		t.Errorf("upstream request %s with headers %v", got.URL.Path, got.Header)
	}
	var b struct {
		Model     string `json:"model"`
		MaxTokens int    `json:"max_tokens"`
		Metadata  struct {
			UserID string `json:"user_id"`
		} `json:"metadata"`
	}
	json.Unmarshal(body, &b)
	if b.Model != "claude-x" || b.MaxTokens != DefaultMaxTokens || b.Metadata.UserID != "u1" {
		t.Errorf("upstream body = %s; want model claude-x, max_tokens %d, metadata.user_id u1", body, DefaultMaxTokens)
	}
}

func TestChatRejectsBeforeCalling(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }))
	defer srv.Close()
	c, _ := New(Config{Name: "a", BaseURL: srv.URL, APIKey: "k"}, srv.Client())
	req, _ := router.ParseChatRequest([]byte(`{"model":"alias","messages":[{"role":"user","content":"hi"}],"n":3}`))
	_, err := c.Chat(context.Background(), req)
	if e := router.AsError(err); e.Kind != router.KindInvalidRequest || e.Param != "n" || e.Provider != "a" {
		t.Errorf("Chat(n=3) = %v; want KindInvalidRequest on n", err)
	}
	noKey, _ := New(Config{Name: "a"}, nil)
	if _, err := noKey.Chat(context.Background(), req); router.AsError(err).Kind != router.KindUpstream {
		t.Errorf("Chat without a key = %v; want KindUpstream", err)
	}
	if calls != 0 {
		t.Errorf("upstream called %d times; want 0", calls)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
