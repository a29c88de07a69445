package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
)

// The Anthropic end-to-end tests run the proxy in front of claudeFake, an
// httptest server speaking Anthropic's Messages API (API reference >
// Messages; Streaming Messages > Event types), and drive it with the
// official OpenAI Go SDK: the SDK must not be able to tell that Claude
// answered.

const claudeConfig = `
server:
  listen: 127.0.0.1:0
  max_body_bytes: 65536
  drain_timeout: 5s

providers:
  - name: anthropic
    type: anthropic
    base_url: ${ANTHROPIC_URL}
    api_key: ${UPSTREAM_KEY}

models:
  - name: claude-test
    deployments:
      - provider: anthropic
        model: claude-sonnet-4-5

teams:
  - name: default
    api_keys: ["${TEAM_KEY}"]
`

const claudeSnapshot = "claude-sonnet-4-5-20250929"

// claudeReply is what claudeFake answers with.
type claudeReply struct {
	id    string
	text  []string // text deltas; a plain reply joins them
	tools []call   // tool_use blocks; args are the input_json_delta fragments
	stop  string
	// input, cacheRead and output are Anthropic's usage counts.
	input, cacheRead, output int
}

var claudeText = claudeReply{id: "msg_01Text", text: []string{"Hello", " from", " Claude, ", completionCanary, "!"},
	stop: "end_turn", input: 12, cacheRead: 100, output: 7}

// claudeTools has two parallel calls after a text block, so the tool_use
// content indices (1, 2) differ from the OpenAI tool-call indices (0, 1),
// and arguments split into many small fragments.
var claudeTools = claudeReply{id: "msg_01Tools", text: []string{"Checking."}, stop: "tool_use", input: 80, output: 40,
	tools: []call{
		{id: "toolu_01Weather", name: "get_weather", args: splitEvery(`{"location": "Paris, FR", "unit": "celsius"}`, 3)},
		{id: "toolu_02Time", name: "get_time", args: splitEvery(`{"tz": "Europe/Paris"}`, 1)},
	}}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out, s = append(out, s[:n]), s[n:]
	}
	return append(out, s)
}

// claudeFake is an Anthropic upstream that records every request.
type claudeFake struct {
	srv     *httptest.Server
	mu      sync.Mutex
	handler func(w http.ResponseWriter, body []byte)
	reqs    []upstreamRequest
}

func (f *claudeFake) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, upstreamRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	h := f.handler
	f.mu.Unlock()
	h(w, body)
}

func (f *claudeFake) answer(rep claudeReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = func(w http.ResponseWriter, body []byte) { serveClaude(w, body, rep) }
}

func (f *claudeFake) fail(status int, header http.Header, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = func(w http.ResponseWriter, _ []byte) {
		for k, v := range header {
			w.Header()[k] = v
		}
		writeUpstreamError(w, status, body)
	}
}

func (f *claudeFake) last(t *testing.T) upstreamRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("the Anthropic fake received no request")
	}
	return f.reqs[len(f.reqs)-1]
}

