package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestE2EChat drives /v1/chat/completions through the SDK against the fake
// OpenAI upstream.
func TestE2EChat(t *testing.T) {
	e := startE2E(t)

	t.Run("plain reply and byte-identical pass-through", func(t *testing.T) {
		e.up.reset()
		params := chatParams("gpt-test")
		params.Seed = openai.Int(42)
		params.Logprobs = openai.Bool(true)
		params.ParallelToolCalls = openai.Bool(false)
		params.ReasoningEffort = openai.ReasoningEffortLow
		params.N = openai.Int(1)
		params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &openai.ResponseFormatJSONObjectParam{}}
		params.Tools = []openai.ChatCompletionToolUnionParam{weatherTool()}
		var httpResp *http.Response
		resp, err := e.client().Chat.Completions.New(withTimeout(t), params,
			option.WithJSONSet("x_future_field", map[string]any{"nested": []any{1, "two", 3.5}, "flag": true}),
			option.WithResponseInto(&httpResp))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		want := strings.Join(defaultReply.content, "")
		if got := resp.Choices[0].Message.Content; got != want {
			t.Errorf("content = %q; want %q", got, want)
		}
		if resp.ID != defaultReply.id {
			t.Errorf("id = %q; want %q", resp.ID, defaultReply.id)
		}
		if resp.Model != upstreamSnapshot {
			t.Errorf("model = %q; want the upstream's %q", resp.Model, upstreamSnapshot)
		}
		if u := resp.Usage; u.PromptTokens != 17 || u.CompletionTokens != 5 || u.TotalTokens != 22 {
			t.Errorf("usage = %d/%d/%d; want 17/5/22", u.PromptTokens, u.CompletionTokens, u.TotalTokens)
		}
		if got := resp.Choices[0].FinishReason; got != "stop" {
			t.Errorf("finish_reason = %q; want stop", got)
		}
		if ct := httpResp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q; want application/json", ct)
		}

		sent := topFields(t, e.tr.lastBody(t, "/v1/chat/completions"))
		got := topFields(t, e.up.last(t).Body)
		if m := string(got["model"]); m != `"`+upstreamModel+`"` {
			t.Errorf("upstream model = %s; want %q", m, upstreamModel)
		}
		for _, k := range []string{"seed", "logprobs", "parallel_tool_calls", "reasoning_effort", "response_format", "tools", "n", "x_future_field", "messages"} {
			if _, ok := sent[k]; !ok {
				t.Fatalf("the SDK did not send %q; the test is broken", k)
			}
			if !bytes.Equal(got[k], sent[k]) {
				t.Errorf("upstream %s = %s; want byte-identical %s", k, got[k], sent[k])
			}
		}
		for k := range got {
			if _, ok := sent[k]; !ok {
				t.Errorf("upstream got member %q the client did not send", k)
			}
		}
	})

	t.Run("raw body keeps odd formatting", func(t *testing.T) {
		e.up.reset()
		body := `{"messages" : [ {"role":"user","content":"caf\u00e9 ` + promptCanary + `"} ],` +
			`"model":"gpt-test", "logit_bias": {"50256" : -100}, "x_vendor": [1, 2.50, "\u2028", {"a" :null}]}`
		resp, b := e.do("POST", "/v1/chat/completions", body, authHeader(teamKeyDefault))
		if resp.StatusCode != 200 {
			t.Fatalf("status = %d; want 200\n%s", resp.StatusCode, b)
		}
		sent := topFields(t, []byte(body))
		got := topFields(t, e.up.last(t).Body)
		for _, k := range []string{"messages", "logit_bias", "x_vendor"} {
			if !bytes.Equal(got[k], sent[k]) {
				t.Errorf("upstream %s = %s; want byte-identical %s", k, got[k], sent[k])
			}
		}
		if len(got) != len(sent) {
			t.Errorf("upstream got %d members; want %d", len(got), len(sent))
		}
		if up := e.up.last(t); up.Path != "/v1/chat/completions" || up.Method != "POST" {
			t.Errorf("upstream request = %s %s; want POST /v1/chat/completions", up.Method, up.Path)
		}
		want, _ := json.Marshal(completion(defaultReply))
		if !bytes.Equal(b, want) {
			t.Errorf("reply =\n%s\nwant the upstream's bytes\n%s", b, want)
		}
	})

	t.Run("raw stream transcript is the upstream's events", func(t *testing.T) {
		e.up.reset()
		body := `{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi ` + promptCanary + `"}]}`
		resp, b := e.do("POST", "/v1/chat/completions", body, authHeader(teamKeyDefault))
		if resp.StatusCode != 200 {
			t.Fatalf("status = %d; want 200\n%s", resp.StatusCode, b)
		}
		for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
			if got := resp.Header.Get(k); !strings.HasPrefix(got, want) {
				t.Errorf("%s = %q; want %q", k, got, want)
			}
		}
		var want []string
		for _, c := range chunks(defaultReply, true) {
			j, _ := json.Marshal(c)
			want = append(want, string(j))
		}
		want = append(want, "[DONE]")
		if got := sseEvents(t, b); !reflect.DeepEqual(got, want) {
			t.Errorf("events =\n%s\nwant the upstream's\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
			t.Errorf("transcript ends %q; want data: [DONE] and a blank line", b[max(0, len(b)-20):])
		}
	})

	for _, tc := range []struct {
		name string
		opts openai.ChatCompletionStreamOptionsParam
	}{
		{"stream without stream_options", openai.ChatCompletionStreamOptionsParam{}},
		{"stream with include_usage false", openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(false)}},
	} {
		t.Run(tc.name, func(t *testing.T) { streamWithoutUsage(t, e, tc.opts) })
	}

	t.Run("stream with include_usage", func(t *testing.T) {
		e.up.reset()
		params := chatParams("gpt-test")
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := e.client().Chat.Completions.NewStreaming(withTimeout(t), params)
		acc := openai.ChatCompletionAccumulator{}
		var usageChunks, n, usageAt int
		for stream.Next() {
			c := stream.Current()
			n++
			acc.AddChunk(c)
			if len(c.Choices) == 0 {
				usageChunks++
				usageAt = n
				if u := c.Usage; u.PromptTokens != 17 || u.CompletionTokens != 5 || u.TotalTokens != 22 {
					t.Errorf("usage = %d/%d/%d; want 17/5/22", u.PromptTokens, u.CompletionTokens, u.TotalTokens)
				}
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if usageChunks != 1 || usageAt != n {
			t.Errorf("got %d usage chunks, the last at %d of %d; want exactly one, last", usageChunks, usageAt, n)
		}
		if acc.Usage.TotalTokens != 22 {
			t.Errorf("accumulated total_tokens = %d; want 22", acc.Usage.TotalTokens)
		}
		if got, want := acc.Choices[0].Message.Content, strings.Join(defaultReply.content, ""); got != want {
			t.Errorf("content = %q; want %q", got, want)
		}
	})

	t.Run("each chunk is flushed as it arrives", func(t *testing.T) {
		e.up.reset()
		release := make(chan struct{})
		var sentSecond atomic.Bool
		e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
			cs := chunks(defaultReply, parseAsk(body).includeUsage())
			sw := newSSEWriter(w)
			sw.event(cs[0])
			sw.event(cs[1])
			select {
			case <-release:
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Second): // the proxy buffered: let the test see it
			}
			sentSecond.Store(true)
			for _, c := range cs[2:] {
				sw.event(c)
			}
			sw.done()
		})
		stream := e.client().Chat.Completions.NewStreaming(withTimeout(t), chatParams("gpt-test"))
		defer stream.Close()
		for range 2 {
			if !stream.Next() {
				t.Fatalf("stream ended before the first chunks: %v", stream.Err())
			}
		}
		if sentSecond.Load() {
			t.Fatal("the first chunks reached the client only after the upstream sent the rest: the proxy buffers")
		}
		if got := stream.Current().Choices[0].Delta.Content; got != defaultReply.content[0] {
			t.Errorf("second chunk content = %q; want %q", got, defaultReply.content[0])
		}
		close(release)
		for stream.Next() {
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
	})

	t.Run("tool calls, plain", func(t *testing.T) {
		e.up.reset()
		e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) { serveChat(w, body, toolReply) })
		params := chatParams("gpt-test")
		params.Tools = []openai.ChatCompletionToolUnionParam{weatherTool(), timeTool()}
		resp, err := e.client().Chat.Completions.New(withTimeout(t), params)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if got := resp.Choices[0].FinishReason; got != "tool_calls" {
			t.Errorf("finish_reason = %q; want tool_calls", got)
		}
		checkToolCalls(t, resp.Choices[0].Message.ToolCalls)
	})

	t.Run("tool calls, streamed in parallel", func(t *testing.T) {
		e.up.reset()
		e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) { serveChat(w, body, toolReply) })
		params := chatParams("gpt-test")
		params.Tools = []openai.ChatCompletionToolUnionParam{weatherTool(), timeTool()}
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := e.client().Chat.Completions.NewStreaming(withTimeout(t), params)
		acc := openai.ChatCompletionAccumulator{}
		var finished []string
		for stream.Next() {
			if !acc.AddChunk(stream.Current()) {
				t.Errorf("accumulator rejected chunk %s", stream.Current().RawJSON())
			}
			if tc, ok := acc.JustFinishedToolCall(); ok {
				finished = append(finished, tc.Name)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if got := acc.Choices[0].FinishReason; got != "tool_calls" {
			t.Errorf("finish_reason = %q; want tool_calls", got)
		}
		checkToolCalls(t, acc.Choices[0].Message.ToolCalls)
		if want := []string{"get_weather", "get_time"}; !reflect.DeepEqual(finished, want) {
			t.Errorf("JustFinishedToolCall names = %q; want %q", finished, want)
		}
		if acc.Usage.TotalTokens != 120 {
			t.Errorf("total_tokens = %d; want 120", acc.Usage.TotalTokens)
		}
	})

	t.Run("client org, project and key stay at the proxy", func(t *testing.T) {
		e.up.reset()
		c := e.client(option.WithOrganization("org-client-123"), option.WithProject("proj_client_456"))
		if _, err := c.Chat.Completions.New(withTimeout(t), chatParams("gpt-test")); err != nil {
			t.Fatalf("New: %v", err)
		}
		if e.tr.lastHeader(t, "/v1/chat/completions").Get("OpenAI-Organization") != "org-client-123" {
			t.Fatal("the SDK did not send OpenAI-Organization; the test is broken")
		}
		h := e.up.last(t).Header
		for _, k := range []string{"OpenAI-Organization", "OpenAI-Project"} {
			if v := h.Get(k); v != "" {
				t.Errorf("upstream got %s: %q; want it dropped", k, v)
			}
		}
		if got := h.Get("Authorization"); got != "Bearer "+providerKey {
			t.Errorf("upstream Authorization = %q; want the provider key", got)
		}
	})

	t.Run("x-request-id", func(t *testing.T) {
		e.up.reset()
		var r1, r2 *http.Response
		c := e.client()
		if _, err := c.Chat.Completions.New(withTimeout(t), chatParams("gpt-test"), option.WithResponseInto(&r1)); err != nil {
			t.Fatalf("New: %v", err)
		}
		if id := r1.Header.Get("X-Request-Id"); id == "" {
			t.Error("x-request-id is empty")
		}
		stream := c.Chat.Completions.NewStreaming(withTimeout(t), chatParams("gpt-test"),
			option.WithHeader("X-Request-Id", "trace-abc-123"), option.WithResponseInto(&r2))
		for stream.Next() {
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if id := r2.Header.Get("X-Request-Id"); id != "trace-abc-123" {
			t.Errorf("stream x-request-id = %q; want the client's trace-abc-123", id)
		}
		if ct := r2.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("stream Content-Type = %q; want text/event-stream", ct)
		}
	})
}

