package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"llmproxy/providers/sse"
	"llmproxy/router"
)

// streamOf decodes body as an upstream stream, without HTTP.
func streamOf(t testing.TB, body string, jsonTool bool) *stream {
	c, err := New(Config{Name: "claude", BaseURL: "http://upstream.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return time.Unix(1760000000, 0) }
	parent := context.Background()
	ctx, cancel := context.WithCancelCause(parent)
	s := newStream(streamConfig{c: c, ctx: ctx, parent: parent, cancel: cancel, wd: newWatchdog(cancel),
		body: io.NopCloser(strings.NewReader(body)), jsonTool: jsonTool})
	t.Cleanup(func() { s.Close() })
	return s
}

// sseFrame renders one Anthropic event as the API frames it: the event
// name, then the data whose "type" repeats it (Streaming Messages > Event
// types).
func sseFrame(data string) string {
	var ev struct {
		Type string `json:"type"`
	}
	json.Unmarshal([]byte(data), &ev)
	return "event: " + ev.Type + "\ndata: " + data + "\n\n"
}

func messageStart(id string, usage string) string {
	return sseFrame(`{"type":"message_start","message":{"id":"` + id + `","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":` + usage + `}}`)
}

// toolBlock streams one tool_use block whose input arrives in fragments of
// at most size bytes.
func toolBlock(index int, id, name, input string, size int) string {
	var b strings.Builder
	b.WriteString(sseFrame(fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"tool_use","id":%q,"name":%q,"input":{}}}`, index, id, name)))
	b.WriteString(sseFrame(fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"input_json_delta","partial_json":""}}`, index)))
	for len(input) > 0 {
		n := min(size, len(input))
		frag, _ := json.Marshal(input[:n])
		input = input[n:]
		b.WriteString(sseFrame(fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"input_json_delta","partial_json":%s}}`, index, frag)))
	}
	b.WriteString(sseFrame(fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, index)))
	return b.String()
}

func messageEnd(stop, usage string) string {
	return sseFrame(`{"type":"message_delta","delta":{"stop_reason":"`+stop+`","stop_sequence":null},"usage":`+usage+`}`) +
		sseFrame(`{"type":"message_stop"}`)
}

func drainAll(t *testing.T, s *stream) ([]*router.Chunk, error) {
	t.Helper()
	var out []*router.Chunk
	for {
		c, err := s.Next()
		if err != nil {
			return out, err
		}
		if !json.Valid(c.Data) {
			t.Fatalf("chunk %d is not JSON: %s", len(out), c.Data)
		}
		out = append(out, c)
	}
}

// chunkView is what the tests read from a chunk.
type chunkView struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Role      string  `json:"role"`
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    *int    `json:"index"`
				ID       *string `json:"id"`
				Type     *string `json:"type"`
				Function struct {
					Name      *string `json:"name"`
					Arguments *string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens  int `json:"prompt_tokens"`
		PromptDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
}

// TestStreamToolCallReassembly splits two parallel calls' arguments over
// many input_json_delta events, after a thinking block, and checks the
// OpenAI deltas an SDK accumulator needs: the first delta of each call has
// index, id, type and name with empty arguments, later ones only index and
// an arguments fragment, and the index counts calls, not content blocks.
func TestStreamToolCallReassembly(t *testing.T) {
	args := []string{`{"location": "Paris, France", "unit": "celsius", "days": [1, 2, 3]}`, `{"location":"London, UK","note":"caf\u00e9 \"quoted\""}`}
	body := messageStart("msg_tools", `{"input_tokens":82,"cache_read_input_tokens":18,"output_tokens":1}`) +
		sseFrame(`{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`) +
		sseFrame(`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"two calls"}}`) +
		sseFrame(`{"type":"content_block_stop","index":0}`) +
		toolBlock(1, "toolu_paris", "get_weather", args[0], 3) +
		sseFrame(`{"type":"ping"}`) +
		toolBlock(2, "toolu_london", "get_weather", args[1], 1) +
		messageEnd("tool_use", `{"output_tokens":250}`)
	chunks, err := drainAll(t, streamOf(t, body, false))
	if err != io.EOF {
		t.Fatalf("stream ended with %v; want io.EOF", err)
	}
	got := make([]string, 2)
	ids := make([]string, 2)
	var first chunkView
	var finish string
	for i, c := range chunks {
		var v chunkView
		if err := json.Unmarshal(c.Data, &v); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = v
		}
		if v.ID != "chatcmpl-msg_tools" || v.Created != first.Created || v.Model != "claude-sonnet-4-5-20250929" || v.Object != "chat.completion.chunk" {
			t.Errorf("chunk %d id/created/model/object = %s/%d/%s/%s; want one id, created and model on every chunk", i, v.ID, v.Created, v.Model, v.Object)
		}
		for _, ch := range v.Choices {
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil || *tc.Index > 1 {
					t.Fatalf("chunk %d: tool-call index %v; want 0 or 1", i, tc.Index)
				}
				n := *tc.Index
				if tc.ID != nil {
					if ids[n] != "" || *tc.Type != "function" || tc.Function.Name == nil || *tc.Function.Name != "get_weather" || tc.Function.Arguments == nil || *tc.Function.Arguments != "" {
						t.Errorf("chunk %d: first delta of call %d = %s; want id, type, name and empty arguments once", i, n, c.Data)
					}
					ids[n] = *tc.ID
					continue
				}
				if ids[n] == "" || tc.Type != nil || tc.Function.Name != nil || tc.Function.Arguments == nil {
					t.Errorf("chunk %d: later delta of call %d = %s; want only index and arguments", i, n, c.Data)
				}
				got[n] += *tc.Function.Arguments
			}
		}
	}
	if ids[0] != "toolu_paris" || ids[1] != "toolu_london" {
		t.Errorf("ids = %q; want the tool_use ids in order", ids)
	}
	for i := range args {
		if got[i] != args[i] {
			t.Errorf("call %d arguments = %q; want %q", i, got[i], args[i])
		}
	}
	if finish != "tool_calls" {
		t.Errorf("finish_reason = %q; want tool_calls", finish)
	}
	last := chunks[len(chunks)-1]
	want := router.Usage{PromptTokens: 100, CompletionTokens: 250, TotalTokens: 350, CachedTokens: 18}
	if !last.UsageOnly || last.Usage == nil || *last.Usage != want {
		t.Errorf("last chunk UsageOnly=%v Usage=%+v; want the usage chunk with %+v", last.UsageOnly, last.Usage, want)
	}
	// The router's gatherer reassembles the same stream for plain clients.
	body2, _, err := router.Collect(&sliceStream{chunks: chunks})
	if err != nil {
		t.Fatal(err)
	}
	var whole struct {
		Choices []struct {
			Message struct {
				ToolCalls []struct {
					Function struct{ Arguments string } `json:"function"`
				} `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body2, &whole); err != nil || len(whole.Choices) != 1 || len(whole.Choices[0].Message.ToolCalls) != 2 ||
		whole.Choices[0].Message.ToolCalls[1].Function.Arguments != args[1] {
		t.Errorf("Collect = %s (%v); want both calls reassembled", body2, err)
	}
}

