package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmproxy/router"
)

// ragConfig: gpt-rag retrieves from the team's "handbook" for every
// request and reranks with the demo reranker; gpt-open fails open;
// gpt-test retrieves only when a request names its stores. demo-embed
// embeds the queries (priced, so the "poor" team cannot afford one).
const ragConfig = `
server:
  listen: 127.0.0.1:0
providers:
  - name: demo
    type: demo
  - name: fake
    type: openai
    base_url: ${FAKE_URL}/v1
    api_key: ${UPSTREAM_KEY}
models:
  - name: gpt-rag
    rag: {vector_stores: [handbook], top_k: 5, rerank_top_k: 2, rerank_model: demo-rerank}
    deployments: [{provider: fake, model: gpt-4o-mini}]
  - name: gpt-open
    rag: {vector_stores: [handbook], on_error: fail_open}
    deployments: [{provider: fake, model: gpt-4o-mini}]
  - name: gpt-test
    deployments: [{provider: fake, model: gpt-4o-mini}]
  - name: demo-embed
    type: embedding
    pricing: {input_per_mtok: 1000, output_per_mtok: 0}
    deployments: [{provider: demo, model: demo-embed}]
  - name: demo-rerank
    type: rerank
    deployments: [{provider: demo, model: demo-rerank}]
teams:
  - name: default
    api_keys: ["${TEAM_KEY}"]
  - name: other
    api_keys: ["sk-other"]
  - name: poor
    api_keys: ["sk-poor"]
    budget: {usd: 0.000001, period: day}
`

// ragE2E is a proxy with RAG on a fake store, in front of a fake upstream.
type ragE2E struct {
	*e2e
	stores *fakeStores
	cfg    *Config
}

func startRAGE2E(t *testing.T, opts ...proxyOption) *ragE2E {
	t.Helper()
	up := newFakeUpstream(t)
	stores := newFakeStores("demo-embed")
	cfg := parseTestConfig(t, ragConfig, map[string]string{"FAKE_URL": up.srv.URL, "UPSTREAM_KEY": providerKey, "TEAM_KEY": teamKeyDefault})
	p := startProxy(t, cfg, append([]proxyOption{withRetriever(stores)}, opts...)...)
	stores.bind(p.srv.embedder)
	return &ragE2E{e2e: &e2e{proxy: p, t: t, up: up}, stores: stores, cfg: cfg}
}

