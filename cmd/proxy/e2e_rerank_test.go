package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmproxy/budget"
	"llmproxy/store/sqlite"
)

// rerankConfig has a demo reranker, one on the fake upstream (which
// speaks the Cohere/Jina/vLLM wire format when a test says so), and a
// "poor" team whose budget buys 100 input tokens of cohere-rerank.
const rerankConfig = `
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
  - name: demo-chat
    deployments: [{provider: demo, model: demo-chat}]
  - name: demo-rerank
    type: rerank
    deployments: [{provider: demo, model: demo-rerank}]
  - name: cohere-rerank
    type: rerank
    pricing: {input_per_mtok: 1, output_per_mtok: 0}
    deployments: [{provider: fake, model: rerank-v3.5}]
teams:
  - name: default
    api_keys: ["${TEAM_KEY}"]
  - name: poor
    api_keys: ["sk-poor"]
    budget: {usd: 0.0001, period: day}
`

// rerankDocs: the query "refunds after a return" is about documents 1
// and 2, in that order, lexically.
var rerankDocs = []string{
	"The cafeteria opens at eight.",
	"Refunds are paid within 14 days after a return.",
	"A return needs the receipt.",
	"Parking is free on weekends.",
}

type rerankAnswer struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Results []struct {
		Index    int     `json:"index"`
		Score    float64 `json:"relevance_score"`
		Document *struct {
			Text string `json:"text"`
		} `json:"document"`
	} `json:"results"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// postRerank sends /v1/rerank through openai-go's raw request option (the
// SDK has no rerank method) and returns the answer and the response.
func postRerank(t *testing.T, c *openai.Client, body map[string]any) (rerankAnswer, *http.Response, error) {
	t.Helper()
	var out rerankAnswer
	var resp *http.Response
	err := c.Post(withTimeout(t), "rerank", body, &out, option.WithResponseInto(&resp))
	if resp == nil {
		t.Fatalf("rerank: no response: %v", err)
	}
	return out, resp, err
}

// TestE2ERerankDemo: POST /v1/rerank on the demo reranker ranks the
// documents lexically, cuts to top_n, returns the texts when asked, and
// reports usage; a chat alias cannot rerank, nor a rerank alias chat.
func TestE2ERerankDemo(t *testing.T) {
	e := startFakeE2E(t, rerankConfig)
	c := e.noRetry()
	docs := []any{rerankDocs[0], map[string]string{"text": rerankDocs[1]}, rerankDocs[2], rerankDocs[3]}
	out, resp, err := postRerank(t, c, map[string]any{"model": "demo-rerank", "query": "refunds after a return",
		"documents": docs, "top_n": 2, "return_documents": true})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 2 || out.Results[0].Index != 1 || out.Results[1].Index != 2 || out.Results[0].Score <= out.Results[1].Score {
		t.Fatalf("results = %+v; want documents 1 then 2", out.Results)
	}
	if d := out.Results[0].Document; d == nil || d.Text != rerankDocs[1] {
		t.Errorf("document = %+v; want the text of document 1 (return_documents)", d)
	}
	if out.Model != "demo-rerank" || out.Usage.PromptTokens == 0 || out.Usage.TotalTokens != out.Usage.PromptTokens || !strings.HasPrefix(out.ID, "rerank-") {
		t.Errorf("answer = %+v; want model demo-rerank, an id and usage", out)
	}
	if got := resp.Header.Get("x-llmproxy-model"); got != "demo-rerank;upstream=demo-rerank" {
		t.Errorf("x-llmproxy-model = %q", got)
	}

	for _, tc := range []struct {
		name, path, body, code, param string
		status                        int
	}{
		{"chat alias", "/v1/rerank", `{"model":"demo-chat","query":"q","documents":["a"]}`, "model_type_mismatch", "model", 400},
		{"rerank alias on chat", "/v1/chat/completions", `{"model":"demo-rerank","messages":[{"role":"user","content":"hi"}]}`, "model_type_mismatch", "model", 400},
		{"no query", "/v1/rerank", `{"model":"demo-rerank","documents":["a"]}`, "", "query", 400},
		{"no documents", "/v1/rerank", `{"model":"demo-rerank","query":"q","documents":[]}`, "", "documents", 400},
		{"bad document", "/v1/rerank", `{"model":"demo-rerank","query":"q","documents":[3]}`, "", "documents", 400},
		{"top_n zero", "/v1/rerank", `{"model":"demo-rerank","query":"q","documents":["a"],"top_n":0}`, "", "top_n", 400},
		{"unknown model", "/v1/rerank", `{"model":"nope","query":"q","documents":["a"]}`, "model_not_found", "model", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, b := e.do("POST", tc.path, tc.body, authHeader(teamKeyDefault))
			var ae apiError
			if err := json.Unmarshal(b, &ae); err != nil || r.StatusCode != tc.status || ae.Error.Type != "invalid_request_error" ||
				(tc.code != "" && (ae.Error.Code == nil || *ae.Error.Code != tc.code)) || ae.Error.Param == nil || *ae.Error.Param != tc.param {
				t.Errorf("%s = %d %s; want %d invalid_request_error param %s code %q", tc.path, r.StatusCode, b, tc.status, tc.param, tc.code)
			}
		})
	}
}

// TestE2ERerankUpstreamWire: an openai-type provider is asked POST
// {base_url}/rerank with {model, query, documents, top_n}; the answers of
// Cohere v2 (no token count: the call is counted with the tokenizer), Jina
// and vLLM all come back in one shape, best first, cut to top_n; a 5xx is
// retried like any call.
func TestE2ERerankUpstreamWire(t *testing.T) {
	e := startFakeE2E(t, rerankConfig)
	c := e.noRetry()
	replies := map[string]string{
		"cohere": `{"id":"c1","results":[{"index":2,"relevance_score":0.5},{"index":1,"relevance_score":0.8}],"meta":{"billed_units":{"search_units":1}}}`,
		"jina":   `{"model":"jina-reranker-v2","usage":{"total_tokens":21,"prompt_tokens":21},"results":[{"index":1,"relevance_score":0.8,"document":{"text":"x"}},{"index":2,"relevance_score":0.5,"document":{"text":"y"}}]}`,
		"vllm":   `{"id":"rerank-9","model":"bge","usage":{"total_tokens":21},"results":[{"index":2,"relevance_score":0.5},{"index":1,"relevance_score":0.8},{"index":0,"relevance_score":0.1}]}`,
	}
	for name, reply := range replies {
		t.Run(name, func(t *testing.T) {
			e.up.reset()
			var fails atomic.Bool
			fails.Store(name == "vllm") // the first call of this one fails with a 503
			e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
				if fails.Swap(false) {
					writeUpstreamError(w, http.StatusServiceUnavailable, `{"error":{"message":"loading","type":"server_error"}}`)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(reply))
			})
			out, resp, err := postRerank(t, c, map[string]any{"model": "cohere-rerank", "query": "refunds after a return", "documents": rerankDocs, "top_n": 2})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Results) != 2 || out.Results[0].Index != 1 || out.Results[0].Score != 0.8 || out.Results[1].Index != 2 || out.Results[0].Document != nil {
				t.Errorf("results = %+v; want 1 (0.8) then 2, no documents", out.Results)
			}
			wantTokens := 21
			if name == "cohere" {
				wantTokens = rerankTokens(rerankDocs, "refunds after a return")
			}
			if out.Usage.PromptTokens != wantTokens {
				t.Errorf("usage = %+v; want %d prompt tokens", out.Usage, wantTokens)
			}
			last := e.up.last(t)
			var sent struct {
				Model     string   `json:"model"`
				Query     string   `json:"query"`
				Documents []string `json:"documents"`
				TopN      int      `json:"top_n"`
			}
			if err := json.Unmarshal(last.Body, &sent); err != nil || last.Path != "/v1/rerank" || sent.Model != "rerank-v3.5" ||
				sent.TopN != 2 || len(sent.Documents) != 4 || last.Header.Get("Authorization") != "Bearer "+providerKey {
				t.Errorf("upstream got %s %s; want /v1/rerank with model rerank-v3.5, 4 documents, top_n 2, our key", last.Path, last.Body)
			}
			if want := map[bool]string{true: "2", false: "1"}[name == "vllm"]; resp.Header.Get("x-llmproxy-attempts") != want {
				t.Errorf("x-llmproxy-attempts = %q; want %s", resp.Header.Get("x-llmproxy-attempts"), want)
			}
		})
	}
}

// rerankTokens is what a reranker reads, counted as the proxy counts it.
func rerankTokens(docs []string, query string) int {
	c := budget.NewCounter()
	n := c.Text("cohere-rerank", query) * len(docs)
	for _, d := range docs {
		n += c.Text("cohere-rerank", d)
	}
	return n
}

// TestE2ERerankBudgetAndLedger: a team over its budget is refused a rerank
// call (429 insufficient_quota, x-should-retry false) before the upstream
// is called, and every call, refused ones included, is a ledger row of
// route "rerank" at the alias's price.
func TestE2ERerankBudgetAndLedger(t *testing.T) {
	up := newFakeUpstream(t)
	up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"results":[{"index":0,"relevance_score":0.9}],"usage":{"total_tokens":60}}`))
	})
	cfg := parseTestConfig(t, rerankConfig, map[string]string{"FAKE_URL": up.srv.URL, "UPSTREAM_KEY": providerKey, "TEAM_KEY": teamKeyDefault})
	e := &e2e{proxy: startProxy(t, cfg), t: t, up: up}
	poor := e.noRetry(option.WithAPIKey("sk-poor"))
	body := map[string]any{"model": "cohere-rerank", "query": "q", "documents": []string{"one two three"}} // 4 tokens reserved, 60 charged
	if _, _, err := postRerank(t, poor, body); err != nil {
		t.Fatalf("first call: %v", err)
	}
	// $0.00006 of $0.0001 spent: 60 more tokens do not fit.
	body["documents"] = []string{strings.Repeat("word ", 50)}
	_, resp, err := postRerank(t, poor, body)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || resp.StatusCode != 429 || apiErr.Type != "insufficient_quota" || resp.Header.Get("x-should-retry") != "false" {
		t.Fatalf("second call = %v (%d, x-should-retry %q); want 429 insufficient_quota, x-should-retry false", err, resp.StatusCode, resp.Header.Get("x-should-retry"))
	}
	if n := up.count(); n != 1 {
		t.Errorf("upstream got %d calls; want 1 (the refused call never left)", n)
	}
	if err := e.stop(5e9); err != nil {
		t.Fatal(err)
	}
	rows := ledgerRowsIn(t, cfg.Server.DataDir)
	if len(rows) != 2 {
		t.Fatalf("ledger rows = %+v; want 2", rows)
	}
	for i, want := range []ledgerEntry{
		{route: "rerank", team: "poor", alias: "cohere-rerank", prompt: 60, status: 200, outcome: "ok", cost: 60e-6},
		{route: "rerank", team: "poor", alias: "cohere-rerank", prompt: 0, status: 429, outcome: "budget_exceeded", cost: 0},
	} {
		got := rows[i]
		if got.route != want.route || got.team != want.team || got.alias != want.alias || got.prompt != want.prompt ||
			got.status != want.status || got.outcome != want.outcome || got.cost < want.cost-1e-12 || got.cost > want.cost+1e-12 {
			t.Errorf("row %d = %+v; want %+v", i, got, want)
		}
	}
}

// ledgerEntry is one usage_ledger row.
type ledgerEntry struct {
	route, team, alias, outcome string
	prompt, status              int
	cost                        float64
}

// ledgerRowsIn reads the SQLite ledger under dir (the proxy stopped, so
// its queue is flushed), oldest first.
func ledgerRowsIn(t *testing.T, dir string) []ledgerEntry {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT route, team, alias, outcome, prompt_tokens, status, cost_usd FROM usage_ledger ORDER BY ts, rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []ledgerEntry
	for rows.Next() {
		var r ledgerEntry
		if err := rows.Scan(&r.route, &r.team, &r.alias, &r.outcome, &r.prompt, &r.status, &r.cost); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