type sliceStream struct{ chunks []*router.Chunk }

func (s *sliceStream) Next() (*router.Chunk, error) {
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *sliceStream) Close() error { return nil }

func TestStreamEvents(t *testing.T) {
	start := messageStart("msg_1", `{"input_tokens":5,"output_tokens":1}`)
	text := sseFrame(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`) +
		sseFrame(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`) +
		sseFrame(`{"type":"content_block_stop","index":0}`)
	for _, tc := range []struct {
		name     string
		body     string
		jsonTool bool
		content  string // joined content deltas
		args     string // joined arguments of call 0
		finish   string
		usage    *router.Usage // of the last chunk
		kind     router.Kind   // of the final error; -1 means io.EOF
		msg      string
	}{
		{name: "text", body: start + text + messageEnd("end_turn", `{"output_tokens":3}`), content: "Hi", finish: "stop",
			usage: &router.Usage{PromptTokens: 5, CompletionTokens: 3, TotalTokens: 8}, kind: -1},
		{name: "max tokens", body: start + text + messageEnd("max_tokens", `{"output_tokens":3}`), content: "Hi", finish: "length", kind: -1},
		{name: "stop sequence", body: start + text + messageEnd("stop_sequence", `{"output_tokens":3}`), content: "Hi", finish: "stop", kind: -1},
		{name: "message_delta usage replaces start usage", body: start + text +
			messageEnd("end_turn", `{"input_tokens":7,"cache_creation_input_tokens":100,"cache_read_input_tokens":50,"output_tokens":9}`),
			content: "Hi", finish: "stop", usage: &router.Usage{PromptTokens: 157, CompletionTokens: 9, TotalTokens: 166, CachedTokens: 50}, kind: -1},
		{name: "tool without arguments", body: start + sseFrame(`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"now","input":{}}}`) +
			sseFrame(`{"type":"content_block_stop","index":0}`) + messageEnd("tool_use", `{"output_tokens":3}`), args: "{}", finish: "tool_calls", kind: -1},
		{name: "response_format tool becomes content", jsonTool: true, body: start + toolBlock(0, "toolu_j", jsonToolName, `{"a":1}`, 2) +
			messageEnd("tool_use", `{"output_tokens":3}`), content: `{"a":1}`, finish: "stop", kind: -1},
		{name: "message_stop without message_delta", body: start + text + sseFrame(`{"type":"message_stop"}`), content: "Hi", finish: "stop", kind: -1},
		{name: "event name used when data has no type", body: start + "event: content_block_start\ndata: {\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"Yo\"}}\n\n" +
			messageEnd("end_turn", `{"output_tokens":1}`), content: "Yo", finish: "stop", kind: -1},
		{name: "unknown events skipped", body: start + sseFrame(`{"type":"future_event","x":1}`) + text + messageEnd("end_turn", `{"output_tokens":1}`), content: "Hi", finish: "stop", kind: -1},
		{name: "error event", body: start + text + sseFrame(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
			content: "Hi", kind: router.KindUpstream, msg: "Overloaded"},
		{name: "error before anything", body: sseFrame(`{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`), kind: router.KindUpstream, msg: "Internal server error"},
		{name: "delta before message_start", body: text, kind: router.KindUpstream, msg: "malformed"},
		{name: "malformed event", body: start + "event: content_block_delta\ndata: {\"type\":\n\n", kind: router.KindUpstream, msg: "malformed"},
		{name: "no message_stop", body: start + text, content: "Hi", kind: router.KindUpstream, msg: "upstream closed the stream early"},
		{name: "oversized event", body: start + "data: \"" + strings.Repeat("x", sse.MaxEventSize) + "\"\n\n", kind: router.KindUpstream, msg: "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chunks, err := drainAll(t, streamOf(t, tc.body, tc.jsonTool))
			var content, args, finish string
			for _, c := range chunks {
				var v chunkView
				json.Unmarshal(c.Data, &v)
				for _, ch := range v.Choices {
					if ch.Delta.Content != nil {
						content += *ch.Delta.Content
					}
					for _, tc := range ch.Delta.ToolCalls {
						if *tc.Index == 0 && tc.Function.Arguments != nil {
							args += *tc.Function.Arguments
						}
					}
					if ch.FinishReason != nil {
						finish = *ch.FinishReason
					}
				}
			}
			if content != tc.content || args != tc.args || finish != tc.finish {
				t.Errorf("content/args/finish = %q/%q/%q; want %q/%q/%q", content, args, finish, tc.content, tc.args, tc.finish)
			}
			if tc.usage != nil {
				if last := chunks[len(chunks)-1]; last.Usage == nil || *last.Usage != *tc.usage {
					t.Errorf("usage = %+v; want %+v", last.Usage, tc.usage)
				}
			}
			if tc.kind < 0 {
				if err != io.EOF {
					t.Fatalf("err = %v; want io.EOF", err)
				}
				return
			}
			var e *router.Error
			if !errors.As(err, &e) || e.Kind != tc.kind || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("err = %v; want kind %v with %q", err, tc.kind, tc.msg)
			}
		})
	}
}

