package router

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

var parseTests = []struct {
	name      string
	body      string
	wantParam string // "" means success; "-" means an error with no param
	want      ChatRequest
}{
	{"minimal", `{"model":"m","messages":[]}`, "", ChatRequest{Model: "m"}},
	{"stream", `{"model":"m","messages":[],"stream":true}`, "", ChatRequest{Model: "m", Stream: true}},
	{"stream null", `{"model":"m","messages":[],"stream":null}`, "", ChatRequest{Model: "m"}},
	{"n", `{"model":"m","messages":[],"n":128}`, "", ChatRequest{Model: "m", N: 128}},
	{"n null", `{"model":"m","messages":[],"n":null}`, "", ChatRequest{Model: "m", N: 1}},
	{"n zero", `{"model":"m","messages":[],"n":0}`, "n", ChatRequest{}},
	{"n too many", `{"model":"m","messages":[],"n":129}`, "n", ChatRequest{}},
	{"n fraction", `{"model":"m","messages":[],"n":1.5}`, "n", ChatRequest{}},
	{"n string", `{"model":"m","messages":[],"n":"2"}`, "n", ChatRequest{}},
	{"include usage", `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}`, "", ChatRequest{Model: "m", Stream: true, IncludeUsage: true}},
	{"include usage without stream is ignored", `{"model":"m","messages":[],"stream_options":{"include_usage":true}}`, "", ChatRequest{Model: "m"}},
	{"max_tokens", `{"model":"m","messages":[],"max_tokens":7}`, "", ChatRequest{Model: "m", MaxTokens: 7}},
	{"max_completion_tokens", `{"model":"m","messages":[],"max_completion_tokens":9}`, "", ChatRequest{Model: "m", MaxTokens: 9}},
	{"max_completion_tokens wins after", `{"model":"m","messages":[],"max_tokens":7,"max_completion_tokens":9}`, "", ChatRequest{Model: "m", MaxTokens: 9}},
	{"max_completion_tokens wins before", `{"model":"m","messages":[],"max_completion_tokens":9,"max_tokens":7}`, "", ChatRequest{Model: "m", MaxTokens: 9}},
	{"max_tokens null", `{"model":"m","messages":[],"max_tokens":null}`, "", ChatRequest{Model: "m"}},
	{"escaped model key", `{"mo\u0064el":"m","messages":[]}`, "", ChatRequest{Model: "m"}},
	{"missing model", `{"messages":[]}`, "model", ChatRequest{}},
	{"empty model", `{"model":"","messages":[]}`, "model", ChatRequest{}},
	{"model not a string", `{"model":5,"messages":[]}`, "model", ChatRequest{}},
	{"missing messages", `{"model":"m"}`, "messages", ChatRequest{}},
	{"messages not an array", `{"model":"m","messages":{}}`, "messages", ChatRequest{}},
	{"stream not a bool", `{"model":"m","messages":[],"stream":"yes"}`, "stream", ChatRequest{}},
	{"stream_options not an object", `{"model":"m","messages":[],"stream":true,"stream_options":3}`, "stream_options", ChatRequest{}},
	{"negative max_tokens", `{"model":"m","messages":[],"max_tokens":-1}`, "max_tokens", ChatRequest{}},
	{"fractional max_completion_tokens", `{"model":"m","messages":[],"max_completion_tokens":1.5}`, "max_completion_tokens", ChatRequest{}},
	{"duplicate model", `{"model":"cheap","messages":[],"model":"expensive"}`, "model", ChatRequest{}},
	{"duplicate messages", `{"model":"m","messages":[],"messages":[{"role":"user","content":"x"}]}`, "messages", ChatRequest{}},
	// Issue 16: keys a case-insensitive reader (encoding/json) would merge.
	{"model in two cases", `{"model":"chat","MODEL":"gpt-4o","messages":[]}`, "model", ChatRequest{}},
	{"max_tokens in two cases", `{"model":"m","messages":[],"max_tokens":5,"MAX_TOKENS":100000}`, "max_tokens", ChatRequest{}},
	{"case variant alone", `{"model":"m","messages":[],"MAX_TOKENS":100000}`, "MAX_TOKENS", ChatRequest{}},
	{"kelvin sign variant", `{"model":"m","messages":[],"max_toKens":100000}`, "max_toKens", ChatRequest{}},
	{"escaped case collision", `{"model":"m","\u004dODEL":"x","messages":[]}`, "model", ChatRequest{}},
	{"unknown keys in two cases", `{"model":"m","messages":[],"x_custom":1,"X_Custom":2}`, "x_custom", ChatRequest{}},
	{"malformed JSON", `{"model":"m",`, "-", ChatRequest{}},
	{"empty body", ``, "-", ChatRequest{}},
	{"not an object", `["model","m"]`, "-", ChatRequest{}},
	{"string body", `"hello"`, "-", ChatRequest{}},
}

