package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// The end-to-end tests run the real server on a loopback port in front of
// fakeUpstream, an httptest server that speaks OpenAI's wire format, and
// drive it with the official Go SDK (or plain net/http where the raw bytes
// matter).

const (
	// teamKeyDefault is the key of the team that may use every model.
	teamKeyDefault = "sk-test"
	// teamKeyLimited belongs to a team whose allow-list is demo-chat only.
	teamKeyLimited = "sk-limited"
	// providerKey is the proxy's own upstream credential: it must never
	// reach a client or a log line.
	providerKey = "sk-upstream-SECRET-0xDEADBEEF"
	// promptCanary is sent as prompt text and completionCanary comes back
	// as completion text; neither may appear in a log line.
	promptCanary     = "prompt-canary-3f9c1a"
	completionCanary = "completion-canary-8d21"

	// upstreamModel is what the gpt-test alias is rewritten to, and
	// upstreamSnapshot is the dated name the fake answers with, as OpenAI
	// does.
	upstreamModel    = "gpt-4o-mini"
	upstreamSnapshot = "gpt-4o-mini-2024-07-18"
	upstreamEmbed    = "text-embedding-3-small"
	// maxBody is server.max_body_bytes in the test config.
	maxBody = 64 << 10
)

// e2eConfig is the test config. ${FAKE_URL} and ${UPSTREAM_KEY} come from
// the fake lookup, the demo key from its default.
const e2eConfig = `
server:
  listen: 127.0.0.1:0
  max_body_bytes: 65536
  drain_timeout: 5s

providers:
  - name: demo
    type: demo
  - name: fake
    type: openai
    base_url: ${FAKE_URL}/v1
    api_key: ${UPSTREAM_KEY}

models:
  - name: demo-chat
    deployments:
      - provider: demo
        model: demo-chat
  - name: demo-embed
    type: embedding
    deployments:
      - provider: demo
        model: demo-embed
  - name: gpt-test
    deployments:
      - provider: fake
        model: gpt-4o-mini
  - name: embed-test
    type: embedding
    deployments:
      - provider: fake
        model: text-embedding-3-small

teams:
  - name: default
    api_keys: ["${TEAM_KEY}"]
  - name: limited
    api_keys: ["${LIMITED_KEY:-sk-limited}"]
    models: [demo-chat]
`

// e2e is one running proxy (started by startProxy) in front of one fake
// upstream.
type e2e struct {
	*proxy
	t  *testing.T
	up *fakeUpstream
}

// startE2E starts a fake upstream and a proxy in front of it; both stop in
// t.Cleanup, and the cleanup also checks the invariants every response and
// log line must keep (startProxy: x-request-id, no secrets, no prompt
// text, no ERROR line).
func startE2E(t *testing.T, opts ...proxyOption) *e2e {
	t.Helper()
	return startE2EWith(t, e2eConfig, opts...)
}

// startE2EWith is startE2E with another config (e2eConfig, edited), which
// may use ${FAKE_URL}, ${UPSTREAM_KEY} and ${TEAM_KEY}; it logs at Debug.
func startE2EWith(t *testing.T, config string, opts ...proxyOption) *e2e {
	t.Helper()
	return startFakeE2E(t, config, append([]proxyOption{withDebugLogs()}, opts...)...)
}

// startFakeE2E starts a fake upstream and the proxy with config in front
// of it, through startProxy.
func startFakeE2E(t *testing.T, config string, opts ...proxyOption) *e2e {
	t.Helper()
	up := newFakeUpstream(t)
	env := map[string]string{"FAKE_URL": up.srv.URL, "UPSTREAM_KEY": providerKey, "TEAM_KEY": teamKeyDefault}
	return &e2e{proxy: startProxy(t, parseTestConfig(t, config, env), opts...), t: t, up: up}
}

// client is an SDK client for the proxy with the default team's key.
func (e *e2e) client(opts ...option.RequestOption) *openai.Client {
	base := []option.RequestOption{
		option.WithBaseURL(e.url + "/v1/"),
		option.WithAPIKey(teamKeyDefault),
		option.WithHTTPClient(e.hc),
	}
	c := openai.NewClient(append(base, opts...)...)
	return &c
}