// upstreamMessages are the role and text of each message the upstream got.
func upstreamMessages(t *testing.T, body []byte) []router.Message {
	t.Helper()
	req, err := router.ParseChatRequest(body)
	if err != nil {
		t.Fatalf("upstream body %s: %v", body, err)
	}
	ms, err := req.Messages()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

const vacationQuestion = "How many vacation days per year?"

// checkVacationPrompt: the upstream got the system message of numbered
// references after the client's own, with the vacation chunk first.
func checkVacationPrompt(t *testing.T, body []byte) {
	t.Helper()
	ms := upstreamMessages(t, body)
	if len(ms) != 3 || ms[0].Role != "system" || ms[0].Text() != "Be brief." || ms[1].Role != "system" || ms[2].Role != "user" {
		t.Fatalf("upstream messages = %+v; want the client's system message, the references, the question", ms)
	}
	ref := ms[1].Text()
	if !strings.Contains(ref, "[1] vacation.md\n"+handbook[0].Content) || !strings.Contains(ref, "say plainly") {
		t.Errorf("references message = %q; want [1] vacation.md with the 27-days chunk, and the default instructions", ref)
	}
	if router.TopField(body, "vector_store_ids") != nil {
		t.Errorf("upstream body has vector_store_ids: %s", body)
	}
}

// TestE2ERAGChat: an alias with a rag block answers through openai-go,
// plain and streamed: the upstream receives the chunk that holds the
// answer in a system message after the client's own, the reply carries
// the x-llmproxy-rag* headers, the SDK parses it, and the query's
// embedding and rerank are ledger rows of their own (routes rag and
// rerank) next to the chat's.
func TestE2ERAGChat(t *testing.T) {
	e := startRAGE2E(t)
	c := e.noRetry()
	msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage(vacationQuestion)}
	var resp *http.Response
	out, err := c.Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-rag", Messages: msgs}, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	checkVacationPrompt(t, e.up.last(t).Body)
	if out.Choices[0].Message.Content != strings.Join(defaultReply.content, "") {
		t.Errorf("content = %q; want the upstream's reply", out.Choices[0].Message.Content)
	}
	if got := resp.Header.Get("x-llmproxy-rag"); got != "used" {
		t.Errorf("x-llmproxy-rag = %q; want used", got)
	}
	if got := resp.Header.Get("x-llmproxy-rag-sources"); !strings.HasPrefix(got, "file-vacation") {
		t.Errorf("x-llmproxy-rag-sources = %q; want file-vacation first", got)
	}

	stream := c.Chat.Completions.NewStreaming(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-rag", Messages: msgs}, option.WithResponseInto(&resp))
	var text strings.Builder
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err != nil || text.String() != strings.Join(defaultReply.content, "") {
		t.Fatalf("stream: %v, text %q; want the upstream's reply", err, text.String())
	}
	checkVacationPrompt(t, e.up.last(t).Body)
	if got := resp.Header.Get("x-llmproxy-rag-sources"); !strings.HasPrefix(got, "file-vacation") {
		t.Errorf("stream's x-llmproxy-rag-sources = %q", got)
	}

	if err := e.stop(5e9); err != nil {
		t.Fatal(err)
	}
	routes := map[string]int{}
	for _, r := range ledgerRowsIn(t, e.cfg.Server.DataDir) {
		routes[r.route+" "+r.alias+" "+r.outcome]++
	}
	want := map[string]int{"chat gpt-rag ok": 2, "rag demo-embed ok": 2, "rerank demo-rerank ok": 2}
	if len(routes) != len(want) || routes["chat gpt-rag ok"] != 2 || routes["rag demo-embed ok"] != 2 || routes["rerank demo-rerank ok"] != 2 {
		t.Errorf("ledger rows = %v; want %v", routes, want)
	}
}

// TestE2ERAGPerRequest: a request names its stores with the header or
// the body field (which never reaches the upstream); a store the team
// does not own, another team's included, is a 404 in OpenAI's shape and
// the upstream is not called.
func TestE2ERAGPerRequest(t *testing.T) {
	e := startRAGE2E(t)
	ask := func(key string, opts ...option.RequestOption) (*http.Response, error) {
		var resp *http.Response
		_, err := e.noRetry(option.WithAPIKey(key)).Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-test",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage(vacationQuestion)}},
			append(opts, option.WithResponseInto(&resp))...)
		return resp, err
	}
	for name, opt := range map[string]option.RequestOption{
		"header":     option.WithHeader("x-llmproxy-vector-store-ids", "handbook"),
		"body field": option.WithJSONSet("vector_store_ids", []string{"vs_handbook"}),
	} {
		resp, err := ask(teamKeyDefault, opt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkVacationPrompt(t, e.up.last(t).Body)
		if resp.Header.Get("x-llmproxy-rag") != "used" {
			t.Errorf("%s: x-llmproxy-rag = %q; want used", name, resp.Header.Get("x-llmproxy-rag"))
		}
	}
	calls := e.up.count()
	for _, tc := range []struct{ name, key, ref string }{
		{"another team's store", teamKeyDefault, "secrets"},
		{"a store of the other team, by id", teamKeyDefault, "vs_secrets"},
		{"the other team asks for ours", "sk-other", "handbook"},
	} {
		resp, err := ask(tc.key, option.WithHeader("x-llmproxy-vector-store-ids", tc.ref))
		var ae *openai.Error
		if !errors.As(err, &ae) || resp.StatusCode != 404 || ae.Type != "invalid_request_error" || ae.Param != "vector_store_ids" ||
			!strings.Contains(ae.Message, "No vector store found with id '"+tc.ref+"'") {
			t.Errorf("%s: %v; want 404 invalid_request_error naming %s", tc.name, err, tc.ref)
		}
	}
	if e.up.count() != calls {
		t.Errorf("the upstream was called for a refused request")
	}
}

// TestE2ERAGFailurePolicy: a failing store answers 503 under fail_closed
// (the upstream is not called); under fail_open the request is answered
// without context, says so (x-llmproxy-rag: skipped), counts in
// llmproxy_rag_requests_total and logs a Warn line without the prompt
// (startProxy's cleanup checks the prompt canary).
func TestE2ERAGFailurePolicy(t *testing.T) {
	e := startRAGE2E(t)
	e.stores.setFail(&router.Error{Kind: router.KindUpstream, Message: "vector store down"})
	c := e.noRetry()
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage(vacationQuestion + " " + promptCanary)}
	var resp *http.Response
	_, err := c.Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-rag", Messages: msgs}, option.WithResponseInto(&resp))
	var ae *openai.Error
	if !errors.As(err, &ae) || resp.StatusCode != 503 || ae.Type != "api_error" || e.up.count() != 0 {
		t.Fatalf("fail_closed: %v after %d upstream calls; want 503 api_error and none", err, e.up.count())
	}
	out, err := c.Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-open", Messages: msgs}, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("fail_open: %v", err)
	}
	if resp.Header.Get("x-llmproxy-rag") != "skipped" || resp.Header.Get("x-llmproxy-rag-sources") != "" || out.JSON.ExtraFields["sources"].Valid() {
		t.Errorf("fail_open: x-llmproxy-rag %q, sources %q; want skipped and none", resp.Header.Get("x-llmproxy-rag"), out.JSON.ExtraFields["sources"].Raw())
	}
	if ms := upstreamMessages(t, e.up.last(t).Body); len(ms) != 1 || ms[0].Role != "user" {
		t.Errorf("fail_open: upstream messages = %+v; want the client's alone", ms)
	}
	_, b := e.do("GET", "/metrics", "", nil)
	for _, want := range []string{`llmproxy_rag_requests_total{outcome="failed"} 1`, `llmproxy_rag_requests_total{outcome="skipped"} 1`, "llmproxy_rag_retrieval_seconds_count 2"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(string(b), "llmproxy_rag"))
		}
	}
	if !eventually(2e9, func() bool {
		return strings.Contains(e.logs.String(), `"level":"WARN","msg":"rag: retrieval failed; answering without context"`)
	}) {
		t.Errorf("no Warn line for the request answered without context:\n%s", e.logs.String())
	}
}

