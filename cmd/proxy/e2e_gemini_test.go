package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
)

const (
	geminiModel   = "gemini-2.5-flash"
	geminiVersion = "gemini-2.5-flash-preview-05-20"
	geminiEmbed   = "text-embedding-004"
)

// geminiReply is what the Gemini fake answers with.
type geminiReply struct {
	text  []string // one SSE event each; a plain reply joins them
	calls []call   // functionCall parts, sent whole in one event
	usage string   // usageMetadata JSON of the last event
}

var (
	geminiText = geminiReply{text: []string{"Hello", " there", ", ", completionCanary, "!"},
		usage: `{"promptTokenCount":17,"candidatesTokenCount":5,"thoughtsTokenCount":3,"totalTokenCount":25}`}
	geminiTools = geminiReply{calls: toolReply.calls,
		usage: `{"promptTokenCount":80,"candidatesTokenCount":40,"totalTokenCount":120}`}
)

// geminiHandler answers like the Generative Language API ("Generating
// content": generateContent returns one GenerateContentResponse,
// streamGenerateContent?alt=sse one per SSE event, no [DONE]; errors are
// {"error":{"code","message","status"}}).
func geminiHandler(rep geminiReply) func(w http.ResponseWriter, r *http.Request, body []byte) {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Header.Get("x-goog-api-key") != providerKey {
			writeUpstreamError(w, 400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}`)
			return
		}
		switch r.URL.Path {
		case "/v1beta/models/" + geminiEmbed + ":batchEmbedContents":
			serveGeminiEmbed(w, body)
		case "/v1beta/models/" + geminiModel + ":generateContent":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"candidates":[{"content":{"parts":%s,"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":%s,"modelVersion":%q,"responseId":"resp-plain"}`,
				geminiParts(rep, strings.Join(rep.text, "")), rep.usage, geminiVersion)
		case "/v1beta/models/" + geminiModel + ":streamGenerateContent":
			sw := newSSEWriter(w)
			ev := func(parts, finish, usage string) {
				sw.raw(fmt.Sprintf(`data: {"candidates":[{"content":{"parts":%s,"role":"model"}%s,"index":0}],"usageMetadata":%s,"modelVersion":%q,"responseId":"resp-stream"}`+"\r\n\r\n",
					parts, finish, usage, geminiVersion))
			}
			for _, s := range rep.text {
				ev(geminiParts(geminiReply{}, s), "", `{"promptTokenCount":17,"totalTokenCount":17}`)
			}
			if len(rep.calls) > 0 {
				ev(geminiParts(rep, ""), "", `{"promptTokenCount":80,"totalTokenCount":80}`)
			}
			ev(`[{"text":""}]`, `,"finishReason":"STOP"`, rep.usage)
		default:
			writeUpstreamError(w, 404, `{"error":{"code":404,"message":"models/x is not found for API version v1beta","status":"NOT_FOUND"}}`)
		}
	}
}

