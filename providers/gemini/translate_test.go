package gemini

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"llmproxy/router"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// checkGolden compares got with testdata/name, rewriting it under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update to refresh):\n%s", name, got)
	}
}

func indent(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		t.Fatalf("indent %s: %v", b, err)
	}
	return buf.String()
}

func parse(t *testing.T, body string) *router.ChatRequest {
	t.Helper()
	req, err := router.ParseChatRequest([]byte(body))
	if err != nil {
		t.Fatalf("ParseChatRequest(%s): %v", body, err)
	}
	req.Target = router.Target{Provider: "gemini", Model: "gemini-2.5-flash"}
	return req
}

// requestCases are OpenAI chat bodies and what each exercises; their
// translations are pinned in testdata/request.golden.
var requestCases = []struct{ name, body string }{
	{"system, roles and sampling", `{"model":"m","messages":[{"role":"system","content":"Be terse."},{"role":"developer","content":"Answer in French."},` +
		`{"role":"user","content":"Hi <b> & bye"},{"role":"assistant","content":"Salut."},{"role":"user","content":[{"type":"text","text":"Again"}]}],` +
		`"temperature":0,"top_p":0.9,"max_tokens":100,"max_completion_tokens":50,"stop":"END","n":2,"seed":7,"presence_penalty":0.5,"frequency_penalty":-0.5,"user":"u1","logit_bias":{"1":2}}`},
	{"tools, calls and results", `{"model":"m","messages":[{"role":"user","content":"Weather in Paris and time in Tokyo?"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_0","type":"function","function":{"name":"get_weather","arguments":"{\"location\": \"Paris\"}"}},` +
		`{"id":"call_1","type":"function","function":{"name":"get_time","arguments":""}}]},` +
		`{"role":"tool","tool_call_id":"call_0","content":"{\"temp_c\":21}"},{"role":"tool","tool_call_id":"call_1","content":"09:30"},` +
		`{"role":"user","content":"Thanks"}],` +
		`"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","strict":true,"parameters":{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",` +
		`"properties":{"location":{"type":"string"},"unit":{"type":["string","null"],"enum":["c","f"]},"tags":{"type":"array","items":{"type":"string","examples":["x"]}},` +
		`"when":{"$ref":"#/$defs/When"},"kind":{"const":"city"}},"required":["location","ghost"],"additionalProperties":false,"$defs":{"When":{"type":"object","properties":{"day":{"type":"string","format":"date"}},"additionalProperties":false}}}}},` +
		`{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{}}}}],"tool_choice":"required"}`},
	{"named tool choice", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"oneOf":[{"type":"string"},{"type":"integer"}]}}}}}],` +
		`"tool_choice":{"type":"function","function":{"name":"f"}}}`},
	{"tool choice none", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}`},
	{"tool choice ignored without tools", `{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"auto"}`},
	{"image, audio and file parts", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},` +
		`{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}},{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}},` +
		`{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"}}]}]}`},
	{"json_object", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},"stop":["a","b"]}`},
	{"json_schema", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"r","strict":true,` +
		`"schema":{"type":"object","properties":{"answer":{"type":"string"},"n":{"type":"integer","minimum":0}},"required":["answer"],"additionalProperties":false}}}}`},
	{"stream and legacy function role", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"},` +
		`{"role":"function","name":"lookup","content":"[1,2]"}]}`},
}

func TestTranslateRequestGolden(t *testing.T) {
	var out strings.Builder
	for _, tc := range requestCases {
		b, err := translateRequest(parse(t, tc.body))
		if err != nil {
			t.Fatalf("%s: translateRequest: %v", tc.name, err)
		}
		out.WriteString("== " + tc.name + "\n" + indent(t, b) + "\n")
	}
	checkGolden(t, "request.golden", []byte(out.String()))
}

func TestTranslateRequestErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, param, msg string }{
		{"http image", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`, "messages", "base64 data URLs"},
		{"unknown tool id", `{"model":"m","messages":[{"role":"tool","tool_call_id":"call_9","content":"x"}]}`, "messages", `"call_9" matches no earlier`},
		{"bad arguments", `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages", "JSON object"},
		{"custom tool", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{"name":"c"}}]}`, "tools", "only function tools"},
		{"bad tool choice", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"always"}`, "tool_choice", "always"},
		{"bad stop", `{"model":"m","messages":[{"role":"user","content":"x"}],"stop":3}`, "stop", "Invalid 'stop'"},
		{"bad role", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, "messages", "robot"},
		{"refusal part", `{"model":"m","messages":[{"role":"user","content":[{"type":"refusal","refusal":"no"}]}]}`, "messages", "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := translateRequest(parse(t, tc.body))
			e := router.AsError(err)
			if e.Kind != router.KindInvalidRequest || e.Param != tc.param || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("translateRequest err = %+v; want KindInvalidRequest param %q containing %q", e, tc.param, tc.msg)
			}
		})
	}
}