func TestParseChatRequest(t *testing.T) {
	for _, tc := range parseTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChatRequest([]byte(tc.body))
			if tc.wantParam != "" {
				var e *Error
				if !errors.As(err, &e) || e.Kind != KindInvalidRequest {
					t.Fatalf("ParseChatRequest(%s) error = %v; want a KindInvalidRequest *Error", tc.body, err)
				}
				if want := tc.wantParam; want != "-" && e.Param != want {
					t.Errorf("ParseChatRequest(%s) param = %q; want %q", tc.body, e.Param, want)
				}
				if e.StatusCode() != 400 {
					t.Errorf("ParseChatRequest(%s) status = %d; want 400", tc.body, e.StatusCode())
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseChatRequest(%s) error = %v; want nil", tc.body, err)
			}
			if got.Model != tc.want.Model || got.Stream != tc.want.Stream || got.IncludeUsage != tc.want.IncludeUsage || got.MaxTokens != tc.want.MaxTokens {
				t.Errorf("ParseChatRequest(%s) = {Model:%q Stream:%v IncludeUsage:%v MaxTokens:%d}; want {Model:%q Stream:%v IncludeUsage:%v MaxTokens:%d}",
					tc.body, got.Model, got.Stream, got.IncludeUsage, got.MaxTokens,
					tc.want.Model, tc.want.Stream, tc.want.IncludeUsage, tc.want.MaxTokens)
			}
			if want := max(tc.want.N, 1); got.N != want {
				t.Errorf("ParseChatRequest(%s).N = %d; want %d", tc.body, got.N, want)
			}
			if string(got.Body) != tc.body {
				t.Errorf("ParseChatRequest(%s).Body = %s; want the input", tc.body, got.Body)
			}
		})
	}
}