func geminiParts(rep geminiReply, text string) string {
	var parts []string
	if text != "" {
		b, _ := json.Marshal(text)
		parts = append(parts, `{"text":`+string(b)+`}`)
	}
	for _, c := range rep.calls {
		parts = append(parts, fmt.Sprintf(`{"functionCall":{"name":%q,"args":%s}}`, c.name, strings.Join(c.args, "")))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// serveGeminiEmbed answers batchEmbedContents with fakeVector(i).
func serveGeminiEmbed(w http.ResponseWriter, body []byte) {
	var req struct {
		Requests []json.RawMessage `json:"requests"`
	}
	json.Unmarshal(body, &req)
	type emb struct {
		Values []float32 `json:"values"`
	}
	out := struct {
		Embeddings []emb `json:"embeddings"`
	}{}
	for i := range req.Requests {
		out.Embeddings = append(out.Embeddings, emb{Values: fakeVector(i)})
	}
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.Marshal(out)
	w.Write(b)
}

func TestE2EGemini(t *testing.T) {
	e := startVendorE2E(t, "gemini", geminiModel, geminiEmbed)
	e.up.handle(geminiHandler(geminiText))
	want := strings.Join(geminiText.text, "")

	t.Run("plain", func(t *testing.T) {
		params := chatParams("chat-test")
		params.Messages = append([]openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief.")}, params.Messages...)
		params.Temperature = openai.Float(0)
		params.MaxCompletionTokens = openai.Int(64)
		resp, err := e.client().Chat.Completions.New(withTimeout(t), params)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if resp.Choices[0].Message.Content != want || resp.Choices[0].FinishReason != "stop" || resp.Model != geminiVersion || resp.Object != "chat.completion" {
			t.Errorf("reply = %q %q %q %q", resp.Choices[0].Message.Content, resp.Choices[0].FinishReason, resp.Model, resp.Object)
		}
		if u := resp.Usage; u.PromptTokens != 17 || u.CompletionTokens != 8 || u.TotalTokens != 25 || u.CompletionTokensDetails.ReasoningTokens != 3 {
			t.Errorf("usage = %+v; want 17/8/25 with 3 reasoning", u)
		}
		got := topFields(t, e.up.last(t).Body)
		if !strings.Contains(string(got["system_instruction"]), "Be brief.") || !strings.Contains(string(got["generationConfig"]), `"maxOutputTokens":64`) ||
			!strings.Contains(string(got["generationConfig"]), `"temperature":0`) {
			t.Errorf("upstream body = %s", e.up.last(t).Body)
		}
	})

	for _, usage := range []bool{false, true} {
		t.Run(map[bool]string{false: "stream", true: "stream with include_usage"}[usage], func(t *testing.T) {
			params := chatParams("chat-test")
			if usage {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			stream := e.client().Chat.Completions.NewStreaming(withTimeout(t), params)
			acc := openai.ChatCompletionAccumulator{}
			usageChunks := 0
			for stream.Next() {
				c := stream.Current()
				if !acc.AddChunk(c) {
					t.Errorf("accumulator rejected %s", c.RawJSON())
				}
				if len(c.Choices) == 0 {
					usageChunks++
					if !usage || c.Usage.TotalTokens != 25 {
						t.Errorf("usage chunk (asked: %v): %s", usage, c.RawJSON())
					}
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if acc.Choices[0].Message.Content != want || acc.Choices[0].FinishReason != "stop" || usageChunks != map[bool]int{false: 0, true: 1}[usage] {
				t.Errorf("content %q finish %q usage chunks %d", acc.Choices[0].Message.Content, acc.Choices[0].FinishReason, usageChunks)
			}
		})
	}

	t.Run("tools plain and streamed in parallel", func(t *testing.T) {
		e.up.handle(geminiHandler(geminiTools))
		defer e.up.handle(geminiHandler(geminiText))
		params := chatParams("chat-test")
		params.Tools = []openai.ChatCompletionToolUnionParam{weatherTool(), timeTool()}
		resp, err := e.client().Chat.Completions.New(withTimeout(t), params)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if resp.Choices[0].FinishReason != "tool_calls" {
			t.Errorf("finish_reason = %q; want tool_calls", resp.Choices[0].FinishReason)
		}
		checkGeminiCalls(t, resp.Choices[0].Message.ToolCalls)
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := e.client().Chat.Completions.NewStreaming(withTimeout(t), params)
		acc := openai.ChatCompletionAccumulator{}
		var finished []string
		for stream.Next() {
			if !acc.AddChunk(stream.Current()) {
				t.Errorf("accumulator rejected %s", stream.Current().RawJSON())
			}
			if tc, ok := acc.JustFinishedToolCall(); ok {
				finished = append(finished, tc.Name)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		checkGeminiCalls(t, acc.Choices[0].Message.ToolCalls)
		if acc.Choices[0].FinishReason != "tool_calls" || acc.Usage.TotalTokens != 120 {
			t.Errorf("finish %q total %d; want tool_calls 120", acc.Choices[0].FinishReason, acc.Usage.TotalTokens)
		}
		if want := []string{"get_weather", "get_time"}; !reflect.DeepEqual(finished, want) {
			t.Errorf("JustFinishedToolCall names = %q; want %q", finished, want)
		}

		// The next turn sends the calls and their results back.
		msg := acc.Choices[0].Message.ToParam()
		params.Messages = append(params.Messages, msg,
			openai.ToolMessage(`{"temp_c":21}`, acc.Choices[0].Message.ToolCalls[0].ID),
			openai.ToolMessage("09:30", acc.Choices[0].Message.ToolCalls[1].ID))
		if _, err := e.client().Chat.Completions.New(withTimeout(t), params); err != nil {
			t.Fatalf("tool results turn: %v", err)
		}
		var up struct {
			Contents []struct {
				Role  string            `json:"role"`
				Parts []json.RawMessage `json:"parts"`
			} `json:"contents"`
		}
		json.Unmarshal(e.up.last(t).Body, &up)
		if n := len(up.Contents); n != 3 || up.Contents[1].Role != "model" || up.Contents[2].Role != "user" || len(up.Contents[2].Parts) != 2 ||
			!strings.Contains(string(up.Contents[2].Parts[0]), `"functionResponse":{"name":"get_weather","response":{"temp_c":21}}`) ||
			!strings.Contains(string(up.Contents[2].Parts[1]), `"name":"get_time","response":{"output":"09:30"}`) {
			t.Errorf("upstream contents = %s", e.up.last(t).Body)
		}
	})

	t.Run("image input", func(t *testing.T) {
		params := chatParams("chat-test")
		params.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
			openai.TextContentPart("What is in this image?"),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="}),
		})}
		if _, err := e.client().Chat.Completions.New(withTimeout(t), params); err != nil {
			t.Fatalf("New: %v", err)
		}
		if b := string(e.up.last(t).Body); !strings.Contains(b, `"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgoAAAANSUhEUg=="}`) {
			t.Errorf("upstream body = %s; want the image as inlineData", b)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			status     int
			want       int
			msg        string
		}{
			{"invalid argument", `{"error":{"code":400,"message":"Invalid value at 'generation_config.temperature' (TYPE_FLOAT)","status":"INVALID_ARGUMENT"}}`, 400, 400, "generation_config.temperature"},
			{"forbidden", `{"error":{"code":403,"message":"Permission denied for ` + providerKey + `","status":"PERMISSION_DENIED"}}`, 403, 502, "credentials"},
			{"prompt blocked", `{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":5,"totalTokenCount":5}}`, 200, 400,
				"prompt blocked by Gemini safety filters: SAFETY"},
			{"rate limited", `{"error":{"code":429,"message":"You exceeded your current quota","status":"RESOURCE_EXHAUSTED"}}`, 429, 429, ""},
		} {
			for _, stream := range []bool{false, true} {
				// A fresh proxy per case: provider failures open the
				// breaker, which would answer later cases itself.
				e := startVendorE2E(t, "gemini", geminiModel, geminiEmbed)
				e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
					if tc.status == 200 && stream {
						sw := newSSEWriter(w)
						sw.raw("data: " + tc.body + "\r\n\r\n")
						return
					}
					writeUpstreamError(w, tc.status, tc.body)
				})
				var err error
				if stream {
					s := e.noRetry().Chat.Completions.NewStreaming(withTimeout(t), chatParams("chat-test"))
					for s.Next() {
					}
					err = s.Err()
				} else {
					_, err = e.noRetry().Chat.Completions.New(withTimeout(t), chatParams("chat-test"))
				}
				var apiErr *openai.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.want || !strings.Contains(apiErr.Message, tc.msg) {
					t.Errorf("%s (stream %v): err = %v; want %d containing %q", tc.name, stream, err, tc.want, tc.msg)
				}
				if err != nil && strings.Contains(err.Error(), providerKey) {
					t.Errorf("%s: error leaks the provider key", tc.name)
				}
			}
		}
	})

	t.Run("embeddings", func(t *testing.T) {
		checkVendorEmbeddings(t, e, fakeVector)
		if b := string(e.up.last(t).Body); !strings.Contains(b, `"model":"models/`+geminiEmbed+`"`) {
			t.Errorf("upstream body = %s", b)
		}
	})
}

// checkGeminiCalls compares calls with toolReply's names and arguments;
// Gemini has no call ids, so the adapter's must be set and distinct.
func checkGeminiCalls(t *testing.T, calls []openai.ChatCompletionMessageToolCallUnion) {
	t.Helper()
	if len(calls) != len(toolReply.calls) {
		t.Fatalf("got %d tool calls; want %d", len(calls), len(toolReply.calls))
	}
	seen := map[string]bool{}
	for i, want := range toolReply.calls {
		got := calls[i]
		if got.ID == "" || seen[got.ID] || got.Type != "function" || got.Function.Name != want.name {
			t.Errorf("call %d = %q %s %s; want a fresh id, function %s", i, got.ID, got.Type, got.Function.Name, want.name)
		}
		seen[got.ID] = true
		var g, w any
		json.Unmarshal([]byte(got.Function.Arguments), &g)
		json.Unmarshal([]byte(strings.Join(want.args, "")), &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("call %d arguments = %s; want %s", i, got.Function.Arguments, strings.Join(want.args, ""))
		}
	}
}
