package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
)

// vendorConfig routes chat-test and embed-test to one provider of type
// ${TYPE} at the fake; startVendorE2E fills the variables.
const vendorConfig = `
server:
  listen: 127.0.0.1:0
  max_body_bytes: 65536
  drain_timeout: 5s
providers:
  - name: vendor
    type: ${TYPE}
    base_url: ${FAKE_URL}
    api_key: ${UPSTREAM_KEY}
models:
  - name: chat-test
    deployments:
      - provider: vendor
        model: ${CHAT_MODEL}
  - name: embed-test
    type: embedding
    deployments:
      - provider: vendor
        model: ${EMBED_MODEL}
teams:
  - name: default
    api_keys: ["${TEAM_KEY}"]
`

// startVendorE2E runs the proxy in front of a fakeUpstream whose handler
// the test sets, with provider type typ, through startProxy.
func startVendorE2E(t *testing.T, typ, chatModel, embedModel string) *e2e {
	t.Helper()
	up := newFakeUpstream(t)
	env := map[string]string{"TYPE": typ, "FAKE_URL": up.srv.URL, "UPSTREAM_KEY": providerKey, "TEAM_KEY": teamKeyDefault,
		"CHAT_MODEL": chatModel, "EMBED_MODEL": embedModel}
	p := startProxy(t, parseTestConfig(t, vendorConfig, env), withDebugLogs())
	return &e2e{proxy: p, t: t, up: up}
}

const azureDeployment = "gpt4o-prod"

// azurePromptFilter is the annotation Azure puts on the prompt ("Azure
// OpenAI content filtering > Annotations"): in the plain body, and as the
// metadata-only first chunk of a stream.
const azurePromptFilter = `[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,"detected":false},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]`

// azureHandler answers like Azure OpenAI: OpenAI's wire format at
// /openai/deployments/{deployment}/... with api-key auth and
// prompt_filter_results.
func azureHandler(rep reply) func(w http.ResponseWriter, r *http.Request, body []byte) {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Header.Get("api-key") != providerKey || r.URL.Query().Get("api-version") != "2024-10-21" {
			writeUpstreamError(w, 401, `{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}`)
			return
		}
		switch r.URL.Path {
		case "/openai/deployments/" + azureDeployment + "/chat/completions":
		case "/openai/deployments/" + upstreamEmbed + "/embeddings":
			serveEmbeddings(w, body)
			return
		default:
			writeUpstreamError(w, 404, `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`)
			return
		}
		ask := parseAsk(body)
		if !ask.Stream {
			var m map[string]any
			b, _ := json.Marshal(completion(rep))
			json.Unmarshal(b, &m)
			m["prompt_filter_results"] = json.RawMessage(azurePromptFilter)
			w.Header().Set("Content-Type", "application/json")
			b, _ = json.Marshal(m)
			w.Write(b)
			return
		}
		sw := newSSEWriter(w)
		sw.raw(`data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":` + azurePromptFilter + "}\n\n")
		for _, c := range chunks(rep, ask.includeUsage()) {
			sw.event(c)
		}
		sw.done()
	}
}

