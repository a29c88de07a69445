package main

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestE2EDemo drives the built-in demo provider through the SDK.
func TestE2EDemo(t *testing.T) {
	e := startE2E(t)
	c := e.client()
	params := chatParams("demo-chat")

	plain, err := c.Chat.Completions.New(withTimeout(t), params)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	text := plain.Choices[0].Message.Content
	if !strings.Contains(text, "not a real LLM") {
		t.Errorf("content = %q; want the demo's disclaimer", text)
	}
	u := plain.Usage
	if u.PromptTokens <= 0 || u.CompletionTokens <= 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage = %d/%d/%d; want positive counts that add up", u.PromptTokens, u.CompletionTokens, u.TotalTokens)
	}

	for _, includeUsage := range []bool{false, true} {
		t.Run("stream include_usage="+map[bool]string{false: "false", true: "true"}[includeUsage], func(t *testing.T) {
			p := params
			if includeUsage {
				p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			stream := c.Chat.Completions.NewStreaming(withTimeout(t), p)
			acc := openai.ChatCompletionAccumulator{}
			var n, usageChunks int
			for stream.Next() {
				ch := stream.Current()
				n++
				acc.AddChunk(ch)
				if len(ch.Choices) == 0 {
					usageChunks++
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if n < 3 {
				t.Errorf("got %d chunks; want the reply streamed in several", n)
			}
			if got := acc.Choices[0].Message.Content; got != text {
				t.Errorf("streamed content = %q; want the plain reply %q", got, text)
			}
			want := 0
			if includeUsage {
				want = 1
			}
			if usageChunks != want {
				t.Errorf("got %d usage-only chunks; want %d", usageChunks, want)
			}
			if includeUsage && (acc.Usage.PromptTokens != u.PromptTokens || acc.Usage.CompletionTokens != u.CompletionTokens || acc.Usage.TotalTokens != u.TotalTokens) {
				t.Errorf("streamed usage = %d/%d/%d; want the plain reply's %d/%d/%d", acc.Usage.PromptTokens, acc.Usage.CompletionTokens,
					acc.Usage.TotalTokens, u.PromptTokens, u.CompletionTokens, u.TotalTokens)
			}
		})
	}
}

// TestE2EEmbeddings checks float and base64 embeddings through the demo and
// through the fake OpenAI upstream.
func TestE2EEmbeddings(t *testing.T) {
	e := startE2E(t)
	c := e.client()
	input := openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"first " + promptCanary, "second"}}
	for _, model := range []string{"demo-embed", "embed-test"} {
		t.Run(model, func(t *testing.T) {
			e.up.reset()
			embed := func(format openai.EmbeddingNewParamsEncodingFormat) *openai.CreateEmbeddingResponse {
				t.Helper()
				resp, err := c.Embeddings.New(withTimeout(t), openai.EmbeddingNewParams{Model: openai.EmbeddingModel(model), Input: input, EncodingFormat: format})
				if err != nil {
					t.Fatalf("embeddings %q: %v", format, err)
				}
				if len(resp.Data) != 2 {
					t.Fatalf("embeddings %q: got %d items; want 2", format, len(resp.Data))
				}
				if resp.Usage.PromptTokens <= 0 {
					t.Errorf("embeddings %q: prompt_tokens = %d; want > 0", format, resp.Usage.PromptTokens)
				}
				return resp
			}
			def := embed("") // the Go SDK sends no encoding_format: float
			if sent := topFields(t, e.tr.lastBody(t, "/v1/embeddings")); sent["encoding_format"] != nil {
				t.Logf("the Go SDK asked for encoding_format %s by default", sent["encoding_format"])
			}
			fl := embed(openai.EmbeddingNewParamsEncodingFormatFloat)
			b64 := embed(openai.EmbeddingNewParamsEncodingFormatBase64)
			for i := range 2 {
				if raw := fl.Data[i].JSON.Embedding.Raw(); !strings.HasPrefix(raw, "[") {
					t.Errorf("float item %d is %.20s; want a JSON array", i, raw)
				}
				if raw := b64.Data[i].JSON.Embedding.Raw(); !strings.HasPrefix(raw, `"`) {
					t.Errorf("base64 item %d is %.20s; want a base64 string", i, raw)
				}
				f, b := f32(fl.Data[i].Embedding), f32(b64.Data[i].Embedding)
				if len(f) == 0 || !reflect.DeepEqual(f, b) {
					t.Errorf("item %d: base64 decodes to %v; want the float reply %v", i, b, f)
				}
				if d := f32(def.Data[i].Embedding); !reflect.DeepEqual(d, f) {
					t.Errorf("item %d: default format = %v; want %v", i, d, f)
				}
				if model == "embed-test" && !reflect.DeepEqual(f, fakeVector(i)) {
					t.Errorf("item %d = %v; want the upstream's %v", i, f, fakeVector(i))
				}
			}
			if model != "embed-test" {
				return
			}
			got := topFields(t, e.up.last(t).Body)
			if m := string(got["model"]); m != `"`+upstreamEmbed+`"` {
				t.Errorf("upstream model = %s; want %q", m, upstreamEmbed)
			}
			if f := string(got["encoding_format"]); f != `"base64"` {
				t.Errorf("upstream encoding_format = %s; want \"base64\" passed through", f)
			}
		})
	}
}