// FuzzStream feeds arbitrary bytes through the SSE reader and the event
// decoder: nothing may panic, every chunk must be JSON, and the stream must
// end with io.EOF or a *router.Error.
func FuzzStream(f *testing.F) {
	for _, name := range []string{"messages_stream_text.sse", "messages_stream_tools.sse"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, false)
	}
	start := messageStart("m", `{"input_tokens":1}`)
	f.Add([]byte(start+toolBlock(0, "t", jsonToolName, `{"a":[1,2]}`, 2)+messageEnd("tool_use", `{"output_tokens":1}`)), true)
	f.Add([]byte(start+sseFrame(`{"type":"content_block_delta","index":9,"delta":{"type":"input_json_delta","partial_json":"x"}}`)), false)
	f.Add([]byte(start+sseFrame(`{"type":"message_delta","delta":null,"usage":null}`)), false)
	f.Add([]byte(sseFrame(`{"type":"error","error":"nope"}`)), false)
	f.Fuzz(func(t *testing.T, body []byte, jsonTool bool) {
		s := streamOf(t, string(body), jsonTool)
		for i := 0; ; i++ {
			c, err := s.Next()
			if err != nil {
				var e *router.Error
				if err != io.EOF && !errors.As(err, &e) {
					t.Fatalf("Next = %v (%T); want io.EOF or a *router.Error", err, err)
				}
				return
			}
			if c == nil || !json.Valid(c.Data) {
				t.Fatalf("chunk %d = %v; want valid JSON", i, c)
			}
		}
	})
}
