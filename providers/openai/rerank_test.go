package openai

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"llmproxy/router"
)

// The vendors' reply shapes, as their API references show them.
var rerankReplies = map[string]string{
	"cohere v2": `{"id":"07734bd2","results":[{"index":2,"relevance_score":0.2},{"index":0,"relevance_score":0.9}],` +
		`"meta":{"api_version":{"version":"2"},"billed_units":{"search_units":1},"tokens":{"input_tokens":31}}}`,
	"jina": `{"model":"jina-reranker-v2-base-multilingual","usage":{"total_tokens":31,"prompt_tokens":31},` +
		`"results":[{"index":0,"document":{"text":"a"},"relevance_score":0.9},{"index":2,"document":{"text":"c"},"relevance_score":0.2}]}`,
	"vllm": `{"id":"rerank-1","model":"BAAI/bge-reranker-v2-m3","usage":{"total_tokens":31},` +
		`"results":[{"index":0,"document":{"text":"a"},"relevance_score":0.9},{"index":2,"document":{"text":"c"},"relevance_score":0.2},{"index":1,"document":{"text":"b"},"relevance_score":0.1}]}`,
	"voyage": `{"object":"list","data":[{"relevance_score":0.2,"index":2},{"relevance_score":0.9,"index":0},{"relevance_score":0.1,"index":1}],` +
		`"model":"rerank-2.5","usage":{"total_tokens":31}}`,
}

func TestRerankVendors(t *testing.T) {
	for name, reply := range rerankReplies {
		t.Run(name, func(t *testing.T) {
			cp, c := newCapture(t, reply, "application/json", Config{Name: "r", APIKey: "sk-r"})
			resp, err := c.Rerank(context.Background(), &router.RerankRequest{Model: "alias", Query: "q", Documents: []string{"a", "b", "c"},
				TopN: 2, Target: router.Target{Provider: "r", Model: "up-rerank"}})
			if err != nil {
				t.Fatal(err)
			}
			want := []router.Ranked{{Index: 0, Score: 0.9}, {Index: 2, Score: 0.2}}
			if !reflect.DeepEqual(resp.Results, want) || resp.Usage.PromptTokens != 31 {
				t.Errorf("Rerank() = %+v, usage %+v; want %+v and 31 input tokens", resp.Results, resp.Usage, want)
			}
			cp.mu.Lock()
			defer cp.mu.Unlock()
			wantBody := `{"model":"up-rerank","query":"q","documents":["a","b","c"],"top_n":2}`
			if string(cp.body) != wantBody || cp.path != "/v1/rerank" {
				t.Errorf("upstream got %s %s; want /v1/rerank %s", cp.path, cp.body, wantBody)
			}
		})
	}
}

func TestRerankMalformed(t *testing.T) {
	for name, reply := range map[string]string{
		"no results":      `{"id":"x"}`,
		"index too large": `{"results":[{"index":3,"relevance_score":0.5}]}`,
		"repeated index":  `{"results":[{"index":0,"relevance_score":0.5},{"index":0,"relevance_score":0.4}]}`,
		"not json":        `<html>`,
		"error in 200":    `{"error":{"message":"model not loaded"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, c := newCapture(t, reply, "application/json", Config{Name: "r"})
			_, err := c.Rerank(context.Background(), &router.RerankRequest{Query: "q", Documents: []string{"a", "b", "c"}})
			if e := router.AsError(err); e.Kind != router.KindUpstream {
				t.Errorf("Rerank() = %+v; want KindUpstream", e)
			}
		})
	}
}

func TestRerankUpstreamError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		w.Write([]byte(`{"error":{"message":"top_n must be positive","type":"invalid_request_error","param":"top_n","code":null}}`))
	}))
	defer srv.Close()
	c, _ := New(Config{Name: "r", BaseURL: srv.URL}, srv.Client())
	_, err := c.Rerank(context.Background(), &router.RerankRequest{Query: "q", Documents: []string{"a"}})
	if e := router.AsError(err); e.Kind != router.KindInvalidRequest || e.Param != "top_n" || !strings.Contains(e.Message, "positive") {
		t.Errorf("Rerank() = %+v; want the upstream's 400 on top_n", e)
	}
}

// FuzzParseRerank: no reply panics, and an accepted ranking points only
// at real documents, best first.
func FuzzParseRerank(f *testing.F) {
	for _, r := range rerankReplies {
		f.Add([]byte(r), 3, 2)
	}
	f.Add([]byte(`{"results":[{"index":-1,"relevance_score":1e400}]}`), 1, 0)
	f.Fuzz(func(t *testing.T, body []byte, n, topN int) {
		if n < 0 || n > 1000 {
			return
		}
		out, err := parseRerank(body, n, topN)
		if err != nil {
			return
		}
		for i, r := range out.Results {
			if r.Index < 0 || r.Index >= n || (i > 0 && r.Score > out.Results[i-1].Score) {
				t.Fatalf("parseRerank = %+v; want indices in [0,%d) by descending score", out.Results, n)
			}
		}
		if topN > 0 && len(out.Results) > topN {
			t.Fatalf("%d results; want at most top_n %d", len(out.Results), topN)
		}
	})
}
