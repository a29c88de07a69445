package router

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// completion is the decoded shape of a chat.completion body.
type completion struct {
	ID                string  `json:"id"`
	Object            string  `json:"object"`
	Created           int64   `json:"created"`
	Model             string  `json:"model"`
	SystemFingerprint *string `json:"system_fingerprint"`
	Choices           []struct {
		Index   int `json:"index"`
		Message struct {
			Role      string  `json:"role"`
			Content   *string `json:"content"`
			Refusal   *string `json:"refusal"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason string          `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
		Details          struct {
			Cached int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
}

const head = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":`

func delta(index int, d string) *Chunk {
	return text(head + `[{"index":` + itoa(index) + `,"delta":` + d + `,"logprobs":null,"finish_reason":null}]}`)
}

func finish(index int, reason string) *Chunk {
	return text(head + `[{"index":` + itoa(index) + `,"delta":{},"logprobs":null,"finish_reason":"` + reason + `"}]}`)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func usageChunk(p, c int) *Chunk {
	u := &Usage{PromptTokens: p, CompletionTokens: c, TotalTokens: p + c, CachedTokens: 3}
	return &Chunk{UsageOnly: true, Usage: u, Data: []byte(head + `[],"usage":{"prompt_tokens":` + itoa(p) + `,"completion_tokens":` + itoa(c) + `,"total_tokens":` + itoa(p+c) + `,"prompt_tokens_details":{"cached_tokens":3}}}`)}
}

func toolDelta(index, call int, rest string) *Chunk {
	return delta(index, `{"tool_calls":[{"index":`+itoa(call)+`,`+rest+`}]}`)
}

// argsPieces splits s into n-byte pieces as JSON-quoted tool-call deltas.
func argsPieces(index, call int, s string, n int) []*Chunk {
	var out []*Chunk
	for len(s) > 0 {
		k := min(n, len(s))
		q, _ := json.Marshal(s[:k])
		out = append(out, toolDelta(index, call, `"function":{"arguments":`+string(q)+`}`))
		s = s[k:]
	}
	return out
}

func cat(groups ...[]*Chunk) []*Chunk {
	var out []*Chunk
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

type wantCall struct{ id, name, args string }

type wantChoice struct {
	content *string // nil means JSON null
	calls   []wantCall
	finish  string
}

func str(s string) *string { return &s }

func TestCollect(t *testing.T) {
	tests := []struct {
		name      string
		chunks    []*Chunk
		want      []wantChoice
		wantUsage *Usage
	}{
		{
			name: "text",
			chunks: []*Chunk{
				delta(0, `{"role":"assistant","content":"","refusal":null}`),
				delta(0, `{"content":"Hel"}`), delta(0, `{"content":"lo <b>&"}`), delta(0, `{"content":" \"world\"\n"}`),
				finish(0, "stop"),
			},
			want: []wantChoice{{content: str("Hello <b>& \"world\"\n"), finish: "stop"}},
		},
		{
			name: "tool call split over many deltas",
			chunks: cat(
				[]*Chunk{delta(0, `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null}`)},
				argsPieces(0, 0, `{"location":"Paris, France","unit":"celsius"}`, 3),
				[]*Chunk{finish(0, "tool_calls")},
			),
			want: []wantChoice{{content: nil, calls: []wantCall{{"call_1", "get_weather", `{"location":"Paris, France","unit":"celsius"}`}}, finish: "tool_calls"}},
		},
		{
			name: "parallel tool calls interleaved",
			chunks: cat(
				[]*Chunk{delta(0, `{"role":"assistant","content":null}`)},
				[]*Chunk{toolDelta(0, 0, `"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}`)},
				argsPieces(0, 0, `{"city":"Oslo"}`, 4)[:2],
				[]*Chunk{toolDelta(0, 1, `"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}`)},
				argsPieces(0, 1, `{"tz":"CET"}`, 5),
				argsPieces(0, 0, `{"city":"Oslo"}`, 4)[2:],
				[]*Chunk{finish(0, "tool_calls")},
			),
			want: []wantChoice{{calls: []wantCall{{"call_a", "get_weather", `{"city":"Oslo"}`}, {"call_b", "get_time", `{"tz":"CET"}`}}, finish: "tool_calls"}},
		},
		{
			name: "parallel calls reusing index 0 with fresh ids",
			chunks: []*Chunk{
				toolDelta(0, 0, `"id":"call_a","type":"function","function":{"name":"f","arguments":"{}"}`),
				toolDelta(0, 0, `"id":"call_b","type":"function","function":{"name":"g","arguments":"{\"x\":1}"}`),
				finish(0, "tool_calls"),
			},
			want: []wantChoice{{calls: []wantCall{{"call_a", "f", `{}`}, {"call_b", "g", `{"x":1}`}}, finish: "tool_calls"}},
		},
		{
			name: "text and tool call",
			chunks: cat(
				[]*Chunk{delta(0, `{"role":"assistant","content":"Let me check."}`)},
				[]*Chunk{toolDelta(0, 0, `"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{}"}`)},
				[]*Chunk{finish(0, "tool_calls")},
			),
			want: []wantChoice{{content: str("Let me check."), calls: []wantCall{{"call_1", "lookup", "{}"}}, finish: "tool_calls"}},
		},
		{
			name: "n=2 interleaved, out of order",
			chunks: []*Chunk{
				delta(1, `{"role":"assistant","content":""}`), delta(0, `{"role":"assistant","content":""}`),
				delta(0, `{"content":"A1"}`), delta(1, `{"content":"B1"}`), delta(1, `{"content":"B2"}`), delta(0, `{"content":"A2"}`),
				finish(1, "length"), finish(0, "stop"),
			},
			want: []wantChoice{{content: str("A1A2"), finish: "stop"}, {content: str("B1B2"), finish: "length"}},
		},
		{
			name: "usage-only chunk",
			chunks: []*Chunk{
				delta(0, `{"role":"assistant","content":"hi"}`), finish(0, "stop"), usageChunk(11, 1),
			},
			want:      []wantChoice{{content: str("hi"), finish: "stop"}},
			wantUsage: &Usage{PromptTokens: 11, CompletionTokens: 1, TotalTokens: 12, CachedTokens: 3},
		},
		{
			name: "usage on the last choice chunk",
			chunks: []*Chunk{
				delta(0, `{"role":"assistant","content":"hi"}`),
				text(head + `[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5,"completion_tokens_details":{"reasoning_tokens":2}}}`),
			},
			want:      []wantChoice{{content: str("hi"), finish: "stop"}},
			wantUsage: &Usage{PromptTokens: 4, CompletionTokens: 1, TotalTokens: 5, ReasoningTokens: 2},
		},
		{
			name: "empty content stays a string",
			chunks: []*Chunk{
				delta(0, `{"role":"assistant","content":""}`), finish(0, "stop"),
			},
			want: []wantChoice{{content: str(""), finish: "stop"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, usage, err := Collect(&fakeStream{chunks: tc.chunks})
			if err != nil {
				t.Fatalf("Collect() error = %v", err)
			}
			var got completion
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("Collect() body %s: %v", body, err)
			}
			if got.ID != "chatcmpl-1" || got.Object != "chat.completion" || got.Created != 1700000000 || got.Model != "gpt-4o-mini" {
				t.Errorf("Collect() header = %q %q %d %q; want chatcmpl-1 chat.completion 1700000000 gpt-4o-mini", got.ID, got.Object, got.Created, got.Model)
			}
			if got.SystemFingerprint == nil || *got.SystemFingerprint != "fp_1" {
				t.Errorf("Collect() system_fingerprint = %v; want fp_1", got.SystemFingerprint)
			}
			if len(got.Choices) != len(tc.want) {
				t.Fatalf("Collect() has %d choices; want %d: %s", len(got.Choices), len(tc.want), body)
			}
			for i, w := range tc.want {
				c := got.Choices[i]
				if c.Index != i || c.Message.Role != "assistant" || c.FinishReason != w.finish {
					t.Errorf("Collect() choice %d = index %d role %q finish %q; want index %d role assistant finish %q", i, c.Index, c.Message.Role, c.FinishReason, i, w.finish)
				}
				if (c.Message.Content == nil) != (w.content == nil) || (w.content != nil && *c.Message.Content != *w.content) {
					t.Errorf("Collect() choice %d content = %s; want %s", i, show(c.Message.Content), show(w.content))
				}
				if c.Message.Refusal != nil {
					t.Errorf("Collect() choice %d refusal = %q; want null", i, *c.Message.Refusal)
				}
				if string(c.Logprobs) != "null" {
					t.Errorf("Collect() choice %d logprobs = %s; want null", i, c.Logprobs)
				}
				if len(c.Message.ToolCalls) != len(w.calls) {
					t.Fatalf("Collect() choice %d has %d tool calls; want %d: %s", i, len(c.Message.ToolCalls), len(w.calls), body)
				}
				for j, wc := range w.calls {
					tc := c.Message.ToolCalls[j]
					if tc.ID != wc.id || tc.Type != "function" || tc.Function.Name != wc.name || tc.Function.Arguments != wc.args {
						t.Errorf("Collect() tool call %d = {%q %q %q %q}; want {%q function %q %q}", j, tc.ID, tc.Type, tc.Function.Name, tc.Function.Arguments, wc.id, wc.name, wc.args)
					}
				}
			}
			if (usage == nil) != (tc.wantUsage == nil) || (usage != nil && *usage != *tc.wantUsage) {
				t.Errorf("Collect() usage = %+v; want %+v", usage, tc.wantUsage)
			}
			if tc.wantUsage != nil {
				if got.Usage == nil || got.Usage.PromptTokens != tc.wantUsage.PromptTokens || got.Usage.TotalTokens != tc.wantUsage.TotalTokens {
					t.Errorf("Collect() body usage = %+v; want %+v", got.Usage, tc.wantUsage)
				}
			} else if strings.Contains(string(body), `"usage"`) {
				t.Errorf("Collect() body has usage %s; want none", body)
			}
		})
	}
}

func show(s *string) string {
	if s == nil {
		return "null"
	}
	q, _ := json.Marshal(*s)
	return string(q)
}

func TestCollectWholePassthrough(t *testing.T) {
	whole := `{"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"x","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3},"unknown_field":{"kept":true}}`
	tests := []struct {
		name  string
		chunk *Chunk
	}{
		{"usage from the chunk", &Chunk{Whole: true, Data: []byte(whole), Usage: &Usage{PromptTokens: 2, CompletionTokens: 1, TotalTokens: 3}}},
		{"usage read from the body", &Chunk{Whole: true, Data: []byte(whole)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, usage, err := Collect(&fakeStream{chunks: []*Chunk{tc.chunk}})
			if err != nil || string(body) != whole {
				t.Fatalf("Collect() = %s, %v; want the Whole chunk verbatim", body, err)
			}
			if usage == nil || *usage != (Usage{PromptTokens: 2, CompletionTokens: 1, TotalTokens: 3}) {
				t.Errorf("Collect() usage = %+v; want 2/1/3", usage)
			}
		})
	}
}

func TestCollectErrors(t *testing.T) {
	cut := &Error{Kind: KindUpstream, Message: "connection reset"}
	tests := []struct {
		name     string
		stream   *fakeStream
		wantErr  error
		wantKind Kind
	}{
		{"mid-stream error is returned", &fakeStream{chunks: []*Chunk{delta(0, `{"content":"a"}`)}, err: cut}, cut, KindUpstream},
		{"empty stream", &fakeStream{}, nil, KindUpstream},
		{"invalid chunk", &fakeStream{chunks: []*Chunk{text(`{"choices":[`)}}, nil, KindUpstream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, _, err := Collect(tc.stream)
			if err == nil || body != nil {
				t.Fatalf("Collect() = %s, %v; want an error", body, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Collect() error = %v; want %v", err, tc.wantErr)
			}
			if AsError(err).Kind != tc.wantKind {
				t.Errorf("Collect() error kind = %v; want %v", AsError(err).Kind, tc.wantKind)
			}
		})
	}
}

func TestCollectLogprobs(t *testing.T) {
	chunks := []*Chunk{
		text(head + `[{"index":0,"delta":{"role":"assistant","content":"a"},"logprobs":{"content":[{"token":"a","logprob":-0.1,"bytes":[97],"top_logprobs":[]}],"refusal":null},"finish_reason":null}]}`),
		text(head + `[{"index":0,"delta":{"content":"b"},"logprobs":{"content":[{"token":"b","logprob":-0.2,"bytes":[98],"top_logprobs":[]}],"refusal":null},"finish_reason":"stop"}]}`),
	}
	body, _, err := Collect(&fakeStream{chunks: chunks})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Choices []struct {
			Logprobs struct {
				Content []struct {
					Token string `json:"token"`
				} `json:"content"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body, &got); err != nil || len(got.Choices) != 1 {
		t.Fatalf("Collect() body %s: %v", body, err)
	}
	lp := got.Choices[0].Logprobs.Content
	if len(lp) != 2 || lp[0].Token != "a" || lp[1].Token != "b" {
		t.Errorf("Collect() logprobs = %+v; want tokens a, b", lp)
	}
}