func f32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// TestE2EModels checks /v1/models and /v1/models/{id} against the teams'
// allow-lists.
func TestE2EModels(t *testing.T) {
	e := startE2E(t)
	tests := []struct {
		name string
		key  string
		want []string
	}{
		{"default team sees every model", teamKeyDefault, []string{"demo-chat", "demo-embed", "gpt-test", "embed-test"}},
		{"limited team sees its allow-list", teamKeyLimited, []string{"demo-chat"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := e.noRetry(option.WithAPIKey(tc.key))
			page, err := c.Models.List(withTimeout(t))
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var ids []string
			for _, m := range page.Data {
				ids = append(ids, m.ID)
				if m.Object != "model" || m.OwnedBy == "" || m.Created == 0 {
					t.Errorf("model %s: object %q owned_by %q created %d; want OpenAI's model shape", m.ID, m.Object, m.OwnedBy, m.Created)
				}
			}
			if !reflect.DeepEqual(ids, tc.want) {
				t.Errorf("models = %q; want %q", ids, tc.want)
			}
			for _, id := range tc.want {
				m, err := c.Models.Get(withTimeout(t), id)
				if err != nil || m.ID != id {
					t.Errorf("Get(%s) = %v, %v; want the model", id, m, err)
				}
			}
		})
	}

	t.Run("retrieving a disallowed or unknown model is 404", func(t *testing.T) {
		for _, tc := range []struct{ key, id string }{{teamKeyLimited, "gpt-test"}, {teamKeyDefault, "gpt-nope"}} {
			c := e.noRetry(option.WithAPIKey(tc.key))
			_, err := c.Models.Get(withTimeout(t), tc.id)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
				t.Errorf("Get(%s) err = %v; want 404 model_not_found", tc.id, err)
			}
		}
	})

	t.Run("the demo is labelled as not a real model", func(t *testing.T) {
		_, b := e.do("GET", "/v1/models/demo-chat", "", authHeader(teamKeyDefault))
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("decode: %v\n%s", err, b)
		}
		desc, _ := m["description"].(string)
		if m["owned_by"] != "llmproxy-demo" || !strings.Contains(desc, "not a real model") {
			t.Errorf("demo-chat = %s; want owned_by llmproxy-demo and a description saying it is not a real model", b)
		}
		_, b = e.do("GET", "/v1/models/gpt-test", "", authHeader(teamKeyDefault))
		if strings.Contains(string(b), "demo") {
			t.Errorf("gpt-test = %s; want no demo label", b)
		}
	})
}