// noRetry is a client that surfaces the first failure as it is.
func (e *e2e) noRetry(opts ...option.RequestOption) *openai.Client {
	return e.client(append([]option.RequestOption{option.WithMaxRetries(0)}, opts...)...)
}

// do sends a raw request to the proxy and reads the whole reply.
func (e *e2e) do(method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatalf("NewRequest: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// authHeader is the Authorization header for key.
func authHeader(key string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + key}
}

// chatParams is a one-message request for model with the prompt canary.
func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    openai.ChatModel(model),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello. " + promptCanary)},
	}
}

// checkTransport records, for every response, whether it carried an
// x-request-id (every response must, errors and streams included), and
// keeps the last request sent to each path.
type checkTransport struct {
	base    *http.Transport
	noCopy  bool // keep no request copies (benchmarks)
	mu      sync.Mutex
	missing []string
	sent    map[string]sentRequest
}

type sentRequest struct {
	header http.Header
	body   []byte
}

func (c *checkTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.noCopy {
		return c.checkID(req)
	}
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	c.mu.Lock()
	if c.sent == nil {
		c.sent = make(map[string]sentRequest)
	}
	c.sent[req.URL.Path] = sentRequest{header: req.Header.Clone(), body: body}
	c.mu.Unlock()
	return c.checkID(req)
}

// checkID sends req and notes a response without x-request-id.
func (c *checkTransport) checkID(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil && resp.Header.Get("X-Request-Id") == "" {
		c.mu.Lock()
		c.missing = append(c.missing, fmt.Sprintf("%s %s -> %d", req.Method, req.URL.Path, resp.StatusCode))
		c.mu.Unlock()
	}
	return resp, err
}

func (c *checkTransport) last(t *testing.T, path string) sentRequest {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.sent[path]
	if !ok {
		t.Fatalf("the client sent nothing to %s", path)
	}
	return r
}

// lastBody is the body of the last client request to path.
func (c *checkTransport) lastBody(t *testing.T, path string) []byte { return c.last(t, path).body }

// lastHeader is the header of the last client request to path.
func (c *checkTransport) lastHeader(t *testing.T, path string) http.Header {
	return c.last(t, path).header
}

func (c *checkTransport) missingIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.missing...)
}

// syncBuffer is a bytes.Buffer the server's logger and the test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sseEvents splits a raw SSE body into the payloads of its data: lines,
// one per event, in order. Comments (": ping") are dropped.
func sseEvents(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	for _, ev := range strings.Split(string(body), "\n\n") {
		if strings.TrimSpace(ev) == "" {
			continue
		}
		var data []string
		for _, line := range strings.Split(ev, "\n") {
			switch {
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			case strings.HasPrefix(line, ":"):
			default:
				t.Errorf("unexpected SSE line %q", line)
			}
		}
		if len(data) > 0 {
			out = append(out, strings.Join(data, "\n"))
		}
	}
	return out
}

// readEvent reads one SSE event's data from r.
func readEvent(r *bufio.Reader) (string, error) {
	var data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && data != "":
			return data, nil
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// eventually polls cond every 5 ms until it holds or d passes, and
// reports whether it held.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// topFields decodes a JSON object's members as raw bytes.
func topFields(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// errorShape checks that b is OpenAI's error body and returns it.
func errorShape(t *testing.T, b []byte) (msg, typ, code string) {
	t.Helper()
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(b, &outer); err != nil {
		t.Fatalf("error body is not JSON: %v\n%s", err, b)
	}
	inner := topFields(t, outer["error"])
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := inner[k]; !ok {
			t.Errorf("error body has no %q member: %s", k, b)
		}
	}
	var e struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
	}
	if err := json.Unmarshal(outer["error"], &e); err != nil {
		t.Fatalf("error member: %v\n%s", err, b)
	}
	if e.Message == "" || e.Type == "" {
		t.Errorf("error body has an empty message or type: %s", b)
	}
	if e.Code != nil {
		code = *e.Code
	}
	return e.Message, e.Type, code
}

// withTimeout is a context for one SDK call in a test.
func withTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