// streamWithoutUsage streams from gpt-test without asking for usage: the
// proxy still asks the upstream (it counts tokens) but drops the chunk.
func streamWithoutUsage(t *testing.T, e *e2e, opts openai.ChatCompletionStreamOptionsParam) {
	e.up.reset()
	params := chatParams("gpt-test")
	params.StreamOptions = opts
	stream := e.client().Chat.Completions.NewStreaming(withTimeout(t), params)
	acc := openai.ChatCompletionAccumulator{}
	n := 0
	for stream.Next() {
		c := stream.Current()
		n++
		acc.AddChunk(c)
		if len(c.Choices) == 0 {
			t.Errorf("chunk %d has choices: []; the client did not ask for usage: %s", n, c.RawJSON())
		}
		if c.JSON.Usage.Valid() {
			t.Errorf("chunk %d carries usage the client did not ask for: %s", n, c.RawJSON())
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if want := len(defaultReply.content) + 2; n != want {
		t.Errorf("got %d chunks; want %d", n, want)
	}
	if got, want := acc.Choices[0].Message.Content, strings.Join(defaultReply.content, ""); got != want {
		t.Errorf("content = %q; want %q", got, want)
	}
	ask := parseAsk(e.up.last(t).Body)
	if !ask.Stream || !ask.includeUsage() {
		t.Errorf("upstream got stream=%v include_usage=%v; want both true (the proxy counts tokens)", ask.Stream, ask.includeUsage())
	}
}

func weatherTool() openai.ChatCompletionToolUnionParam {
	return openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name:        "get_weather",
		Description: openai.String("Current weather for a place."),
		Parameters: openai.FunctionParameters{
			"type": "object",
			"properties": map[string]any{
				"location": map[string]any{"type": "string"},
				"unit":     map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
			},
			"required": []string{"location"},
		},
	})
}

func timeTool() openai.ChatCompletionToolUnionParam {
	return openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name:       "get_time",
		Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"tz": map[string]any{"type": "string"}}},
	})
}

// checkToolCalls compares calls with toolReply's, arguments as JSON.
func checkToolCalls(t *testing.T, calls []openai.ChatCompletionMessageToolCallUnion) {
	t.Helper()
	if len(calls) != len(toolReply.calls) {
		t.Fatalf("got %d tool calls; want %d", len(calls), len(toolReply.calls))
	}
	for i, want := range toolReply.calls {
		got := calls[i]
		if got.ID != want.id || got.Type != "function" || got.Function.Name != want.name {
			t.Errorf("call %d = %s %s %s; want %s function %s", i, got.ID, got.Type, got.Function.Name, want.id, want.name)
		}
		var g, w any
		if err := json.Unmarshal([]byte(got.Function.Arguments), &g); err != nil {
			t.Errorf("call %d arguments %q are not JSON: %v", i, got.Function.Arguments, err)
		}
		_ = json.Unmarshal([]byte(strings.Join(want.args, "")), &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("call %d arguments = %s; want %s", i, got.Function.Arguments, strings.Join(want.args, ""))
		}
	}
}
