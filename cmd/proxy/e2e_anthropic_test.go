package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
)

// TestE2EAnthropic drives an Anthropic deployment with the official OpenAI
// Go SDK: plain and streamed replies, tools (parallel, arguments split over
// many deltas), images, include_usage and upstream errors.
func TestE2EAnthropic(t *testing.T) {
	e, up := startClaudeE2E(t)

	t.Run("plain", func(t *testing.T) {
		up.answer(claudeText)
		resp, err := e.client().Chat.Completions.New(withTimeout(t), claudeParams())
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if got, want := resp.Choices[0].Message.Content, strings.Join(claudeText.text, ""); got != want {
			t.Errorf("content = %q; want %q", got, want)
		}
		if resp.Choices[0].FinishReason != "stop" || resp.Model != claudeSnapshot || resp.Object != "chat.completion" || resp.ID != "chatcmpl-msg_01Text" {
			t.Errorf("finish/model/object/id = %s/%s/%s/%s", resp.Choices[0].FinishReason, resp.Model, resp.Object, resp.ID)
		}
		if u := resp.Usage; u.PromptTokens != 112 || u.CompletionTokens != 7 || u.TotalTokens != 119 || u.PromptTokensDetails.CachedTokens != 100 {
			t.Errorf("usage = %+v; want prompt 112 (12 + 100 cached), completion 7, cached 100", u)
		}
		b := upstreamBody(t, up)
		var system []struct{ Text string }
		_ = json.Unmarshal(b["system"], &system)
		if len(system) != 1 || system[0].Text != "You are terse." || string(b["max_tokens"]) != "4096" || string(b["model"]) != `"claude-sonnet-4-5"` {
			t.Errorf("upstream system/max_tokens/model = %s/%s/%s", b["system"], b["max_tokens"], b["model"])
		}
	})

	t.Run("stream without include_usage", func(t *testing.T) {
		up.answer(claudeText)
		stream := e.client().Chat.Completions.NewStreaming(withTimeout(t), claudeParams())
		acc := openai.ChatCompletionAccumulator{}
		ids := map[string]bool{}
		for stream.Next() {
			c := stream.Current()
			acc.AddChunk(c)
			ids[c.ID] = true
			if len(c.Choices) == 0 {
				t.Errorf("usage-only chunk sent although include_usage was not asked: %s", c.RawJSON())
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if got, want := acc.Choices[0].Message.Content, strings.Join(claudeText.text, ""); got != want {
			t.Errorf("content = %q; want %q", got, want)
		}
		if len(ids) != 1 || acc.Choices[0].FinishReason != "stop" {
			t.Errorf("chunk ids = %v, finish_reason %q; want one id and stop", ids, acc.Choices[0].FinishReason)
		}
	})

	t.Run("stream with include_usage", func(t *testing.T) {
		up.answer(claudeText)
		params := claudeParams()
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := e.client().Chat.Completions.NewStreaming(withTimeout(t), params)
		acc := openai.ChatCompletionAccumulator{}
		var n, usageAt int
		for stream.Next() {
			n++
			acc.AddChunk(stream.Current())
			if len(stream.Current().Choices) == 0 {
				usageAt = n
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if usageAt != n || acc.Usage.PromptTokens != 112 || acc.Usage.CompletionTokens != 7 || acc.Usage.PromptTokensDetails.CachedTokens != 100 {
			t.Errorf("usage chunk at %d of %d, usage %+v; want last, 112/7 with 100 cached", usageAt, n, acc.Usage)
		}
		var ask struct{ Stream bool }
		_ = json.Unmarshal(up.last(t).Body, &ask)
		if !ask.Stream {
			t.Errorf("upstream request was not a stream")
		}
	})

	t.Run("tools plain", func(t *testing.T) {
		up.answer(claudeTools)
		params := claudeParams()
		params.Tools = claudeToolDefs()
		resp, err := e.client().Chat.Completions.New(withTimeout(t), params)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if resp.Choices[0].FinishReason != "tool_calls" || resp.Choices[0].Message.Content != "Checking." {
			t.Errorf("finish_reason %q content %q; want tool_calls and the text", resp.Choices[0].FinishReason, resp.Choices[0].Message.Content)
		}
		checkClaudeCalls(t, resp.Choices[0].Message.ToolCalls)
	})

	t.Run("tools streamed in parallel", func(t *testing.T) {
		up.answer(claudeTools)
		params := claudeParams()
		params.Tools = claudeToolDefs()
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := e.client().Chat.Completions.NewStreaming(withTimeout(t), params)
		acc := openai.ChatCompletionAccumulator{}
		var finished []string
		for stream.Next() {
			if !acc.AddChunk(stream.Current()) {
				t.Errorf("accumulator rejected chunk %s", stream.Current().RawJSON())
			}
			if tc, ok := acc.JustFinishedToolCall(); ok {
				finished = append(finished, tc.Name+tc.Arguments)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if got := acc.Choices[0].FinishReason; got != "tool_calls" {
			t.Errorf("finish_reason = %q; want tool_calls", got)
		}
		checkClaudeCalls(t, acc.Choices[0].Message.ToolCalls)
		want := []string{"get_weather" + strings.Join(claudeTools.tools[0].args, ""), "get_time" + strings.Join(claudeTools.tools[1].args, "")}
		if !reflect.DeepEqual(finished, want) {
			t.Errorf("JustFinishedToolCall = %q; want %q", finished, want)
		}
		if acc.Usage.TotalTokens != 120 {
			t.Errorf("total_tokens = %d; want 120", acc.Usage.TotalTokens)
		}
	})

	t.Run("tool results in a multi-turn conversation", func(t *testing.T) {
		up.answer(claudeText)
		params := claudeParams()
		params.Tools = claudeToolDefs()
		params.Messages = append(params.Messages,
			openai.ChatCompletionMessageParamUnion{OfAssistant: &openai.ChatCompletionAssistantMessageParam{
				ToolCalls: []openai.ChatCompletionMessageToolCallUnionParam{
					{OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{ID: "toolu_a",
						Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: "get_weather", Arguments: `{"location":"Paris"}`}}},
					{OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{ID: "toolu_b",
						Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: "get_time", Arguments: `{"tz":"Europe/Paris"}`}}},
				}}},
			openai.ToolMessage("18C", "toolu_a"),
			openai.ToolMessage("12:00", "toolu_b"))
		if _, err := e.client().Chat.Completions.New(withTimeout(t), params); err != nil {
			t.Fatalf("New: %v", err)
		}
		var msgs []struct {
			Role    string `json:"role"`
			Content []struct {
				Type      string `json:"type"`
				ID        string `json:"id"`
				ToolUseID string `json:"tool_use_id"`
			} `json:"content"`
		}
		_ = json.Unmarshal(upstreamBody(t, up)["messages"], &msgs)
		if len(msgs) != 3 || msgs[1].Role != "assistant" || len(msgs[1].Content) != 2 || msgs[1].Content[1].Type != "tool_use" ||
			msgs[2].Role != "user" || len(msgs[2].Content) != 2 || msgs[2].Content[1].ToolUseID != "toolu_b" {
			t.Errorf("upstream messages = %+v; want user, assistant with two tool_use, one user turn with two tool_result", msgs)
		}
	})

	t.Run("image input", func(t *testing.T) {
		up.answer(claudeText)
		params := claudeParams()
		params.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
			openai.TextContentPart("Describe these. " + promptCanary),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64,iVBORw0KGgo="}),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "https://example.com/cat.jpg", Detail: "high"}),
		})}
		if _, err := e.client().Chat.Completions.New(withTimeout(t), params); err != nil {
			t.Fatalf("New: %v", err)
		}
		var msgs []struct {
			Content []struct {
				Type   string            `json:"type"`
				Source map[string]string `json:"source"`
			} `json:"content"`
		}
		_ = json.Unmarshal(upstreamBody(t, up)["messages"], &msgs)
		want := []map[string]string{{"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}, {"type": "url", "url": "https://example.com/cat.jpg"}}
		if len(msgs) != 1 || len(msgs[0].Content) != 3 || !reflect.DeepEqual(msgs[0].Content[1].Source, want[0]) || !reflect.DeepEqual(msgs[0].Content[2].Source, want[1]) {
			t.Errorf("upstream content = %+v; want text, a base64 image and a url image", msgs)
		}
	})

	t.Run("400 keeps Anthropic's message", func(t *testing.T) {
		const msg = "messages.1.content.0.image.source.base64: invalid base64 data"
		up.fail(400, nil, `{"type":"error","error":{"type":"invalid_request_error","message":"`+msg+`"},"request_id":"req_2"}`)
		_, err := e.noRetry().Chat.Completions.New(withTimeout(t), claudeParams())
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, msg) || apiErr.Type != "invalid_request_error" {
			t.Fatalf("err = %v; want 400 invalid_request_error with %q", err, msg)
		}
	})

	t.Run("401 from Anthropic is a 502 without its text", func(t *testing.T) {
		up.fail(401, nil, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`)
		_, err := e.noRetry().Chat.Completions.New(withTimeout(t), claudeParams())
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 502 || strings.Contains(apiErr.Message, "x-api-key") {
			t.Fatalf("err = %v; want 502 without Anthropic's auth text", err)
		}
	})

	t.Run("n above 1 is rejected before calling Anthropic", func(t *testing.T) {
		up.answer(claudeText)
		params := claudeParams()
		params.N = openai.Int(2)
		_, err := e.noRetry().Chat.Completions.New(withTimeout(t), params)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "n" {
			t.Fatalf("err = %v; want 400 on param n", err)
		}
	})

	// Last: the router cools a deployment down for Retry-After after a 429.
	t.Run("429 reaches the SDK as 429", func(t *testing.T) {
		up.fail(429, http.Header{"Retry-After": {"3"}}, `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed your rate limit"},"request_id":"req_1"}`)
		_, err := e.noRetry().Chat.Completions.New(withTimeout(t), claudeParams())
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type != "rate_limit_error" {
			t.Fatalf("err = %v; want a 429 rate_limit_error", err)
		}
		if ra := apiErr.Response.Header.Get("Retry-After"); ra != "3" {
			t.Errorf("Retry-After = %q; want 3", ra)
		}
	})
}