// serveClaude answers a Messages request with rep, plain or streamed.
func serveClaude(w http.ResponseWriter, body []byte, rep claudeReply) {
	var ask struct {
		Stream bool `json:"stream"`
	}
	_ = json.Unmarshal(body, &ask)
	usage := map[string]int{"input_tokens": rep.input, "cache_creation_input_tokens": 0, "cache_read_input_tokens": rep.cacheRead}
	if !ask.Stream {
		var content []map[string]any
		if len(rep.text) > 0 {
			content = append(content, map[string]any{"type": "text", "text": strings.Join(rep.text, "")})
		}
		for _, c := range rep.tools {
			content = append(content, map[string]any{"type": "tool_use", "id": c.id, "name": c.name, "input": json.RawMessage(strings.Join(c.args, ""))})
		}
		usage["output_tokens"] = rep.output
		b, _ := json.Marshal(map[string]any{"id": rep.id, "type": "message", "role": "assistant", "model": claudeSnapshot,
			"content": content, "stop_reason": rep.stop, "stop_sequence": nil, "usage": usage})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		return
	}
	sw := newSSEWriter(w)
	ev := func(v map[string]any) {
		b, _ := json.Marshal(v)
		sw.raw("event: " + v["type"].(string) + "\ndata: " + string(b) + "\n\n")
	}
	usage["output_tokens"] = 1
	ev(map[string]any{"type": "message_start", "message": map[string]any{"id": rep.id, "type": "message", "role": "assistant",
		"model": claudeSnapshot, "content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": usage}})
	ev(map[string]any{"type": "ping"})
	index := 0
	if len(rep.text) > 0 {
		ev(map[string]any{"type": "content_block_start", "index": index, "content_block": map[string]any{"type": "text", "text": ""}})
		for _, s := range rep.text {
			ev(map[string]any{"type": "content_block_delta", "index": index, "delta": map[string]any{"type": "text_delta", "text": s}})
		}
		ev(map[string]any{"type": "content_block_stop", "index": index})
		index++
	}
	for _, c := range rep.tools {
		ev(map[string]any{"type": "content_block_start", "index": index, "content_block": map[string]any{"type": "tool_use", "id": c.id, "name": c.name, "input": map[string]any{}}})
		for _, a := range c.args {
			ev(map[string]any{"type": "content_block_delta", "index": index, "delta": map[string]any{"type": "input_json_delta", "partial_json": a}})
		}
		ev(map[string]any{"type": "content_block_stop", "index": index})
		index++
	}
	ev(map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": rep.stop, "stop_sequence": nil}, "usage": map[string]any{"output_tokens": rep.output}})
	ev(map[string]any{"type": "message_stop"})
}

// startClaudeE2E runs the proxy in front of a claudeFake, through
// startProxy (its cleanup checks x-request-id, secrets and ERROR lines).
func startClaudeE2E(t *testing.T) (*e2e, *claudeFake) {
	t.Helper()
	up := &claudeFake{}
	up.handler = func(w http.ResponseWriter, body []byte) { serveClaude(w, body, claudeText) }
	up.srv = httptest.NewServer(http.HandlerFunc(up.serveHTTP))
	t.Cleanup(up.srv.Close)
	env := map[string]string{"ANTHROPIC_URL": up.srv.URL, "UPSTREAM_KEY": providerKey, "TEAM_KEY": teamKeyDefault}
	p := startProxy(t, parseTestConfig(t, claudeConfig, env), withDebugLogs())
	return &e2e{proxy: p, t: t}, up
}

func claudeParams() openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model: "claude-test",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("You are terse."),
			openai.UserMessage("Say hello. " + promptCanary),
		},
	}
}

func claudeToolDefs() []openai.ChatCompletionToolUnionParam {
	return []openai.ChatCompletionToolUnionParam{
		openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "get_weather",
			Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"location": map[string]any{"type": "string"}, "unit": map[string]any{"type": "string"}}}}),
		openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "get_time",
			Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"tz": map[string]any{"type": "string"}}}}),
	}
}

// checkClaudeCalls compares calls with claudeTools', arguments as JSON.
func checkClaudeCalls(t *testing.T, calls []openai.ChatCompletionMessageToolCallUnion) {
	t.Helper()
	if len(calls) != len(claudeTools.tools) {
		t.Fatalf("got %d tool calls; want %d", len(calls), len(claudeTools.tools))
	}
	for i, want := range claudeTools.tools {
		got := calls[i]
		var g, w any
		_ = json.Unmarshal([]byte(got.Function.Arguments), &g)
		_ = json.Unmarshal([]byte(strings.Join(want.args, "")), &w)
		if got.ID != want.id || got.Type != "function" || got.Function.Name != want.name || !reflect.DeepEqual(g, w) {
			t.Errorf("call %d = %s %s %s(%s); want %s function %s(%s)", i, got.ID, got.Type, got.Function.Name, got.Function.Arguments,
				want.id, want.name, strings.Join(want.args, ""))
		}
	}
}

// upstreamBody decodes the Messages request the fake last received.
func upstreamBody(t *testing.T, up *claudeFake) map[string]json.RawMessage {
	t.Helper()
	r := up.last(t)
	if r.Path != "/v1/messages" || r.Header.Get("x-api-key") != providerKey || r.Header.Get("anthropic-version") != "2023-06-01" {
		t.Errorf("upstream request %s x-api-key set=%v anthropic-version=%q; want /v1/messages with both", r.Path,
			r.Header.Get("x-api-key") == providerKey, r.Header.Get("anthropic-version"))
	}
	if r.Header.Get("Authorization") != "" {
		t.Errorf("the client's Authorization header reached Anthropic")
	}
	return topFields(t, r.Body)
}