// TestE2EProbes checks /health, /ready and /metrics.
func TestE2EProbes(t *testing.T) {
	e := startE2E(t)
	for _, path := range []string{"/health", "/ready"} {
		resp, b := e.do("GET", path, "", nil)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d %s; want 200", path, resp.StatusCode, b)
		}
	}
	if _, err := e.client().Chat.Completions.New(withTimeout(t), chatParams("gpt-test")); err != nil {
		t.Fatalf("New: %v", err)
	}
	e.do("POST", "/v1/chat/completions", `{"model":"gpt-nope","messages":[]}`, authHeader(teamKeyDefault))
	e.do("POST", "/v1/chat/completions", `{"model":"gpt-test","messages":[]}`, nil)
	wants := []string{
		`llmproxy_requests_total{model="gpt-test",outcome="ok",route="chat"} 1`,
		`llmproxy_requests_total{model="",outcome="not_found",route="chat"} 1`,
		`llmproxy_requests_total{model="",outcome="unauthorized",route="chat"} 1`,
		`llmproxy_upstream_requests_total{model="gpt-4o-mini",outcome="ok",provider="fake"} 1`,
		`llmproxy_tokens_total{direction="input",model="gpt-4o-mini",provider="fake"} 17`,
		`llmproxy_tokens_total{direction="output",model="gpt-4o-mini",provider="fake"} 5`,
	}
	var body string
	var missing []string
	ok := eventually(2*time.Second, func() bool {
		resp, b := e.do("GET", "/metrics", "", nil)
		body, missing = string(b), nil
		for _, w := range wants {
			if !strings.Contains(body, w) {
				missing = append(missing, w)
			}
		}
		return resp.StatusCode == 200 && len(missing) == 0
	})
	if !ok {
		t.Errorf("/metrics lacks %q:\n%s", missing, grepLines(body, "llmproxy_"))
	}
	if strings.Contains(body, teamKeyDefault) {
		t.Errorf("metrics carry an API key:\n%s", body)
	}
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestE2EAccessLog checks that every request, refused ones included, gets
// exactly one access line under its x-request-id.
func TestE2EAccessLog(t *testing.T) {
	e := startE2E(t)
	chat := `{"model":"gpt-test","messages":[{"role":"user","content":"hi ` + promptCanary + `"}]}`
	stream := `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi ` + promptCanary + `"}]}`
	auth := authHeader(teamKeyDefault)
	tests := []struct {
		name         string
		method, path string
		body         string
		hdr          map[string]string
		route        string
		stream       bool
	}{
		{"chat", "POST", "/v1/chat/completions", chat, auth, routeChat, false},
		{"stream", "POST", "/v1/chat/completions", stream, auth, routeChat, true},
		{"chat without a key", "POST", "/v1/chat/completions", chat, nil, routeChat, false},
		{"chat, unknown model", "POST", "/v1/chat/completions", `{"model":"nope","messages":[]}`, auth, routeChat, false},
		{"chat over max_body_bytes", "POST", "/v1/chat/completions", strings.Repeat(" ", maxBody+1) + chat, auth, routeChat, false},
		{"embeddings", "POST", "/v1/embeddings", `{"model":"demo-embed","input":"x"}`, auth, routeEmbed, false},
		{"models", "GET", "/v1/models", "", auth, routeModels, false},
		{"one model", "GET", "/v1/models/demo-chat", "", auth, routeModels, false},
		{"unknown route", "GET", "/v1/nope", "", auth, routeOther, false},
	}
	type line struct {
		Msg       string `json:"msg"`
		RequestID string `json:"request_id"`
		Route     string `json:"route"`
		Status    int    `json:"status"`
		Stream    bool   `json:"stream"`
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := e.do(tc.method, tc.path, tc.body, tc.hdr)
			id := resp.Header.Get("X-Request-Id")
			var got []line
			eventually(2*time.Second, func() bool {
				got = nil
				for _, l := range strings.Split(e.logs.String(), "\n") {
					var ln line
					if json.Unmarshal([]byte(l), &ln) == nil && ln.Msg == "request" && ln.RequestID == id {
						got = append(got, ln)
					}
				}
				return len(got) > 0
			})
			if len(got) != 1 {
				t.Fatalf("request %s has %d access lines; want 1", id, len(got))
			}
			if l := got[0]; l.Status != resp.StatusCode || l.Route != tc.route || l.Stream != tc.stream {
				t.Errorf("access line status, route, stream = %d, %q, %v; want %d, %q, %v",
					l.Status, l.Route, l.Stream, resp.StatusCode, tc.route, tc.stream)
			}
		})
	}
}