func TestE2EAzure(t *testing.T) {
	e := startVendorE2E(t, "azure", azureDeployment, upstreamEmbed)
	e.up.handle(azureHandler(defaultReply))
	want := strings.Join(defaultReply.content, "")

	t.Run("plain", func(t *testing.T) {
		resp, err := e.client().Chat.Completions.New(withTimeout(t), chatParams("chat-test"))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if resp.Choices[0].Message.Content != want || resp.Usage.TotalTokens != 22 {
			t.Errorf("reply = %q usage %d; want %q and 22", resp.Choices[0].Message.Content, resp.Usage.TotalTokens, want)
		}
		if !strings.Contains(resp.RawJSON(), `"prompt_filter_results"`) {
			t.Errorf("prompt_filter_results not passed through: %s", resp.RawJSON())
		}
		last := e.up.last(t)
		if last.Header.Get("Authorization") != "" || last.Header.Get("api-key") != providerKey {
			t.Errorf("upstream auth = %q / %q; want only api-key", last.Header.Get("Authorization"), last.Header.Get("api-key"))
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
			var n, usageChunks int
			for stream.Next() {
				c := stream.Current()
				n++
				if !acc.AddChunk(c) {
					t.Errorf("accumulator rejected chunk %s", c.RawJSON())
				}
				if n == 1 && !strings.Contains(c.RawJSON(), `"prompt_filter_results"`) {
					t.Errorf("first chunk lacks prompt_filter_results: %s", c.RawJSON())
				}
				if len(c.Choices) == 0 {
					usageChunks++
					if !usage || c.Usage.TotalTokens != 22 {
						t.Errorf("chunk %d has no choices (usage asked: %v): %s", n, usage, c.RawJSON())
					}
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if acc.Choices[0].Message.Content != want || usageChunks != map[bool]int{false: 0, true: 1}[usage] {
				t.Errorf("content = %q, %d usage chunks", acc.Choices[0].Message.Content, usageChunks)
			}
		})
	}

	t.Run("tools plain and streamed", func(t *testing.T) {
		e.up.handle(azureHandler(toolReply))
		defer e.up.handle(azureHandler(defaultReply))
		params := chatParams("chat-test")
		params.Tools = []openai.ChatCompletionToolUnionParam{weatherTool(), timeTool()}
		resp, err := e.client().Chat.Completions.New(withTimeout(t), params)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		checkToolCalls(t, resp.Choices[0].Message.ToolCalls)
		stream := e.client().Chat.Completions.NewStreaming(withTimeout(t), params)
		acc := openai.ChatCompletionAccumulator{}
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if acc.Choices[0].FinishReason != "tool_calls" {
			t.Errorf("finish_reason = %q; want tool_calls", acc.Choices[0].FinishReason)
		}
		checkToolCalls(t, acc.Choices[0].Message.ToolCalls)
	})

	t.Run("content filter 400 and bad key", func(t *testing.T) {
		defer e.up.handle(azureHandler(defaultReply))
		const filtered = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."
		for _, tc := range []struct {
			status int
			body   string
			want   int
			msg    string
		}{
			{400, `{"error":{"message":"` + filtered + `","type":null,"param":"prompt","code":"content_filter","status":400}}`, 400, filtered},
			{401, `{"error":{"code":"401","message":"Access denied due to invalid subscription key ` + providerKey + `"}}`, 502, "credentials"},
		} {
			e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) { writeUpstreamError(w, tc.status, tc.body) })
			_, err := e.noRetry().Chat.Completions.New(withTimeout(t), chatParams("chat-test"))
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.want || !strings.Contains(apiErr.Message, tc.msg) {
				t.Errorf("upstream %d: err = %v; want %d containing %q", tc.status, err, tc.want, tc.msg)
			}
			if err != nil && strings.Contains(err.Error(), providerKey) {
				t.Errorf("error leaks the provider key: %v", err)
			}
		}
	})

	t.Run("embeddings", func(t *testing.T) { checkVendorEmbeddings(t, e, fakeVector) })
}

// checkVendorEmbeddings asks embed-test for two inputs as float and as
// base64; both must decode to vec(i).
func checkVendorEmbeddings(t *testing.T, e *e2e, vec func(int) []float32) {
	t.Helper()
	input := openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"first " + promptCanary, "second"}}
	for _, format := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		resp, err := e.client().Embeddings.New(withTimeout(t), openai.EmbeddingNewParams{Model: "embed-test", Input: input, EncodingFormat: format})
		if err != nil {
			t.Fatalf("embeddings %s: %v", format, err)
		}
		if len(resp.Data) != 2 || resp.Usage.PromptTokens <= 0 {
			t.Fatalf("embeddings %s: %d items, %d prompt tokens; want 2 and > 0", format, len(resp.Data), resp.Usage.PromptTokens)
		}
		for i := range 2 {
			if got := f32(resp.Data[i].Embedding); len(got) == 0 || strings.Join(strings.Fields(fmtFloats(got)), " ") != fmtFloats(vec(i)) {
				t.Errorf("%s item %d = %v; want %v", format, i, got, vec(i))
			}
		}
	}
}

func fmtFloats(v []float32) string {
	b, _ := json.Marshal(v)
	return string(b)
}
