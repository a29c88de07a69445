package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"llmproxy/router"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got (JSON, indented for review) with testdata/name.golden.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("%s: output is not JSON: %v\n%s", name, err, got)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s:\n%s\nwant (go test -update to refresh):\n%s", name, buf.Bytes(), want)
	}
}

const weatherTool = `{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}}`

var requestTests = []struct {
	name      string
	body      string
	stream    bool
	maxTokens int
}{
	{name: "system", body: `{"model":"alias","messages":[{"role":"system","content":"You are terse."},{"role":"developer","content":[{"type":"text","text":"Answer in French."}]},{"role":"user","content":"Hi <there> & bye"}],"temperature":0.7,"top_p":0.9,"user":"user-123","frequency_penalty":0.5,"seed":7,"logprobs":false}`},
	{name: "default_max_tokens_stream", stream: true, body: `{"model":"alias","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}`},
	{name: "max_tokens", maxTokens: 256, body: `{"model":"alias","messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":256}`},
	{name: "multi_turn_tools", body: `{"model":"alias","tools":[` + weatherTool + `],"messages":[
		{"role":"user","content":"Weather in Paris?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\": \"Paris\"}"}}]},
		{"role":"tool","tool_call_id":"toolu_1","content":"18C, sunny"},
		{"role":"assistant","content":"It is 18C and sunny in Paris."},
		{"role":"user","content":"Thanks!"}]}`},
	{name: "parallel_tool_calls", body: `{"model":"alias","tools":[` + weatherTool + `],"parallel_tool_calls":true,"messages":[
		{"role":"user","content":"Weather in Paris and London?"},
		{"role":"assistant","content":"Checking both.","tool_calls":[
			{"id":"toolu_a","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}},
			{"id":"toolu_b","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"London\"}"}}]},
		{"role":"tool","tool_call_id":"toolu_a","content":"18C"},
		{"role":"tool","tool_call_id":"toolu_b","content":[{"type":"text","text":"12C"}]},
		{"role":"user","content":"And tomorrow?"}]}`},
	{name: "images", body: `{"model":"alias","messages":[{"role":"user","content":[
		{"type":"text","text":"What is in these images?"},
		{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==","detail":"low"}},
		{"type":"image_url","image_url":{"url":"https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"}}]}]}`},
	{name: "tool_choice_auto", body: `{"model":"alias","tools":[` + weatherTool + `],"tool_choice":"auto","messages":[{"role":"user","content":"Hi"}]}`},
	{name: "tool_choice_none", body: `{"model":"alias","tools":[` + weatherTool + `],"tool_choice":"none","messages":[{"role":"user","content":"Hi"}]}`},
	{name: "tool_choice_required", body: `{"model":"alias","tools":[` + weatherTool + `],"tool_choice":"required","parallel_tool_calls":false,"messages":[{"role":"user","content":"Hi"}]}`},
	{name: "tool_choice_named", body: `{"model":"alias","tools":[` + weatherTool + `],"tool_choice":{"type":"function","function":{"name":"get_weather"}},"messages":[{"role":"user","content":"Hi"}]}`},
	{name: "tool_no_parameters", body: `{"model":"alias","tools":[{"type":"function","function":{"name":"now"}}],"messages":[{"role":"user","content":"Time?"},{"role":"assistant","tool_calls":[{"id":"toolu_n","type":"function","function":{"name":"now","arguments":""}}]},{"role":"tool","tool_call_id":"toolu_n","content":"12:00"}]}`},
	{name: "stop_string", body: `{"model":"alias","messages":[{"role":"user","content":"Count"}],"stop":"\n\n"}`},
	{name: "stop_array", body: `{"model":"alias","messages":[{"role":"user","content":"Count"}],"stop":["END","STOP"]}`},
	{name: "response_format_json_object", body: `{"model":"alias","messages":[{"role":"user","content":"Give me a user as JSON"}],"response_format":{"type":"json_object"}}`},
	{name: "response_format_json_schema", body: `{"model":"alias","messages":[{"role":"user","content":"Give me a user"}],"response_format":{"type":"json_schema","json_schema":{"name":"user","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}}}}`},
	{name: "response_format_with_tools", body: `{"model":"alias","tools":[` + weatherTool + `],"messages":[{"role":"user","content":"Weather as JSON"}],"response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object","properties":{"c":{"type":"number"}}}}}}`},
}

func TestTranslateRequest(t *testing.T) {
	for _, tc := range requestTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := translateRequest([]byte(tc.body), requestOptions{Model: "claude-sonnet-4-5", Stream: tc.stream,
				MaxTokens: tc.maxTokens, DefaultMaxTokens: DefaultMaxTokens})
			if err != nil {
				t.Fatalf("translateRequest: %v", err)
			}
			golden(t, "request_"+tc.name, got.Body)
			if want := strings.HasPrefix(tc.name, "response_format_json"); got.JSONTool != want {
				t.Errorf("JSONTool = %v; want %v", got.JSONTool, want)
			}
		})
	}
}

func TestTranslateRequestErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, param string }{
		{"n above 1", `{"messages":[],"n":2}`, "n"},
		{"legacy functions", `{"messages":[],"functions":[{"name":"f"}]}`, "functions"},
		{"unknown role", `{"messages":[{"role":"function","content":"x"}]}`, "messages[0].role"},
		{"image in a system message", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, "messages[0].content[0].type"},
		{"audio part", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}`, "messages[0].content[0].type"},
		{"data URL without base64", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"ftp image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"arguments not an object", `{"messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[0].tool_calls[0].function.arguments"},
		{"bad tool_choice", `{"messages":[],"tools":[` + weatherTool + `],"tool_choice":"sometimes"}`, "tool_choice"},
		{"custom tool", `{"messages":[],"tools":[{"type":"custom","custom":{"name":"x"}}]}`, "tools[0]"},
		{"bad stop", `{"messages":[],"stop":7}`, "stop"},
		{"json_schema without schema", `{"messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}`, "response_format.json_schema.schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := translateRequest([]byte(tc.body), requestOptions{Model: "m", DefaultMaxTokens: 1})
			if err == nil || err.Kind != router.KindInvalidRequest || err.Param != tc.param {
				t.Fatalf("translateRequest(%s) = %v; want KindInvalidRequest with param %q", tc.body, err, tc.param)
			}
		})
	}
}

var responseTests = []struct {
	name     string
	body     string
	jsonTool bool
	usage    router.Usage
}{
	{name: "text_cached", body: `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hi <b> & bye"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":300,"output_tokens":5}}`,
		usage: router.Usage{PromptTokens: 330, CompletionTokens: 5, TotalTokens: 335, CachedTokens: 300}},
	{name: "parallel_tool_calls", body: `{"id":"msg_2","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"thinking","thinking":"two calls","signature":"x"},{"type":"tool_use","id":"toolu_a","name":"get_weather","input":{"location":"Paris"}},{"type":"tool_use","id":"toolu_b","name":"get_weather","input":{ "location": "London" }}],"stop_reason":"tool_use","usage":{"input_tokens":50,"output_tokens":40}}`,
		usage: router.Usage{PromptTokens: 50, CompletionTokens: 40, TotalTokens: 90}},
	{name: "text_and_tool", body: `{"id":"msg_3","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_c","name":"now","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":6}}`,
		usage: router.Usage{PromptTokens: 5, CompletionTokens: 6, TotalTokens: 11}},
	{name: "max_tokens", body: `{"id":"msg_4","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"One, two"}],"stop_reason":"max_tokens","usage":{"input_tokens":5,"output_tokens":2}}`,
		usage: router.Usage{PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7}},
	{name: "stop_sequence", body: `{"id":"msg_5","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"1 2 3"}],"stop_reason":"stop_sequence","stop_sequence":"END","usage":{"input_tokens":5,"output_tokens":3}}`,
		usage: router.Usage{PromptTokens: 5, CompletionTokens: 3, TotalTokens: 8}},
	{name: "response_format", jsonTool: true, body: `{"id":"msg_6","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"tool_use","id":"toolu_j","name":"json_response","input":{"name":"Ada","age":36}}],"stop_reason":"tool_use","usage":{"input_tokens":30,"output_tokens":12}}`,
		usage: router.Usage{PromptTokens: 30, CompletionTokens: 12, TotalTokens: 42}},
}

func TestTranslateResponse(t *testing.T) {
	now := time.Unix(1760000000, 0)
	for _, tc := range responseTests {
		t.Run(tc.name, func(t *testing.T) {
			got, u, model, err := translateResponse([]byte(tc.body), tc.jsonTool, now)
			if err != nil {
				t.Fatalf("translateResponse: %v", err)
			}
			golden(t, "response_"+tc.name, got)
			if *u != tc.usage {
				t.Errorf("usage = %+v; want %+v", *u, tc.usage)
			}
			if model == "" {
				t.Errorf("model is empty")
			}
		})
	}
}

func TestTranslateResponseErrors(t *testing.T) {
	var we *wireErrorReply
	if _, _, _, err := translateResponse([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), false, time.Now()); !errors.As(err, &we) {
		t.Errorf("error object: err = %v; want *wireErrorReply", err)
	}
	for _, body := range []string{`{}`, `[]`, `{"type":"message"}`, `not json`} {
		if _, _, _, err := translateResponse([]byte(body), false, time.Now()); err == nil {
			t.Errorf("translateResponse(%s) = nil error; want one", body)
		}
	}
}

func TestFinishReason(t *testing.T) {
	for _, tc := range []struct {
		stop     string
		jsonTool bool
		want     string
	}{
		{"end_turn", false, "stop"}, {"stop_sequence", false, "stop"}, {"max_tokens", false, "length"},
		{"tool_use", false, "tool_calls"}, {"tool_use", true, "stop"}, {"refusal", false, "content_filter"},
		{"pause_turn", false, "stop"}, {"model_context_window_exceeded", false, "length"},
	} {
		if got := finishReason(tc.stop, tc.jsonTool); got != tc.want {
			t.Errorf("finishReason(%q, %v) = %q; want %q", tc.stop, tc.jsonTool, got, tc.want)
		}
	}
}