func TestUpstreamBody(t *testing.T) {
	const extras = `"seed":42,"logprobs":true,"top_logprobs":2,` +
		`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],` +
		`"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}`
	tests := []struct {
		name, body, want string
	}{
		{"plain keeps unknown fields", `{"model":"alias","messages":[],` + extras + `}`,
			`{"model":"gpt-4o","messages":[],` + extras + `}`},
		{"stream asks for usage", `{"model":"alias","messages":[],"stream":true,` + extras + `}`,
			`{"model":"gpt-4o","messages":[],"stream":true,` + extras + `,"stream_options":{"include_usage":true}}`},
		{"stream that asked is unchanged", `{"model":"alias","stream":true,"stream_options":{"include_usage":true},"messages":[]}`,
			`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}`},
		{"stream that declined is overridden", `{"model":"alias","stream":true,"stream_options":{"include_usage":false},"messages":[]}`,
			`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}`},
		{"other stream options are kept", `{"model":"alias","stream":true,"stream_options":{"include_obfuscation":false},"messages":[]}`,
			`{"model":"gpt-4o","stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true},"messages":[]}`},
		{"null stream options", `{"model":"alias","stream":true,"stream_options":null,"messages":[]}`,
			`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}`},
		{"non-stream is not given stream_options", `{"model":"alias","stream":false,"messages":[]}`,
			`{"model":"gpt-4o","stream":false,"messages":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseChatRequest([]byte(tc.body))
			if err != nil {
				t.Fatalf("ParseChatRequest(%s) error = %v", tc.body, err)
			}
			if got := string(req.UpstreamBody("gpt-4o")); got != tc.want {
				t.Errorf("UpstreamBody(%q) =\n%s\nwant\n%s", "gpt-4o", got, tc.want)
			}
		})
	}
}

func TestMessagesAndField(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","name":"ann","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"b"}]}],"seed":7}`
	req, err := ParseChatRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := req.Messages()
	if err != nil {
		t.Fatalf("Messages() error = %v", err)
	}
	if len(ms) != 2 || ms[0].Text() != "be brief" || ms[1].Text() != "a\nb" || ms[1].Name != "ann" {
		t.Errorf("Messages() = %+v; want system \"be brief\" and user \"a\\nb\" named ann", ms)
	}
	if got := string(req.Field("seed")); got != "7" {
		t.Errorf("Field(seed) = %q; want %q", got, "7")
	}
	if got := req.Field("absent"); got != nil {
		t.Errorf("Field(absent) = %q; want nil", got)
	}
}

// FuzzParseChatRequest checks that decoding never panics, that every
// failure is a 400, and that an accepted body survives UpstreamBody: it is
// still valid JSON and parses back to the same routing fields.
func FuzzParseChatRequest(f *testing.F) {
	for _, tc := range parseTests {
		f.Add([]byte(tc.body))
	}
	for _, tc := range topLevelTests {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseChatRequest(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalidRequest {
				t.Fatalf("ParseChatRequest(%q) error = %v; want a KindInvalidRequest *Error", body, err)
			}
			return
		}
		if req.Model == "" {
			t.Fatalf("ParseChatRequest(%q) accepted an empty model", body)
		}
		// A case-insensitive reader (encoding/json) must see what we route on.
		var lenient struct {
			Model     string `json:"model"`
			MaxTokens *int   `json:"max_tokens"`
		}
		// (An alias is valid UTF-8; encoding/json replaces invalid bytes.)
		if json.Unmarshal(body, &lenient) == nil && utf8.ValidString(req.Model) && lenient.Model != req.Model {
			t.Fatalf("ParseChatRequest(%q) routed %q; encoding/json reads model %q", body, req.Model, lenient.Model)
		}
		if lenient.MaxTokens != nil && req.Field("max_completion_tokens") == nil && *lenient.MaxTokens != req.MaxTokens {
			t.Fatalf("ParseChatRequest(%q) MaxTokens = %d; encoding/json reads max_tokens %d", body, req.MaxTokens, *lenient.MaxTokens)
		}
		_, _ = req.Messages()
		up := req.UpstreamBody("up\"stream")
		if !json.Valid(up) {
			t.Fatalf("UpstreamBody of %q = %q: not valid JSON", body, up)
		}
		again, err := ParseChatRequest(up)
		if err != nil {
			t.Fatalf("ParseChatRequest(UpstreamBody(%q)) error = %v", body, err)
		}
		if again.Model != "up\"stream" || again.Stream != req.Stream || again.MaxTokens != req.MaxTokens || again.IncludeUsage != req.Stream {
			t.Fatalf("ParseChatRequest(UpstreamBody(%q)) = {Model:%q Stream:%v MaxTokens:%d IncludeUsage:%v}; want {Model:%q Stream:%v MaxTokens:%d IncludeUsage:%v}",
				body, again.Model, again.Stream, again.MaxTokens, again.IncludeUsage, "up\"stream", req.Stream, req.MaxTokens, req.Stream)
		}
	})
}