// TestE2ERAGBudget: a team over its budget is refused the query's
// embedding like any call: 429 insufficient_quota, and the chat upstream
// is never called.
func TestE2ERAGBudget(t *testing.T) {
	e := startRAGE2E(t)
	var resp *http.Response
	_, err := e.noRetry(option.WithAPIKey("sk-poor")).Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-rag",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(vacationQuestion)}}, option.WithResponseInto(&resp))
	var ae *openai.Error
	if !errors.As(err, &ae) || resp.StatusCode != 429 || ae.Type != "insufficient_quota" || resp.Header.Get("x-should-retry") != "false" {
		t.Fatalf("over budget: %v; want 429 insufficient_quota, x-should-retry false", err)
	}
	if e.up.count() != 0 {
		t.Errorf("the chat upstream got %d calls; want none", e.up.count())
	}
}

// TestE2ERAGWithoutVectorStores: a build without vector stores (no
// retriever) answers a request that asks for retrieval 503, or without
// context where the alias fails open.
func TestE2ERAGWithoutVectorStores(t *testing.T) {
	up := newFakeUpstream(t)
	cfg := parseTestConfig(t, ragConfig, map[string]string{"FAKE_URL": up.srv.URL, "UPSTREAM_KEY": providerKey, "TEAM_KEY": teamKeyDefault})
	e := &e2e{proxy: startProxy(t, cfg), t: t, up: up}
	body := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	hdr := authHeader(teamKeyDefault)
	hdr["x-llmproxy-vector-store-ids"] = "handbook"
	if resp, b := e.do("POST", "/v1/chat/completions", body, hdr); resp.StatusCode != 503 || !strings.Contains(string(b), `"type":"api_error"`) {
		t.Errorf("header without vector stores = %d %s; want 503", resp.StatusCode, b)
	}
	resp, b := e.do("POST", "/v1/chat/completions", strings.Replace(body, "gpt-test", "gpt-open", 1), authHeader(teamKeyDefault))
	if resp.StatusCode != 200 || resp.Header.Get("x-llmproxy-rag") != "skipped" {
		t.Errorf("fail_open alias = %d (x-llmproxy-rag %q) %s; want 200 skipped", resp.StatusCode, resp.Header.Get("x-llmproxy-rag"), b)
	}
}

// TestE2ERAGWithMemory: with a stored conversation, retrieval runs on the
// newest user message; the references go after the client's system
// message, which memory puts after the stored history (without one they
// go first); memory stores the client's messages and the reply, never the
// references.
func TestE2ERAGWithMemory(t *testing.T) {
	e := startRAGE2E(t)
	c := e.noRetry()
	var resp *http.Response
	if _, err := c.Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-rag",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("I lost my laptop yesterday.")}},
		option.WithHeader(headerConversation, "new"), option.WithResponseInto(&resp)); err != nil {
		t.Fatalf("turn 1: %v", err)
	}
	conv := resp.Header.Get(headerConversation)
	if ms := upstreamMessages(t, e.up.last(t).Body); len(ms) != 2 || ms[0].Role != "system" || !strings.Contains(ms[0].Text(), "it.md") {
		t.Errorf("turn 1 upstream messages = %+v; want the laptop references first", ms)
	}
	if _, err := c.Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-rag",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage(vacationQuestion)}},
		option.WithHeader(headerConversation, conv)); err != nil {
		t.Fatalf("turn 2: %v", err)
	}
	ms := upstreamMessages(t, e.up.last(t).Body)
	if len(ms) != 5 || ms[0].Text() != "I lost my laptop yesterday." || ms[1].Role != "assistant" || ms[2].Text() != "Be brief." ||
		ms[3].Role != "system" || !strings.Contains(ms[3].Text(), "[1] vacation.md") || ms[4].Text() != vacationQuestion {
		t.Errorf("turn 2 upstream messages = %+v; want the history, the client's system message, the vacation references, the question", ms)
	}
	checkItems(t, e.e2e, conv, 4) // two user messages and two replies: no system message stored
}
