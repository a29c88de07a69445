package demo

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"llmproxy/router"
)

const weatherTool = `{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"location":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]},"days":{"type":"integer"}},"required":["location","unit"]}}}`
const timeTool = `{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"tz":{"type":"string"}}}}}`

func toolBody(stream bool, choice, content string, tools ...string) string {
	q, _ := json.Marshal(content)
	b := `{"model":"demo","stream":` + map[bool]string{true: "true", false: "false"}[stream] +
		`,"tools":[` + strings.Join(tools, ",") + `]`
	if choice != "" {
		b += `,"tool_choice":` + choice
	}
	return b + `,"messages":[{"role":"user","content":` + string(q) + `}]}`
}

func TestChatToolCallStream(t *testing.T) {
	tests := []struct {
		name, choice, content string
		tools                 []string
		wantName, wantArgs    string // "" wantName means a text reply
	}{
		{"weather triggers the call", "", "What's the weather in Paris?", []string{timeTool, weatherTool}, "get_weather", `{"location":"Paris","unit":"celsius"}`},
		{"multi-word place", `"auto"`, "Weather forecast for New York City please", []string{weatherTool}, "get_weather", `{"location":"New York City","unit":"celsius"}`},
		{"no place falls back", "", "how is the weather", []string{weatherTool}, "get_weather", `{"location":"San Francisco","unit":"celsius"}`},
		{"non-ASCII place", "", "weather in Zürich?", []string{weatherTool}, "get_weather", `{"location":"Zürich","unit":"celsius"}`},
		{"no weather, no call", "", "Tell me a joke", []string{weatherTool}, "", ""},
		{"tool_choice none", `"none"`, "weather in Paris", []string{weatherTool}, "", ""},
		{"tool_choice required", `"required"`, "Tell me the time in Oslo", []string{timeTool}, "get_time", `{"tz":"Oslo"}`},
		{"named tool_choice", `{"type":"function","function":{"name":"get_time"}}`, "weather in Rome", []string{weatherTool, timeTool}, "get_time", `{"tz":"Rome"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := readStream(t, newClient(), toolBody(true, tc.choice, tc.content, tc.tools...))
			if tc.wantName == "" {
				if got.finish != "stop" || got.args != "" || got.text == "" {
					t.Errorf("Chat() = text %q args %q finish %q; want a text reply", got.text, got.args, got.finish)
				}
				return
			}
			if got.finish != "tool_calls" || got.text != "" {
				t.Errorf("Chat() finish_reason = %q, content %q; want tool_calls and no content", got.finish, got.text)
			}
			first := got.chunks[0].Choices[0].Delta
			if len(first.ToolCalls) != 1 {
				t.Fatalf("first delta = %s; want one tool call", got.raw[0].Data)
			}
			tc0 := first.ToolCalls[0]
			if tc0.Index == nil || *tc0.Index != 0 || !strings.HasPrefix(tc0.ID, "call_") || tc0.Type != "function" || tc0.Function.Name != tc.wantName || first.Role != "assistant" {
				t.Errorf("first tool-call delta = %s; want index 0, id call_…, type function, name %q, role assistant", got.raw[0].Data, tc.wantName)
			}
			fragments := 0
			for _, c := range got.chunks[1:] {
				for _, ch := range c.Choices {
					for _, d := range ch.Delta.ToolCalls {
						fragments++
						if d.ID != "" || d.Function.Name != "" || d.Index == nil {
							t.Errorf("later tool-call delta has id %q name %q index %v; want only index and arguments", d.ID, d.Function.Name, d.Index)
						}
					}
				}
			}
			if fragments < 3 {
				t.Errorf("arguments came in %d fragments; want several", fragments)
			}
			if got.args != tc.wantArgs {
				t.Errorf("Chat() arguments = %s; want %s", got.args, tc.wantArgs)
			}
			u := got.raw[len(got.raw)-1].Usage
			if want := count(t, tc.wantName) + count(t, got.args); u.CompletionTokens != want {
				t.Errorf("completion_tokens = %d; want %d (name + arguments)", u.CompletionTokens, want)
			}
		})
	}
}

func TestChatToolCallCollect(t *testing.T) {
	c := newClient()
	for _, stream := range []bool{true, false} {
		s, err := c.Chat(context.Background(), request(t, toolBody(stream, "", "weather in Paris?", weatherTool)))
		if err != nil {
			t.Fatal(err)
		}
		body, _, err := router.Collect(s)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Choices []struct {
				Message struct {
					Content   *string `json:"content"`
					ToolCalls []struct {
						ID       string `json:"id"`
						Type     string `json:"type"`
						Function struct {
							Name      string `json:"name"`
							Arguments string `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"message"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(body, &got); err != nil || len(got.Choices) != 1 {
			t.Fatalf("stream=%v: body %s: %v", stream, body, err)
		}
		ch := got.Choices[0]
		if ch.Message.Content != nil || ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 1 {
			t.Fatalf("stream=%v: Collect() = %s; want content null, one tool call, finish tool_calls", stream, body)
		}
		call := ch.Message.ToolCalls[0]
		if call.Type != "function" || call.Function.Name != "get_weather" || call.Function.Arguments != `{"location":"Paris","unit":"celsius"}` {
			t.Errorf("stream=%v: tool call = %+v; want get_weather with Paris", stream, call)
		}
	}
}

func TestChatToolCallMaxTokens(t *testing.T) {
	for _, max := range []int{1, 5, 9} {
		body := strings.Replace(toolBody(true, "", "weather in Paris?", weatherTool), `"stream":true`, `"stream":true,"max_tokens":`+itoa(max), 1)
		got := readStream(t, newClient(), body)
		u := got.raw[len(got.raw)-1].Usage
		if got.finish != "length" || u.CompletionTokens > max {
			t.Errorf("max_tokens %d: finish %q, completion_tokens %d; want length and ≤ %d", max, got.finish, u.CompletionTokens, max)
		}
	}
}

func TestChatBadTools(t *testing.T) {
	req := request(t, `{"model":"demo","tools":{"x":1},"messages":[{"role":"user","content":"weather"}]}`)
	if _, err := newClient().Chat(context.Background(), req); router.AsError(err).Param != "tools" {
		t.Errorf("Chat(bad tools) error = %v; want an invalid request on param tools", err)
	}
}

func TestPlace(t *testing.T) {
	tests := []struct{ in, want string }{
		{"weather in Paris today?", "Paris"},
		{"weather in new york", "new"},
		{"at the beach", "the"},
		{"in", "San Francisco"},
		{"weather for Rio de Janeiro", "Rio"},
		{"weather in Buenos Aires, Argentina", "Buenos Aires"},
		{"", "San Francisco"},
	}
	for _, tc := range tests {
		if got := place(tc.in); got != tc.want {
			t.Errorf("place(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestFragments(t *testing.T) {
	for _, s := range []string{"", "abc", `{"location":"Zürich 日本"}`, "ééééééé"} {
		parts := fragments(s, 3)
		if strings.Join(parts, "") != s {
			t.Errorf("fragments(%q) = %q; want pieces joining back to the input", s, parts)
		}
		for _, p := range parts {
			if !utf8.ValidString(p) {
				t.Errorf("fragments(%q) cut a UTF-8 sequence: %q", s, p)
			}
		}
	}
}
